"""One ``/sync`` and everything it skipped: the room events after a token, complete and in order.

With a small ``timeline.limit`` a sync returns only the *latest* events of a busy room
and marks the timeline ``limited``, with a ``prev_batch`` token where the gap ends. The
gap is filled by paging ``GET /rooms/{roomId}/messages`` backwards from ``prev_batch``
``to`` the token the sync started from (or to the room's beginning on a first sync),
until an answer has no ``end`` (https://spec.matrix.org/v1.15/client-server-api/#syncing,
https://spec.matrix.org/v1.15/client-server-api/#get_matrixclientv3roomsroomidmessages:
an empty ``chunk`` alone does not mean the end).

Rooms are merged into one sequence by ``origin_server_ts`` without reordering any room's
own events, so the order is the same every time the same batch is read.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

from .api import MatrixApi
from .mapping import TIMELINE_TYPES

__all__ = ["Batch", "fetch_batch"]

#: Events per /messages request while back-filling: larger than a scrm page, since a gap is
#: read whole before any of it is yielded (the homeserver may return fewer).
BACKFILL_LIMIT = 100
#: Pages of /messages one gap may take before the back-fill gives up (RetryableError-free
#: guard against a homeserver that keeps returning the same token).
_MAX_BACKFILL_PAGES = 100_000


@dataclass
class Batch:
    since: str | None
    next_batch: str
    rooms: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def merged(self, done: dict[str, int]) -> list[tuple[str, dict[str, Any]]]:
        """``(room_id, event)`` after the first ``done[room]`` events of each room, all rooms merged."""
        streams = [
            [
                (int(e.get("origin_server_ts", 0)), order, i, room, e)
                for i, e in enumerate(events)
                if i >= done.get(room, 0)
            ]
            for order, (room, events) in enumerate(self.rooms.items())
        ]
        return [(room, event) for _, _, _, room, event in heapq.merge(*streams, key=lambda t: (t[0], t[1]))]

    @property
    def size(self) -> int:
        return sum(len(events) for events in self.rooms.values())


async def fetch_batch(
    api: MatrixApi, room_ids: list[str], since: str | None, filter_json: str, timeout_ms: int
) -> Batch:
    """Sync from ``since`` and back-fill every limited timeline of ``room_ids``."""
    data = await api.sync(since, filter_json, timeout_ms)
    batch = Batch(since=since, next_batch=str(data["next_batch"]))
    joined = (data.get("rooms") or {}).get("join") or {}
    for room in room_ids:
        timeline = (joined.get(room) or {}).get("timeline") or {}
        events = [e for e in timeline.get("events") or [] if isinstance(e, dict) and "event_id" in e]
        if timeline.get("limited") and timeline.get("prev_batch"):
            older = await _backfill(api, room, str(timeline["prev_batch"]), since)
            events = older + events
        batch.rooms[room] = _unique(events)
    return batch


async def _backfill(api: MatrixApi, room: str, start: str, stop: str | None) -> list[dict[str, Any]]:
    """The room's events from ``start`` back to ``stop`` (or the beginning), oldest first."""
    newest_first: list[dict[str, Any]] = []
    token: str | None = start
    for _ in range(_MAX_BACKFILL_PAGES):
        page = await api.messages(
            room, start=token, direction="b", limit=BACKFILL_LIMIT, types=TIMELINE_TYPES, stop=stop
        )
        newest_first += [e for e in page.get("chunk") or [] if isinstance(e, dict) and "event_id" in e]
        end = page.get("end")
        if not end or end == token:
            break
        token = str(end)
    return newest_first[::-1]


def _unique(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for event in events:
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            out.append(event)
    return out
