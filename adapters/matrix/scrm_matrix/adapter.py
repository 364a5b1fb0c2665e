"""The Matrix network adapter: rooms of one homeserver as conversations, read with ``/sync``.

Listening: one ``/sync`` (with a filter for the configured rooms and the event types
``m.room.message``, ``m.room.redaction``, ``m.room.member``) plus the back-fill of its
gaps is one *batch*; a batch is cut into pages of ``page_size`` events
(:mod:`scrm_matrix.timeline`, cursors in :mod:`scrm_matrix.cursor`). With
``follow=False`` the iterator ends after the batch that brings it up to date; with
``follow=True`` it long-polls ``/sync`` for ``sync_seconds`` seconds at a time.

Replies go out with ``PUT /rooms/{roomId}/send/m.room.message/{txnId}``, the txnId
derived from the idempotency key: the homeserver answers a repeated txnId from the same
device with the first event instead of posting again
(https://spec.matrix.org/v1.15/client-server-api/#transaction-identifiers).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from scrm_core import AdapterContext, NetworkCapability, PollingAdapter, ReplyGuarantee, SentReply
from scrm_core.errors import FatalError, RetryableError, SkippableError
from scrm_core.models import Event, EventPage, Message, MessageEdited, SocialProfile

from .api import MatrixApi, MatrixRequestError
from .cursor import Position
from .events import EventIndex, Translator
from .mapping import MESSAGE, THREAD, member_profile, sync_filter
from .settings import MatrixSettings
from .timeline import fetch_batch

__all__ = ["MatrixAdapter", "txn_id_for"]


def txn_id_for(idempotency_key: str) -> str:
    """The transaction id of a reply: the same key always gives the same id, any key gives a
    path-safe one."""
    return "scrm-" + hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:40]


class MatrixAdapter(PollingAdapter[MatrixSettings, Position]):
    """A Matrix homeserver's rooms, as the account in the settings sees them."""

    name: ClassVar[str] = "matrix"
    Settings = MatrixSettings
    cursor_type = Position
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

    def __init__(self, settings: MatrixSettings | Mapping[str, Any], context: AdapterContext | None = None) -> None:
        super().__init__(settings, context)
        self._api: MatrixApi | None = None
        self._translator: Translator | None = None
        self._room_ids: list[str] = []
        self._filter = ""
        self.me = ""

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        api = MatrixApi(self.settings, self.context.http)
        try:
            await self._connect(api)
        except BaseException:
            await api.api.aclose()  # a failed start leaves nothing open
            raise

    async def _connect(self, api: MatrixApi) -> None:
        await api.log_in()
        self.me = await api.whoami()
        self._room_ids = [await api.resolve_alias(r) if r.startswith("#") else r for r in self.settings.rooms]
        missing = [r for r in self._room_ids if r not in await api.joined_rooms()]
        if missing:
            raise FatalError(
                f"Matrix account {self.me} is not a member of {', '.join(missing)} (rooms setting): "
                "invite it and join the room with it, or remove the room from the setting"
            )
        direct = await api.direct_rooms(self.me)
        self._translator = Translator(self.network, self.me, direct, EventIndex(api))
        self._filter = sync_filter(self._room_ids, self.settings.page_size)
        self._api = api

    async def close(self) -> None:
        if self._api is not None:
            await self._api.api.aclose()
        self._api = None

    def _started(self) -> tuple[MatrixApi, Translator]:
        if self._api is None or self._translator is None:
            raise FatalError("the matrix adapter was used before start()")
        return self._api, self._translator

    # ------------------------------------------------------------ listening

    async def idle(self) -> None:
        """No wait between passes: each ``/sync`` long-polls for ``sync_seconds`` when following."""

    async def poll(self, position: Position) -> AsyncIterator[EventPage]:
        """One ``/sync`` from ``position`` (and its back-filled gaps), in pages."""
        api, translator = self._started()
        size = self.settings.page_size
        timeout_ms = int(self.settings.sync_seconds * 1000) if self.following else 0
        batch = await fetch_batch(api, self._room_ids, position.since, self._filter, timeout_ms)
        for room, room_events in batch.rooms.items():
            for raw_event in room_events:  # the whole batch, also what an earlier run already yielded
                translator.learn(room, raw_event)
        remaining = batch.merged(position.done)
        done = dict(position.done)
        for start in range(0, len(remaining), size):
            chunk = remaining[start : start + size]
            events: list[Event] = []
            rejects: list[tuple[str, str]] = []
            for room, raw in chunk:
                try:
                    event = await translator.translate(room, raw)
                except (FatalError, RetryableError):
                    raise  # the homeserver or the credentials, not this event
                except Exception as exc:  # Malformed or anything else: this event only
                    rejects.append((f"{room}/{raw.get('event_id')}", f"{type(exc).__name__}: {exc}"[:300]))
                else:
                    if event is not None:
                        events.append(event)
                done[room] = done.get(room, 0) + 1
            last = start + size >= len(remaining)
            after = Position(batch.next_batch) if last else Position(position.since, dict(done))
            yield EventPage(events=events, cursor=after.dump(), rejects=rejects)
        if self.following and not remaining and batch.next_batch != position.since:
            # Nothing for us, but the token moved: save it, so a restart skips what was skipped.
            yield EventPage(events=[], cursor=Position(batch.next_batch).dump())

    # ------------------------------------------------------------ lookups

    async def _room_of(self, event_id: str) -> str | None:
        """The configured room holding an event: remembered from the stream, else asked room by room."""
        _, translator = self._started()
        known = translator.index.known_room(event_id)
        if known is not None:
            return known
        for room in self._room_ids:
            if await translator.index.get(room, event_id) is not None:
                return room
        return None

    async def _raw_event(self, room: str, event_id: str) -> dict[str, Any]:
        api, translator = self._started()
        event = await api.event(room, event_id)
        translator.learn(room, event)
        return event

    async def fetch_thread(self, root_id: str) -> list[Message]:
        """The root and every message whose conversation root it is, edits applied, redacted
        ones left out: ``/context`` for the token after the root, then ``/messages`` forwards
        (at most ``thread_scan_limit`` events)."""
        api, translator = self._started()
        room = await self._room_of(root_id)
        if room is None:
            raise SkippableError(f"Matrix event {root_id} is in none of the configured rooms")
        root = await self._raw_event(room, root_id)
        found: dict[str, Message] = {}
        root_summary = translator.index.remember(room, root)
        if not root_summary.redacted:
            found[root_id] = await translator.message(root_summary, root)
        token = await api.context_end(room, root_id)
        scanned = 0
        while token and scanned < self.settings.thread_scan_limit:
            limit = min(self.settings.page_size, self.settings.thread_scan_limit - scanned)
            page = await api.messages(room, start=token, direction="f", limit=limit, types=[MESSAGE])
            for raw in page.get("chunk") or []:
                scanned += 1
                summary = translator.index.remember(room, raw)
                if summary.redacted:
                    continue
                if summary.is_edit:
                    edited = await translator.translate(room, raw)
                    if isinstance(edited, MessageEdited) and edited.message.id in found:
                        found[edited.message.id] = edited.message
                    continue
                thread_root, _ = await translator.index.placement(summary)
                if thread_root == root_id:
                    found[summary.event_id] = await translator.message(summary, raw)
            end = page.get("end")
            token = str(end) if end and end != token else None
        return list(found.values())

    async def fetch_profile(self, account_id: str) -> SocialProfile:
        api, _ = self._started()
        try:
            data = await api.profile(account_id)
        except MatrixRequestError as exc:
            raise SkippableError(f"Matrix profile of {account_id}: {exc.errcode}") from None
        return member_profile(account_id, data, self.network)

    # ------------------------------------------------------------ replies

    async def send_reply(self, in_reply_to: str, text: str, idempotency_key: str) -> SentReply:
        """Reply in the target's thread if it is in one (``m.thread`` + ``m.in_reply_to``,
        not falling back), else as a rich reply; mention the target's sender as the spec
        asks of replies (https://spec.matrix.org/v1.15/client-server-api/#mentioning-the-replied-to-user)."""
        api, translator = self._started()
        room = await self._room_of(in_reply_to)
        target = await translator.index.get(room, in_reply_to) if room else None
        if room is None or target is None:
            raise SkippableError(f"Matrix event {in_reply_to} is in none of the configured rooms (or not visible)")
        if target.type != MESSAGE:
            raise SkippableError(f"Matrix event {in_reply_to} is a {target.type}, not a message")
        reply = {"event_id": in_reply_to}
        relates: dict[str, Any] = {"m.in_reply_to": reply}
        if target.relation.rel_type == THREAD and target.relation.target:
            relates = {"rel_type": THREAD, "event_id": target.relation.target, "is_falling_back": False, **relates}
        content: dict[str, Any] = {"msgtype": "m.text", "body": text, "m.relates_to": relates}
        content["m.mentions"] = {"user_ids": [target.sender]} if target.sender != self.me else {}
        try:
            event_id = await api.send_message(room, txn_id_for(idempotency_key), content)
        except MatrixRequestError as exc:
            raise SkippableError(
                f"Matrix refused the reply in {room}: {exc.status} {exc.errcode} {exc.error}"
            ) from None
        raw = await self._raw_event(room, event_id)
        return SentReply(message=await translator.message(translator.index.remember(room, raw), raw))
