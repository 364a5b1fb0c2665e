"""Jetstream mode: Bluesky's JSON firehose over a websocket, resumed by a time cursor.

``<jetstream_url>/subscribe?wantedCollections=app.bsky.feed.post&wantedDids=...&cursor=<time_us>``
sends one JSON object per frame: ``{did, time_us, kind: "commit", commit: {operation:
create|update|delete, collection, rkey, record, cid}}`` or ``{did, time_us, kind:
"identity", identity: {did, handle, ...}}``. Cursors are unix microseconds, and when
resuming "it may be prudent to rewind your cursor a few seconds for gapless playback if you
process events idempotently" (https://github.com/bluesky-social/jetstream README). So a
resume starts ``rewind_seconds`` before the saved cursor and may deliver some events again
(at-least-once); the engine drops the repeats by event key.

The SDK's ``atproto_jetstream`` client (0.0.73) speaks the newer
``network.bsky.jetstream.subscribeEvents`` XRPC wire with sequence cursors, not
``/subscribe``; this module speaks ``/subscribe`` with ``websockets`` directly.

Without ``follow`` the stream has no end, so the listener stops when it has caught up: an
event stamped after the moment it connected, or ``idle_seconds`` without a frame.
Handles are not in commits: they are looked up with ``app.bsky.actor.getProfiles`` and
kept, and ``identity`` events (a handle change) update them and become
:class:`ProfileUpdated` with the same DID.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException

from scrm_core import LRUCache
from scrm_core.errors import FatalError, RetryableError
from scrm_core.models import (
    Event,
    EventPage,
    MessageCreated,
    MessageDeleted,
    MessageEdited,
    ProfileUpdated,
    SocialProfile,
)

from .api import BlueskyApi
from .cursor import jetstream_cursor, parse_jetstream_cursor
from .mapping import POST, message_from_record, post_uri, profile_from_view, time_from_us
from .settings import BlueskySettings

__all__ = ["JetstreamListener"]

_SEEN_MAX = 10_000


class JetstreamListener:
    def __init__(self, api: BlueskyApi, settings: BlueskySettings, network: str) -> None:
        self.api, self.settings, self.network = api, settings, network
        self.profiles: dict[str, SocialProfile] = {}
        #: Posts emitted lately, so their deletions and edits are reported when the DID is not watched.
        self._seen: LRUCache[str, None] = LRUCache(maxsize=_SEEN_MAX)

    def url(self, cursor_us: int | None) -> str:
        query: list[tuple[str, str]] = [("wantedCollections", POST)]
        query += [("wantedDids", did) for did in self.settings.wanted_dids]
        if cursor_us is not None:
            query.append(("cursor", str(cursor_us)))
        return f"{self.settings.jetstream_url}/subscribe?{urlencode(query)}"

    async def listen(self, cursor: str | None, follow: bool) -> AsyncIterator[EventPage]:
        s = self.settings
        saved = parse_jetstream_cursor(cursor)
        now_us = int(time.time() * 1e6)
        if saved is not None:
            start: int | None = max(0, saved - int(s.rewind_seconds * 1e6))
        else:
            start = now_us - int(s.backfill_seconds * 1e6) if s.backfill_seconds else None
        try:
            async with connect(self.url(start), max_size=2**24, open_timeout=s.timeout_seconds) as ws:
                async for page in self._read(ws, now_us, follow):
                    yield page
        except InvalidStatus as exc:
            if 400 <= exc.response.status_code < 500:
                raise FatalError(
                    f"Jetstream refused the subscription ({exc.response.status_code}): check `jetstream_url`"
                ) from None
            raise RetryableError(f"Jetstream answered {exc.response.status_code}") from None
        except (OSError, WebSocketException, TimeoutError) as exc:
            raise RetryableError(f"Jetstream connection failed: {type(exc).__name__}") from None

    async def _read(self, ws: Any, connected_us: int, follow: bool) -> AsyncIterator[EventPage]:
        raw_events: list[dict[str, Any]] = []
        size = self.settings.page_size
        while True:
            try:
                frame = await asyncio.wait_for(ws.recv(), timeout=self.settings.idle_seconds)
            except TimeoutError:
                if raw_events:
                    yield await self._page(raw_events)
                    raw_events = []
                if not follow:
                    return
                continue
            try:
                event = json.loads(frame)
                time_us = int(event["time_us"])
            except (ValueError, KeyError, TypeError):
                continue  # not an event frame; Jetstream sends nothing else, but never stop on one
            raw_events.append(event)
            caught_up = not follow and time_us >= connected_us
            if len(raw_events) >= size or caught_up:
                yield await self._page(raw_events)
                raw_events = []
            if caught_up:
                return

    async def _page(self, raw_events: list[dict[str, Any]]) -> EventPage:
        await self._resolve({e["did"] for e in raw_events if e.get("kind") == "commit"} - self.profiles.keys())
        events: list[Event] = []
        rejects: list[tuple[str, str]] = []
        for raw in raw_events:
            try:
                event = self._event(raw)
            except (KeyError, TypeError, ValueError) as exc:
                rejects.append((f"jetstream:{raw.get('did')}:{raw.get('time_us')}", f"unreadable event: {exc!r}"[:200]))
                continue
            if event is not None:
                events.append(event)
        return EventPage(events=events, cursor=jetstream_cursor(int(raw_events[-1]["time_us"])), rejects=rejects)

    async def _resolve(self, dids: set[str]) -> None:
        if not dids:
            return
        for view in await self.api.get_profiles(sorted(dids)):
            self.profiles[str(view["did"])] = profile_from_view(view, self.network)

    def _author(self, did: str) -> SocialProfile:
        return self.profiles.get(did) or SocialProfile(network=self.network, account_id=did)

    def _watched(self, did: str) -> bool:
        return did == self.api.did or did in self.settings.wanted_dids

    def _wanted(self, did: str, record: dict[str, Any]) -> bool:
        if self._watched(did):
            return True
        me = self.api.did
        reply = record.get("reply") or {}
        refs = [str((reply.get(k) or {}).get("uri", "")) for k in ("root", "parent")]
        if any(r.startswith(f"at://{me}/") for r in refs):
            return True
        facets = record.get("facets") or []
        if any(f.get("did") == me for facet in facets for f in facet.get("features") or []):
            return True
        text = str(record.get("text") or "").lower()
        return any(all(t in text for t in q.lower().split()) for q in self.settings.search_queries if q.split())

    def _remember(self, uri: str) -> None:
        self._seen[uri] = None

    def _event(self, raw: dict[str, Any]) -> Event | None:
        did, when = str(raw["did"]), time_from_us(int(raw["time_us"]))
        if raw.get("kind") == "identity":
            identity = raw["identity"]
            if not (self._watched(did) or did in self.profiles):
                return None
            known = self._author(did)
            profile = known.model_copy(update={"handle": identity.get("handle") or known.handle})
            self.profiles[did] = profile
            return ProfileUpdated(profile=profile, version=when.isoformat())
        if raw.get("kind") != "commit" or raw["commit"].get("collection") != POST:
            return None
        commit = raw["commit"]
        uri = post_uri(did, str(commit["rkey"]))
        operation = commit.get("operation")
        if operation == "delete":
            if not (self._watched(did) or uri in self._seen):
                return None
            return MessageDeleted(network=self.network, message_id=uri, deleted_at=when)
        record = dict(commit.get("record") or {})
        if not (self._wanted(did, record) or uri in self._seen):
            return None
        self._remember(uri)
        me = self.api.did
        if operation == "update":
            # posts are not editable in the Bluesky app; another client may still rewrite the record
            message = message_from_record(
                uri, record, self._author(did), me=me, fallback_time=when, edited_at=when, network=self.network
            )
            return MessageEdited(message=message)
        message = message_from_record(uri, record, self._author(did), me=me, fallback_time=when, network=self.network)
        return MessageCreated(message=message)
