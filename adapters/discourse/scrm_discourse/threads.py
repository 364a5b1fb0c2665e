"""Topics as conversations: a post's thread root (the topic's post 1) and its parent.

Discourse posts carry ``topic_id``, ``post_number`` and ``reply_to_post_number`` but not
the id of the topic's first post nor of the post replied to; those come from
``GET /posts/by_number/{topic_id}/{post_number}.json`` (route in discourse/discourse
``config/routes.rb``) and are cached, since every reply of a topic needs the same root.
"""

from __future__ import annotations

from typing import Any

from scrm_core import LRUCache

from .client import DiscourseClient, NotFound
from .settings import DiscourseSettings

__all__ = ["Threads", "TopicInfo"]

_CACHE_LIMIT = 50_000


class TopicInfo:
    def __init__(self, tags: list[str], category_id: int | None, archetype: str) -> None:
        self.tags, self.category_id, self.archetype = tags, category_id, archetype


def _tag_names(tags: Any) -> list[str]:
    """Topic tags: a list of names, or (newer Discourse) of ``{"name": ...}`` objects."""
    names = []
    for tag in tags or []:
        name = tag.get("name") if isinstance(tag, dict) else tag
        if isinstance(name, str):
            names.append(name.lower())
    return names


class Threads:
    """Resolves roots and parents, and whether a post's topic passes the source's filters."""

    def __init__(self, client: DiscourseClient, settings: DiscourseSettings) -> None:
        self.client, self.settings = client, settings
        self._ids: LRUCache[tuple[int, int], int | None] = LRUCache(_CACHE_LIMIT)  # (topic, number) -> post id
        self._topics: LRUCache[int, TopicInfo] = LRUCache(_CACHE_LIMIT)
        self.usernames: LRUCache[str, str] = LRUCache(_CACHE_LIMIT)  # user id -> username, for fetch_profile

    def learn(self, post: dict[str, Any]) -> None:
        """Remember where a post sits (every post seen saves a lookup later)."""
        if isinstance(post.get("topic_id"), int) and isinstance(post.get("post_number"), int):
            self._ids[(post["topic_id"], post["post_number"])] = int(post["id"])
        if post.get("user_id") is not None and post.get("username"):
            self.usernames[str(post["user_id"])] = str(post["username"])

    async def post_id(self, topic_id: int, number: int) -> int | None:
        key = (topic_id, number)
        if key not in self._ids:
            try:
                post = await self.client.get(f"/posts/by_number/{topic_id}/{number}.json")
            except NotFound:
                self._ids[key] = None
            else:
                self.learn(post)
                self._ids[key] = int(post["id"])
        return self._ids[key]

    async def place(self, post: dict[str, Any]) -> tuple[int | None, int | None]:
        """``(thread root id, parent id)``: both None for a topic's first post.

        The parent is the post ``reply_to_post_number`` names, else the root (a reply to the
        topic as a whole). If the first post is gone, the post starts its own thread.
        """
        self.learn(post)
        topic, number = int(post["topic_id"]), int(post.get("post_number") or 1)
        if number == 1:
            return None, None
        root = await self.post_id(topic, 1)
        if root is None:
            return None, None
        reply_to = post.get("reply_to_post_number")
        parent = root
        if isinstance(reply_to, int) and reply_to > 1:
            parent = await self.post_id(topic, reply_to) or root
        return root, parent

    async def topic(self, topic_id: int) -> TopicInfo | None:
        if topic_id not in self._topics:
            try:
                data = await self.client.get(f"/t/{topic_id}.json")
            except NotFound:
                return None
            self._topics[topic_id] = TopicInfo(
                _tag_names(data.get("tags")), data.get("category_id"), str(data.get("archetype") or "regular")
            )
        return self._topics[topic_id]

    async def wanted(self, post: dict[str, Any]) -> bool:
        """Whether the post's category and tags pass the source's ``categories`` / ``tags``."""
        categories, tags = self.settings.categories, self.settings.tags
        if categories and post.get("category_id") not in categories:
            if "category_id" in post:
                return False
            info = await self.topic(int(post["topic_id"]))
            if info is None or info.category_id not in categories:
                return False
        if tags:
            info = await self.topic(int(post["topic_id"]))
            if info is None or not set(info.tags) & set(tags):
                return False
        return True
