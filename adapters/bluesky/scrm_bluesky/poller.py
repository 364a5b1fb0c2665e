"""Poll mode: notifications and searches, merged into one stream ordered by ``indexedAt``.

``app.bsky.notification.listNotifications`` (reasons mention, reply, quote) and
``app.bsky.feed.searchPosts`` (``sort=latest``, ``since``) both answer newest first with an
opaque ``cursor`` for the next (older) page (lexicons app.bsky.notification.listNotifications
and app.bsky.feed.searchPosts). Each poll reads back to a little before the last post
emitted (``overlap_seconds``), merges the sources by URI, and emits what is new in
(``indexedAt``, URI) order, ``page_size`` posts a page, each page with the cursor after it.

Deletions: Bluesky's AppView simply stops returning a deleted post, so every poll re-checks
the latest ``recheck_recent`` posts emitted with ``app.bsky.feed.getPosts`` (25 URIs per
request) and emits :class:`MessageDeleted` for those that are gone. Posts cannot be edited
in the Bluesky app, so poll mode reports no edits.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from scrm_core.models import Event, EventPage, MessageCreated, MessageDeleted

from .cursor import PollCursor
from .mapping import message_from_view, parse_time, time_from_us, us_from_time

if TYPE_CHECKING:
    from .adapter import BlueskyAdapter

__all__ = ["Poller"]

_Item = tuple[int, str, dict[str, Any]]  # (indexedAt µs, uri, post view)


class Poller:
    """Poll mode of an adapter: its API, settings and guarded mapping (a post it cannot read is its reject)."""

    def __init__(self, adapter: BlueskyAdapter) -> None:
        self.api, self.settings, self.network, self.guarded = (
            adapter.api,
            adapter.settings,
            adapter.network,
            adapter.guarded,
        )

    async def poll(self, state: PollCursor) -> AsyncIterator[EventPage]:
        """One poll: deletions among the recent posts, then every new post, in pages."""
        gone = await self._deleted(state)
        if gone:
            state.recent = [(u, t) for u, t in state.recent if u not in gone]
            deleted: list[Event] = [MessageDeleted(network=self.network, message_id=u) for u in gone]
            yield EventPage(events=deleted, cursor=state.dump())
        lower = state.time_us - int(self.settings.overlap_seconds * 1e6) if state.time_us else None
        items = sorted(i for i in (await self._collect(lower)).values() if self._is_new(state, i[0], i[1]))
        size = self.settings.page_size
        for start in range(0, len(items), size):
            chunk = items[start : start + size]
            events: list[Event] = []
            rejects: list[tuple[str, str]] = []
            for _, uri, view in chunk:
                events += await self.guarded(uri, functools.partial(self._created, view), rejects)
            self._advance(state, chunk)
            yield EventPage(events=events, cursor=state.dump(), rejects=rejects)

    def _created(self, view: dict[str, Any]) -> list[Event]:
        return [MessageCreated(message=message_from_view(view, me=self.api.did, network=self.network))]

    @staticmethod
    def _is_new(state: PollCursor, time_us: int, uri: str) -> bool:
        if (time_us, uri) > state.position:
            return True
        # indexed late, behind the last post emitted: new unless already emitted (tracked above floor)
        return time_us > state.floor and all(u != uri for u, _ in state.recent)

    def _advance(self, state: PollCursor, chunk: list[_Item]) -> None:
        last = max((t, u) for t, u, _ in chunk)
        if last > state.position:
            state.time_us, state.uri = last
        recent = sorted([*state.recent, *((u, t) for t, u, _ in chunk)], key=lambda r: (r[1], r[0]))
        keep = self.settings.recheck_recent
        dropped, state.recent = recent[: max(0, len(recent) - keep)], recent[max(0, len(recent) - keep) :]
        if dropped:
            state.floor = max(state.floor, dropped[-1][1])
        elif keep == 0:
            state.floor = state.time_us

    async def _deleted(self, state: PollCursor) -> set[str]:
        if not state.recent or self.settings.recheck_recent == 0:
            return set()
        uris = [u for u, _ in state.recent]
        alive = {str(view["uri"]) for view in await self.api.get_posts(uris)}
        return {u for u in uris if u not in alive}

    async def _collect(self, lower_us: int | None) -> dict[str, _Item]:
        found: dict[str, _Item] = {}

        def add(view: dict[str, Any]) -> int:
            when = parse_time(view.get("indexedAt")) or datetime.now(UTC)
            t = us_from_time(when)
            found.setdefault(str(view["uri"]), (t, str(view["uri"]), view))
            return t

        s = self.settings
        since = None if lower_us is None else _iso(time_from_us(lower_us))
        if s.notifications:
            cursor: str | None = None
            for _ in range(s.max_pages):
                answer = await self.api.list_notifications(cursor, s.page_size)
                times = [
                    add(n) for n in answer.get("notifications", []) if n.get("reason") in ("mention", "reply", "quote")
                ]
                cursor = answer.get("cursor")
                if (
                    not cursor
                    or not answer.get("notifications")
                    or (lower_us is not None and times and min(times) < lower_us)
                ):
                    break
        for query in s.search_queries:
            cursor = None
            for _ in range(s.max_pages):
                answer = await self.api.search_posts(query, cursor, s.page_size, since)
                for view in answer.get("posts", []):
                    add(view)
                cursor = answer.get("cursor")
                if not cursor or not answer.get("posts"):
                    break
        return found


def _iso(when: datetime) -> str:
    return (
        (when - timedelta(microseconds=when.microsecond % 1000))
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
