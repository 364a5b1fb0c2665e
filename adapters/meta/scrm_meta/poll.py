"""One poll pass: the events a Page's feed (or an Instagram account's media) holds from a second on.

Facebook (https://developers.facebook.com/docs/graph-api/reference/page/feed and
https://developers.facebook.com/docs/graph-api/reference/object/comments): the feed lists
the Page's posts and visitors' posts newest first; ``GET /{post-id}/comments?filter=stream
&order=chronological`` lists every comment of a post, replies included, each reply naming
its ``parent``. A post's ``updated_time`` moves when it is edited *and* when someone
comments (from memory of the Page Post reference; not confirmed by the search tool), so:

* a post whose ``updated_time`` is older than the cursor holds nothing new: its comments
  are not read at all (one request per pass for a quiet Page);
* a post whose ``updated_time`` is later than its creation and than its newest comment
  was edited at ``updated_time``: a MessageEdited with that version. An edit followed by
  a comment within the same poll interval is seen only through the ``edited`` webhook.

Comments carry no ``updated_time``: comment edits, and every deletion, reach scrm through
webhooks only (a deleted object simply vanishes from the Graph).

Instagram (https://developers.facebook.com/docs/instagram-api/reference/ig-user/media,
.../ig-media/comments, .../ig-comment/replies): media newest first; top-level comments
per media, replies per comment (Instagram threads are two levels deep). Media and
comments carry only ``timestamp``: no edits are visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scrm_core import Event, FatalError, Message, MessageCreated, MessageEdited

from .graph import GraphClient, GraphError
from .mapping import (
    FB_COMMENT_FIELDS,
    FB_POST_FIELDS,
    IG_COMMENT_FIELDS,
    IG_MEDIA_FIELDS,
    fb_comment,
    fb_post,
    ig_comment,
    ig_media,
    parse_time,
)
from .settings import MetaSettings

__all__ = ["Timed", "facebook_pass", "facebook_thread", "instagram_pass", "instagram_thread"]

GRAPH_LIMIT = 100  # the `limit` asked of every edge (Graph's usual maximum per page)


@dataclass(frozen=True)
class Timed:
    """An event with its place in the total order: (second, created before edited, id)."""

    second: int
    tag: str
    event: Event

    @property
    def order(self) -> tuple[int, int, str]:
        return (self.second, 0 if self.tag[0] == "c" else 1, self.tag[1:])


def _second(when: datetime) -> int:
    return int(when.timestamp())


def created(message: Message) -> Timed:
    return Timed(_second(message.created_at), f"c{message.id}", MessageCreated(message=message))


def edited(message: Message, at: datetime) -> Timed:
    version = message.model_copy(update={"edited_at": at})
    return Timed(_second(at), f"e{message.id}", MessageEdited(message=version))


async def facebook_thread(
    graph: GraphClient, settings: MetaSettings, post: dict[str, Any], rejects: Rejects | None = None
) -> list[Message]:
    """The post's comments (all levels), oldest first."""
    network, page_id, post_id = settings.platform, settings.account_id, str(post["id"])
    bad = rejects if rejects is not None else []
    comments: list[Message] = []
    async for batch in graph.pages(
        f"{post_id}/comments", fields=FB_COMMENT_FIELDS, filter="stream", order="chronological", limit=GRAPH_LIMIT
    ):
        read = [_parsed(fb_comment, n, bad, network=network, page_id=page_id, post_id=post_id) for n in batch]
        comments += [c for c in read if c is not None]
    return comments


async def facebook_pass(graph: GraphClient, settings: MetaSettings, since: int, rejects: Rejects) -> list[Timed]:
    """Events at or after Unix second ``since`` on the newest ``max_posts`` posts of the Page."""
    network, page_id = settings.platform, settings.account_id
    found: list[Timed] = []
    seen = 0
    async for batch in graph.pages(
        f"{page_id}/feed", fields=FB_POST_FIELDS, limit=min(GRAPH_LIMIT, settings.max_posts)
    ):
        for node in batch:
            if seen >= settings.max_posts:
                return found
            seen += 1
            post = _parsed(fb_post, node, rejects, network=network, page_id=page_id)
            if post is None:
                continue
            updated = _second(parse_time(node.get("updated_time") or node["created_time"]))
            if updated < since:
                continue
            try:
                comments = await facebook_thread(graph, settings, node, rejects)
            except GraphError as exc:
                if exc.gone:  # deleted between the feed and its comments: the remove webhook tells
                    continue
                raise FatalError(f"meta: reading the comments of post {post.id}: {exc}") from None
            found.append(created(post))
            found += [created(c) for c in comments]
            newest = max([_second(post.created_at), *(_second(c.created_at) for c in comments)])
            if updated > newest:
                found.append(edited(post, parse_time(node["updated_time"])))
        if seen >= settings.max_posts:
            break
    return [t for t in found if t.second >= since]


async def instagram_thread(
    graph: GraphClient, settings: MetaSettings, media_id: str, rejects: Rejects | None = None
) -> list[Message]:
    """The media's comments and their replies, oldest first."""
    network, account = settings.platform, settings.account_id
    bad = rejects if rejects is not None else []
    found: list[Message | None] = []
    async for batch in graph.pages(f"{media_id}/comments", fields=IG_COMMENT_FIELDS, limit=GRAPH_LIMIT):
        for node in batch:
            found.append(_parsed(ig_comment, node, bad, network=network, ig_user_id=account, media_id=media_id))
            async for replies in graph.pages(f"{node['id']}/replies", fields=IG_COMMENT_FIELDS, limit=GRAPH_LIMIT):
                found += [
                    _parsed(ig_comment, r, bad, network=network, ig_user_id=account, media_id=media_id) for r in replies
                ]
    out = [m for m in found if m is not None]
    return sorted(out, key=lambda m: (m.created_at, m.id))


async def instagram_pass(graph: GraphClient, settings: MetaSettings, since: int, rejects: Rejects) -> list[Timed]:
    """Events at or after ``since`` on the newest ``max_posts`` media of the account."""
    network, account = settings.platform, settings.account_id
    found: list[Timed] = []
    seen = 0
    async for batch in graph.pages(
        f"{account}/media", fields=IG_MEDIA_FIELDS + ",comments_count", limit=min(GRAPH_LIMIT, settings.max_posts)
    ):
        for node in batch:
            if seen >= settings.max_posts:
                return [t for t in found if t.second >= since]
            seen += 1
            media = _parsed(ig_media, node, rejects, network=network, ig_user_id=account)
            if media is None:
                continue
            found.append(created(media))
            if not node.get("comments_count", 1):
                continue
            try:
                found += [created(c) for c in await instagram_thread(graph, settings, media.id, rejects)]
            except GraphError as exc:
                if exc.gone:
                    continue
                raise FatalError(f"meta: reading the comments of media {media.id}: {exc}") from None
    return [t for t in found if t.second >= since]


Rejects = list[tuple[str, str]]


def _parsed(fn: Any, node: dict[str, Any], rejects: Rejects, **kwargs: Any) -> Message | None:
    """``fn(node)``, or None with the node's reject in ``rejects``: one unreadable object never
    stops the source (it goes to the dead-letter queue with its id)."""
    try:
        message: Message = fn(node, **kwargs)
    except Exception as exc:
        rejects.append((str(node.get("id", "?")), f"unreadable Graph object: {type(exc).__name__}: {exc}"[:300]))
        return None
    return message
