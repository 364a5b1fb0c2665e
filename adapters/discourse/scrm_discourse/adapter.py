"""The Discourse network: topics are conversations, posts are messages.

Listening polls ``GET /posts.json`` (the latest public posts, newest first, 50 a page,
``before=<post id>`` exclusive: ``LatestPostsQuery#public_posts`` in discourse/discourse)
and re-checks the most recent delivered posts for edits and deletions; webhooks deliver
the same events sooner. Replies go out with ``POST /posts.json`` (``topic_id``, ``raw``,
``reply_to_post_number``: https://docs.discourse.org, "Creates a new topic, a new post,
or a private message").
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping
from typing import Any

from scrm_core import (
    AdapterContext,
    Event,
    EventPage,
    Message,
    MessageCreated,
    MessageDeleted,
    MessageEdited,
    NetworkCapability,
    PollingAdapter,
    ReplyGuarantee,
    RetryableError,
    SentReply,
    SkippableError,
    SocialProfile,
)
from scrm_core.webhooks import WebhookAnswer, WebhookRequest

from .client import DiscourseClient, NotFound
from .cursor import PollState, text_hash
from .mapping import is_deleted, parse_time, post_text, profile_from, to_message
from .settings import DiscourseSettings
from .threads import Threads
from .webhook import EVENT, EVENT_TYPE, WEBHOOK_HEADERS, decode_payload, verify

__all__ = ["DiscourseAdapter"]

_Group = tuple[list[Event], str, list[tuple[str, str]]]  # one post's events, the cursor after them, rejects

#: Posts per ``GET /t/{id}/posts.json?post_ids[]=`` call (Discourse's topic chunk size is
#: 20; from memory, so batches stay at it).
POST_IDS_CHUNK = 20
#: How far back in a topic ``send_reply`` looks for an earlier copy of the reply.
REPLY_LOOKBACK = 100


class DiscourseAdapter(PollingAdapter[DiscourseSettings, PollState]):
    """One Discourse forum, read and answered as ``api_username``."""

    name = "discourse"
    Settings = DiscourseSettings
    cursor_type = PollState
    reply_guarantee = ReplyGuarantee.look_before_post
    capabilities = frozenset(
        {
            NetworkCapability.poll,
            NetworkCapability.webhook,
            NetworkCapability.reply,
            NetworkCapability.edits,
            NetworkCapability.deletes,
        }
    )
    webhook_headers = WEBHOOK_HEADERS

    def __init__(self, settings: DiscourseSettings | Mapping[str, Any], context: AdapterContext | None = None) -> None:
        super().__init__(settings, context)
        self.client = DiscourseClient(self.settings, self.context.http)
        self.threads = Threads(self.client, self.settings)

    async def close(self) -> None:
        await self.client.close()

    # ------------------------------------------------------------ mapping helpers

    async def _message(self, post: dict[str, Any], *, edited: bool = False, private: bool = False) -> Message:
        root, parent = await self.threads.place(post)
        return to_message(
            post,
            network=self.network,
            base_url=self.settings.base_url,
            outbound_username=self.settings.api_username,
            root_id=root,
            parent_id=parent,
            private=private,
            edited=edited,
        )

    def _deleted(self, post_id: int, post: dict[str, Any] | None) -> MessageDeleted:
        when = None
        if post is not None:
            when = parse_time(post.get("deleted_at")) or parse_time(post.get("updated_at"))
        return MessageDeleted(network=self.network, message_id=str(post_id), deleted_at=when)

    # ------------------------------------------------------------ polling

    async def poll(self, cursor: PollState) -> AsyncIterator[EventPage]:
        before = cursor.dump()
        groups = await self._poll(cursor)
        for page in self._pages(groups):
            yield page
        if not groups and cursor.dump() != before:
            yield EventPage(events=[], cursor=cursor.dump())  # filtered posts moved the cursor

    def _pages(self, groups: list[_Group]) -> list[EventPage]:
        """Pack per-post groups into pages; a post's created/edited pair never splits."""
        pages: list[EventPage] = []
        events: list[Event] = []
        rejects: list[tuple[str, str]] = []
        cursor = ""
        for group, after, bad in groups:
            if (events or rejects) and len(events) + len(group) > self.settings.page_size:
                pages.append(EventPage(events=events, cursor=cursor, rejects=rejects))
                events, rejects = [], []
            events += group
            rejects += bad
            cursor = after
        if events or rejects or cursor:
            pages.append(EventPage(events=events, cursor=cursor, rejects=rejects))
        return pages

    async def _walk(self, state: PollState) -> list[dict[str, Any]]:
        """Every listed post newer than the re-check window's oldest post (or the cursor).

        ``/posts.json`` pages run newest first; ``before`` is exclusive and an empty page is
        the end. On a fresh start ``backfill_posts`` bounds how far back the walk goes.
        """
        floor = min(state.window) - 1 if state.window else state.last_id
        fresh = state.last_id == 0
        found: list[dict[str, Any]] = []
        before: int | None = None
        while True:
            params = {"before": str(before)} if before is not None else None
            page = (await self.client.get("/posts.json", params)).get("latest_posts") or []
            ids = [int(p["id"]) for p in page]
            found += [p for p in page if int(p["id"]) > floor]
            if not ids or min(ids) <= floor + 1:
                break
            if fresh and self.settings.backfill_posts and len(found) >= self.settings.backfill_posts:
                found = sorted(found, key=lambda p: int(p["id"]))[-self.settings.backfill_posts :]
                break
            before = min(ids)
        return sorted(found, key=lambda p: int(p["id"]))

    async def _poll(self, state: PollState) -> list[_Group]:
        """One pass: changes to the re-check window first, then new posts, each with the
        cursor that follows it. ``state`` is updated as the groups are made."""
        listed = await self._walk(state)
        by_id = {int(p["id"]): p for p in listed}
        groups: list[_Group] = []

        for post_id in sorted(state.window):
            post = by_id.get(post_id)
            if post is None:  # no longer listed: deleted, or just no longer a public regular post
                try:
                    post = await self.client.get(f"/posts/{post_id}.json")
                except NotFound:
                    del state.window[post_id]
                    groups.append(([self._deleted(post_id, None)], state.dump(), []))
                    continue
            if is_deleted(post):
                del state.window[post_id]
                groups.append(([self._deleted(post_id, post)], state.dump(), []))
            elif text_hash(post_text(post)) != state.window[post_id]:
                state.window[post_id] = text_hash(post_text(post))
                edited = MessageEdited(message=await self._message(post, edited=True))
                groups.append(([edited], state.dump(), []))

        for post in listed:
            post_id = int(post["id"])
            if post_id <= state.last_id:
                continue
            state.last_id = post_id
            self.threads.learn(post)
            if is_deleted(post) or not await self.threads.wanted(post):
                continue  # withdrawn before we saw it, or outside the configured categories/tags
            rejects: list[tuple[str, str]] = []
            events = await self.guarded(str(post_id), functools.partial(self._first_sight, post), rejects)
            if events:
                state.remember(post_id, post_text(post), self.settings.recheck_recent)
            groups.append((events, state.dump(), rejects))
        return groups

    async def _first_sight(self, post: dict[str, Any]) -> list[Event]:
        events: list[Event] = [MessageCreated(message=await self._message(post))]
        if int(post.get("version") or 1) > 1:
            # Revised before we first saw it: only the latest text is left to deliver.
            events.append(MessageEdited(message=await self._message(post, edited=True)))
        return events

    # ------------------------------------------------------------ threads and profiles

    async def _topic_posts(self, topic_id: int, only_last: int | None = None) -> list[dict[str, Any]]:
        """A topic's posts in order: ``/t/{id}.json`` gives the first chunk and every id in
        ``post_stream.stream``; the rest come from ``/t/{id}/posts.json?post_ids[]=...``."""
        topic = await self.client.get(f"/t/{topic_id}.json")
        stream = [int(i) for i in topic.get("post_stream", {}).get("stream", [])]
        if only_last is not None:
            stream = stream[-only_last:]
        have = {int(p["id"]): p for p in topic.get("post_stream", {}).get("posts", [])}
        missing = [i for i in stream if i not in have]
        for start in range(0, len(missing), POST_IDS_CHUNK):
            chunk = missing[start : start + POST_IDS_CHUNK]
            params = [("post_ids[]", str(i)) for i in chunk]
            answer = await self.client.get(f"/t/{topic_id}/posts.json", params)
            for p in answer.get("post_stream", {}).get("posts", []):
                have[int(p["id"])] = p
        return [have[i] for i in stream if i in have]

    async def fetch_thread(self, root_id: str) -> list[Message]:
        try:
            root = await self.client.get(f"/posts/{int(root_id)}.json")
        except (NotFound, ValueError):
            return []
        topic_id = int(root["topic_id"])
        info = await self.threads.topic(topic_id)
        private = info is not None and info.archetype == "private_message"
        posts = await self._topic_posts(topic_id)
        for post in posts:
            self.threads.learn(post)
        return [await self._message(p, private=private) for p in posts if not is_deleted(p)]

    async def fetch_profile(self, account_id: str) -> SocialProfile:
        username = self.threads.usernames.get(account_id)
        try:
            if username is not None:
                user = (await self.client.get(f"/u/{username}.json"))["user"]
            else:
                # Only staff keys may read users by id (``Admin::UsersController#show``).
                user = await self.client.get(f"/admin/users/{int(account_id)}.json")
        except (NotFound, ValueError):
            raise SkippableError(f"discourse: no user with id {account_id}") from None
        return profile_from(self.network, self.settings.base_url, user, user_id=user.get("id", account_id))

    # ------------------------------------------------------------ replies

    async def send_reply(self, in_reply_to: str, text: str, idempotency_key: str) -> SentReply:
        """Reply in the target's topic, naming it in ``reply_to_post_number``.

        Discourse takes no idempotency key. It memoizes an identical API create request for
        120 s (``PostsController#create``), which covers a quick retry; beyond that, the
        topic's last posts are searched for one by ``api_username`` with the same text and
        reply target before anything is posted. A 422 (too short, too similar, topic
        closed...) is a SkippableError carrying Discourse's ``errors``.
        """
        try:
            target = await self.client.get(f"/posts/{int(in_reply_to)}.json")
        except (NotFound, ValueError):
            raise SkippableError(
                f"discourse: post {in_reply_to} is gone or not visible; the reply was not sent"
            ) from None
        if is_deleted(target):
            raise SkippableError(f"discourse: post {in_reply_to} was deleted; the reply was not sent")
        topic_id, number = int(target["topic_id"]), int(target.get("post_number") or 1)
        earlier = await self._earlier_reply(topic_id, number, text)
        if earlier is None:
            body = {"topic_id": topic_id, "raw": text, "reply_to_post_number": number}
            earlier = await self.client.post("/posts.json", body)
            if not isinstance(earlier, dict) or "id" not in earlier:
                raise RetryableError("discourse: POST /posts.json answered without the new post")
        info = await self.threads.topic(topic_id)
        private = info is not None and info.archetype == "private_message"
        return SentReply(message=await self._message(earlier, private=private))

    async def _earlier_reply(self, topic_id: int, number: int, text: str) -> dict[str, Any] | None:
        me = self.settings.api_username.lower()
        recent: list[dict[str, Any]] = await self._topic_posts(topic_id, only_last=REPLY_LOOKBACK)
        for post in reversed(recent):
            reply_to: object = post.get("reply_to_post_number")
            same_target = reply_to == number or (number == 1 and reply_to in (None, 1))
            if (
                str(post.get("username") or "").lower() == me
                and same_target
                and post_text(post).strip() == text.strip()
                and not is_deleted(post)
            ):
                found: dict[str, Any] = post
                return found
        return None

    # ------------------------------------------------------------ webhooks

    def verify_webhook(self, request: WebhookRequest) -> WebhookAnswer | None:
        secret = self.settings.webhook_secret
        return verify(request, secret.get_secret_value() if secret is not None else None)

    async def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[Event]:
        """``post_created`` -> created; ``post_edited`` -> edited (only for a revised post,
        ``version`` > 1) or deleted (when the author withdrew it); ``post_recovered`` ->
        edited (the text is back); ``post_destroyed`` -> deleted. Topic events are dropped:
        a new topic's first post arrives as its own ``post_created``."""
        headers = {k.lower(): v for k, v in headers.items()}
        if (headers.get(EVENT_TYPE) or "").lower() != "post":
            return []
        try:
            post = decode_payload(body).get("post")
        except ValueError as exc:
            raise SkippableError(f"discourse webhook: not JSON ({exc})") from None
        if not isinstance(post, dict) or not isinstance(post.get("id"), int):
            raise SkippableError("discourse webhook: a post event without a post id")
        event = (headers.get(EVENT) or "").lower()
        if event == "post_destroyed":
            return [self._deleted(post["id"], post)]
        if not await self.threads.wanted(post):
            return []
        private = post.get("topic_archetype") == "private_message"
        try:
            if event == "post_created":
                return [MessageCreated(message=await self._message(post, private=private))]
            if event in ("post_edited", "post_recovered"):
                if is_deleted(post):
                    return [self._deleted(post["id"], post)]
                if event == "post_edited" and int(post.get("version") or 1) <= 1:
                    return []  # never revised: a wiki, owner or similar change, not a text edit
                return [MessageEdited(message=await self._message(post, edited=True, private=private))]
        except (KeyError, ValueError, TypeError) as exc:
            raise SkippableError(f"discourse webhook: malformed post {post.get('id')}: {exc}") from None
        return []

    def __repr__(self) -> str:
        return f"DiscourseAdapter(base_url={self.settings.base_url!r}, api_username={self.settings.api_username!r})"
