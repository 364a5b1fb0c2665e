"""The Mastodon network adapter: notifications and the brand's own posts, polled or streamed.

Listening merges two id-ordered sources, each paged with ``min_id`` and the ``Link``
header's ``rel="prev"`` link (https://docs.joinmastodon.org/api/guidelines/#pagination):

* ``GET /api/v1/notifications?types[]=...`` (https://docs.joinmastodon.org/methods/notifications/):
  mentions of the brand, posts of accounts it watches, edits of posts it boosted;
* ``GET /api/v1/accounts/:id/statuses`` for the brand's own posts (replies written in
  Mastodon's apps, and the parents customers answer).

After catching up, the most recent statuses delivered (``recheck_recent``) are fetched again
(``GET /api/v1/statuses/:id``): a 404 is a deletion, a newer ``edited_at`` an edit. Follow
mode streams ``GET /api/v1/streaming/user`` (opened before catching up, so nothing falls in
between) or polls. The cursor (:mod:`.cursor`) carries both positions and the re-check window.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Mapping
from typing import Any

from scrm_core import (
    AdapterContext,
    Event,
    EventPage,
    FatalError,
    LRUCache,
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

from .client import MastodonApi, NotFound
from .cursor import Cursor, id_key
from .mapping import NETWORK, edited_version, message_from_status, profile_from_account, utc
from .settings import MastodonSettings

__all__ = ["MastodonAdapter"]


class MastodonAdapter(PollingAdapter[MastodonSettings, Cursor]):
    name = NETWORK
    Settings = MastodonSettings
    cursor_type = Cursor
    reply_guarantee = ReplyGuarantee.idempotency_key
    capabilities = frozenset(
        {
            NetworkCapability.poll,
            NetworkCapability.stream,
            NetworkCapability.reply,
            NetworkCapability.direct_messages,
            NetworkCapability.edits,
            NetworkCapability.deletes,
        }
    )

    def __init__(self, settings: MastodonSettings | Mapping[str, Any], context: AdapterContext | None = None) -> None:
        super().__init__(settings, context)
        self._api: MastodonApi | None = None
        self._self_id = ""
        self._roots: LRUCache[str, str | None] = LRUCache(maxsize=10_000)  # status -> thread root (None: a root)

    # ------------------------------------------------------------------ plumbing

    async def start(self) -> None:
        self._api = MastodonApi(self.settings)
        me = await self._call("verify_credentials", self._client.account_verify_credentials)
        self._self_id = str(me["id"])

    async def close(self) -> None:
        if self._api is not None:
            self._api.client.session.close()
            self._api = None

    @property
    def _client(self) -> Any:
        if self._api is None:
            raise FatalError("the mastodon adapter was used before start()")
        return self._api.client

    async def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        assert self._api is not None
        return await self.context.run_blocking(functools.partial(self._api.call, what, fn, *args, **kwargs))

    # ------------------------------------------------------------------ listening

    async def listen(self, cursor: str | None, *, follow: bool) -> AsyncIterator[EventPage]:
        if not (follow and self.settings.follow_mode == "stream"):
            async for page in super().listen(cursor, follow=follow):  # polling: PollingAdapter's loop
                yield page
            return
        async for page in self._stream(Cursor.parse(cursor)):
            yield page

    async def poll(self, cur: Cursor) -> AsyncIterator[EventPage]:
        """Catch up on both sources, then re-check the recent window. Moves ``cur`` along."""
        limit = self.settings.page_size
        notes: Any = None
        own: Any = None
        notes_done, own_done = False, not self.settings.own_statuses
        while not (notes_done and own_done):
            new_notes: Any = []
            new_own: Any = []
            if not notes_done:
                notes = new_notes = await self._next_page(
                    notes,
                    "notifications",
                    self._client.notifications,
                    types=list(self.settings.notification_types),
                    min_id=cur.notifications,
                    limit=limit,
                )
                notes_done = len(notes) < limit
            if not own_done:
                own = new_own = await self._next_page(
                    own, "own statuses", self._client.account_statuses, self._self_id, min_id=cur.own, limit=limit
                )
                own_done = len(own) < limit
            items = [("n", n) for n in new_notes] + [("s", s) for s in new_own]
            items.sort(key=lambda item: (utc(item[1]["created_at"]), id_key(str(item[1]["id"]))))
            events: list[Event] = []
            rejects: list[tuple[str, str]] = []
            for kind, item in items:
                make = self._notification_events if kind == "n" else self._created_events
                where = f"{'notification' if kind == 'n' else 'status'} {item.get('id')}"
                events += await self.guarded(where, functools.partial(make, item, cur), rejects)
            cur.notifications = _prev_min_id(new_notes, cur.notifications)
            cur.own = _prev_min_id(new_own, cur.own)
            if items:
                yield EventPage(events=events, cursor=cur.dump(), rejects=rejects)
        events = await self._recheck(cur)
        if events:
            yield EventPage(events=events, cursor=cur.dump())

    async def _next_page(self, previous: Any, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """The first page from the cursor's ``min_id``, then the ``rel="prev"`` Link of the last one."""
        if previous is not None and getattr(previous, "_pagination_prev", None) is not None:
            return await self._call(what, self._client.fetch_previous, previous)
        return await self._call(what, fn, *args, **kwargs)

    async def _notification_events(self, note: Any, cur: Cursor) -> list[Event]:
        status = note.get("status")
        if status is None or status.get("reblog") is not None or note["type"] not in self.settings.notification_types:
            return []
        if note["type"] == "update":
            return await self._edit_events(status, cur, force=True)
        return await self._created_events(status, cur)

    async def _created_events(self, status: Any, cur: Cursor) -> list[Event]:
        sid = str(status["id"])
        if sid in cur.window:
            return []  # delivered already (through the other source)
        message = await self._message(status)
        events: list[Event] = [MessageCreated(message=message)]
        if message.edited_at is not None:
            # First seen after an edit: say so too, so the edit's version is known downstream.
            events.append(MessageEdited(message=message))
        cur.remember(sid, edited_version(status), self.settings.recheck_recent)
        return events

    async def _edit_events(self, status: Any, cur: Cursor, *, force: bool = False) -> list[Event]:
        sid, version = str(status["id"]), edited_version(status)
        if not version or (sid in cur.window and version <= cur.window[sid]):
            return []
        if not force and sid not in cur.window and not self._concerns_us(status):
            return []
        message = await self._message(status)
        cur.remember(sid, version, self.settings.recheck_recent)
        return [MessageEdited(message=message)]

    def _concerns_us(self, status: Any) -> bool:
        mentioned = {str(m["id"]) for m in status.get("mentions") or []}
        return str(status["account"]["id"]) == self._self_id or self._self_id in mentioned

    async def _recheck(self, cur: Cursor) -> list[Event]:
        """Fetch each status of the window again: 404 -> deleted, newer ``edited_at`` -> edited."""
        events: list[Event] = []
        for sid in sorted(cur.window, key=id_key):
            try:
                status = await self._call("re-check status", self._client.status, sid)
            except NotFound:
                events.append(MessageDeleted(network=self.network, message_id=sid))
                del cur.window[sid]
                continue
            events += await self._edit_events(status, cur)
        return events

    async def _root(self, status: Any) -> str | None:
        """The thread's top ancestor (``/context`` ancestors[0]); None for a root."""
        sid = str(status["id"])
        parent = status.get("in_reply_to_id")
        if parent is None:
            return None
        if sid in self._roots:
            return self._roots[sid]
        pid = str(parent)
        if pid in self._roots:
            root = self._roots[pid] or pid
        else:
            try:
                context = await self._call("status context", self._client.status_context, sid)
                ancestors = context["ancestors"]
                root = str(ancestors[0]["id"]) if ancestors else pid
            except NotFound:
                root = pid  # deleted meanwhile; its parent is the best root we know
        self._roots[sid] = root
        return root

    async def _message(self, status: Any) -> Message:
        return message_from_status(status, self_id=self._self_id, root_id=await self._root(status))

    # ------------------------------------------------------------------ streaming

    async def _stream(self, cur: Cursor) -> AsyncIterator[EventPage]:
        from .stream import QueueListener  # Mastodon.py's StreamListener

        listener = QueueListener(asyncio.get_running_loop())
        handle = await self.context.run_blocking(
            functools.partial(self._client.stream_user, listener, run_async=True, reconnect_async=False)
        )
        try:
            try:
                await asyncio.wait_for(listener.connected.wait(), timeout=self.settings.timeout_seconds)
            except TimeoutError:
                raise RetryableError("the Mastodon streaming API did not answer; will try again") from None
            async for page in self.poll(cur):  # what happened before the stream opened
                yield page
            while True:
                try:
                    kind, payload = await asyncio.wait_for(listener.queue.get(), timeout=self.settings.poll_seconds)
                except TimeoutError:
                    if not handle.is_alive():
                        raise RetryableError("the Mastodon stream ended; will reconnect and catch up") from None
                    continue
                events = await self._stream_events(kind, payload, cur)
                if events:
                    yield EventPage(events=events, cursor=cur.dump())
        finally:
            handle.close()

    async def _stream_events(self, kind: str, payload: Any, cur: Cursor) -> list[Event]:
        if kind == "abort":
            raise RetryableError(f"the Mastodon stream broke ({payload}); will reconnect and catch up")
        if kind == "notification":
            nid = str(payload["id"])
            if id_key(nid) <= id_key(cur.notifications):
                return []  # caught up by polling already
            events = await self._notification_events(payload, cur)
            cur.notifications = nid
            return events
        if kind == "update":
            sid = str(payload["id"])
            if not self.settings.own_statuses or str(payload["account"]["id"]) != self._self_id:
                return []  # others' posts arrive as notifications
            if id_key(sid) <= id_key(cur.own):
                return []
            events = await self._created_events(payload, cur)
            cur.own = sid
            return events
        if kind == "status.update":
            return await self._edit_events(payload, cur)
        if kind == "delete":
            cur.window.pop(payload, None)
            return [MessageDeleted(network=self.network, message_id=payload)]
        return []

    # ------------------------------------------------------------------ threads, profiles, replies

    async def fetch_thread(self, root_id: str) -> list[Message]:
        try:
            status = await self._call("status", self._client.status, root_id)
            context = await self._call("status context", self._client.status_context, root_id)
        except NotFound:
            raise SkippableError(f"Mastodon status {root_id} is gone") from None
        ancestors = list(context["ancestors"])
        top = str(ancestors[0]["id"]) if ancestors else str(status["id"])
        thread = [*ancestors, status, *context["descendants"]]
        return [
            message_from_status(s, self_id=self._self_id, root_id=top if s.get("in_reply_to_id") is not None else None)
            for s in thread
        ]

    async def fetch_profile(self, account_id: str) -> SocialProfile:
        try:
            account = await self._call("account", self._client.account, account_id)
        except NotFound:
            raise SkippableError(f"Mastodon account {account_id} is gone") from None
        return profile_from_account(account, self.network)

    async def send_reply(self, in_reply_to: str, text: str, idempotency_key: str) -> SentReply:
        """Post ``@author text`` under ``in_reply_to`` with the parent's visibility (a direct
        message gets a direct reply). The ``Idempotency-Key`` header makes Mastodon return the
        first status for a repeated key, for one hour (https://docs.joinmastodon.org/methods/statuses/#create)."""
        try:
            parent = await self._call("status", self._client.status, in_reply_to)
        except NotFound:
            raise SkippableError(f"cannot reply: Mastodon status {in_reply_to} is gone") from None
        mention = "@" + str(parent["account"]["acct"])
        body = (
            text if str(parent["account"]["id"]) == self._self_id or text.startswith(mention) else f"{mention} {text}"
        )
        try:
            status = await self._call(
                "post reply",
                self._client.status_post,
                body,
                in_reply_to_id=str(parent["id"]),
                visibility=str(parent["visibility"]),
                idempotency_key=idempotency_key,
            )
        except NotFound:
            raise SkippableError(f"cannot reply: Mastodon status {in_reply_to} is gone") from None
        root = await self._root(parent) or str(parent["id"])
        self._roots[str(status["id"])] = root
        return SentReply(message=message_from_status(status, self_id=self._self_id, root_id=root))


def _prev_min_id(page: Any, current: str) -> str:
    """The ``min_id`` of the page's ``rel="prev"`` Link (the newest id in it), else ``current``."""
    prev = getattr(page, "_pagination_prev", None) if page else None
    if prev is not None and prev.get("min_id") is not None:
        return str(prev["min_id"])
    return current
