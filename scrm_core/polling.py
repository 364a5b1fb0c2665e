"""``PollingAdapter``: the base of a network read by asking it, again and again, what is new.

It owns what every polling adapter used to write for itself: the follow loop and the wait
between polls, parsing the saved cursor, cutting pages, and turning each raw item into
events through ONE guarded call, so an item that cannot be read becomes that item's
reject (locator: its network id) and the rest of the page goes on.

A simple network implements three methods::

    class MyNetwork(PollingAdapter[MySettings, MyCursor]):
        cursor_type = MyCursor

        async def fetch(self, cursor):          # one request
            data = await self.api.get_json("/items", params={"after": cursor.after})
            last = data["items"][-1]["id"] if data["items"] else cursor.after
            return Batch(data["items"], MyCursor(after=last), more=bool(data["has_more"]))

        def to_events(self, item):             # one raw item -> its events (may be async)
            return [MessageCreated(message=...)]

A network with several sources to merge, or a re-check window, overrides :meth:`poll`
(one catch-up pass yielding pages) instead of :meth:`fetch`, and maps its items with
:meth:`page`.

**Destructive reads.** Set ``destructive_reads = True`` for a source that forgets what it
handed out once acknowledged (Telegram ``getUpdates``, a queue). :meth:`fetch` is then
always called with the last cursor the engine *committed* (see
:meth:`~scrm_core.NetworkAdapter.committed`), which is what acknowledges; items already
yielded since then are skipped, and when a whole batch is such items the reader waits
for the next commit instead of reading further. A crash at any point re-reads from the
committed cursor and loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic

from typing_extensions import TypeVar

from .adapters import AdapterSettings, NetworkAdapter
from .cursor import Cursor
from .failures import guarded
from .models import Event, EventPage

__all__ = ["Batch", "PollingAdapter"]

SettingsT = TypeVar("SettingsT", bound=AdapterSettings, default=AdapterSettings, covariant=True)
CursorT = TypeVar("CursorT", bound=Cursor, default=Cursor)


@dataclass
class Batch(Generic[CursorT]):
    """What one :meth:`PollingAdapter.fetch` got: raw items in stream order, the cursor right
    after them, and whether more are waiting now (a full page: fetch again at once)."""

    items: Sequence[Any]
    cursor: CursorT
    more: bool = False


class PollingAdapter(NetworkAdapter[SettingsT], Generic[SettingsT, CursorT]):
    """Implement :meth:`fetch` and :meth:`to_events` (or :meth:`poll`); set ``cursor_type``.

    Settings read by the base: ``poll_seconds`` (the wait between passes in follow mode,
    default 60) and ``page_size`` (default 100), when the Settings model has them
    (:class:`~scrm_core.PollingSettings` does).
    """

    cursor_type: ClassVar[type[Cursor]]
    #: The key of a raw item's network id (the default :meth:`item_id`; the locator of its reject).
    item_id_field: ClassVar[str] = "id"

    def __init__(self, settings: SettingsT | Mapping[str, Any], context: Any = None) -> None:
        super().__init__(settings, context)
        #: True while :meth:`listen` runs with ``follow=True`` (a fetch may long-poll then).
        self.following = False
        self._committed: CursorT | None = None
        self._commit_seen = asyncio.Event()
        self._handed_out: set[str] = set()  # destructive reads: ids yielded, not yet acknowledged
        #: Set while a destructive source has handed out all it may and waits for a commit.
        self.waiting_for_commit = asyncio.Event()

    @property
    def poll_seconds(self) -> float:
        return float(getattr(self.settings, "poll_seconds", 60.0))

    @property
    def page_size(self) -> int:
        return int(getattr(self.settings, "page_size", 100))

    # ------------------------------------------------------------ the loop

    async def listen(self, cursor: str | None, *, follow: bool) -> AsyncIterator[EventPage]:
        position = self.parse_cursor(cursor)
        self.following = follow
        if self._committed is None:  # a resume after an error starts from what was read, not committed
            self._committed = position
        while True:
            async for page in self.poll(position):
                if page.cursor is not None:
                    position = self.parse_cursor(page.cursor)
                yield page
            if not follow:
                return
            await self.idle()

    async def idle(self) -> None:
        """Wait between two passes in follow mode: ``poll_seconds``, or less when a commit
        arrives (a destructive source may then read further)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._commit_seen.wait(), self.poll_seconds)
        self._commit_seen.clear()

    async def committed(self, cursor: str) -> None:
        if self.destructive_reads:  # others have nothing to acknowledge
            self._committed = self.parse_cursor(cursor)
            self._commit_seen.set()

    def parse_cursor(self, text: str | None) -> CursorT:
        """``cursor_type.parse(text)``; override when parsing needs the settings."""
        return self.cursor_type.parse(text)  # type: ignore[return-value]

    async def poll(self, cursor: CursorT) -> AsyncIterator[EventPage]:
        """One catch-up pass from ``cursor``: :meth:`fetch` until a batch says no more is waiting."""
        while True:
            start = self._committed if self.destructive_reads and self._committed is not None else cursor
            batch = await self.fetch(start)
            items = list(batch.items)
            if self.destructive_reads:
                # The batch starts at the committed cursor: skip what was handed out already.
                pairs = [(self._item_id(item, n), item) for n, item in enumerate(items)]
                fresh = [(i, item) for i, item in pairs if i not in self._handed_out]
                self._handed_out = (self._handed_out & {i for i, _ in pairs}) | {i for i, _ in fresh}
                if not fresh and batch.more:
                    if self._commit_seen.is_set():  # a commit came meanwhile: read on from it
                        self._commit_seen.clear()
                        continue
                    self.waiting_for_commit.set()  # all that waits was handed out: read on after a commit
                    try:
                        await self.idle()
                    finally:
                        self.waiting_for_commit.clear()
                    continue
                items = [item for _, item in fresh]
            if items or batch.cursor.dump() != cursor.dump():
                yield await self.page(items, batch.cursor)
            cursor = batch.cursor
            if not batch.more:
                return

    # ------------------------------------------------------------ to implement

    async def fetch(self, cursor: CursorT) -> Batch[CursorT]:
        """The raw items after ``cursor`` (at most about ``page_size``) and the cursor after them."""
        raise NotImplementedError(f"{type(self).__name__} must implement fetch(cursor) or poll(cursor)")

    def to_events(self, item: Any) -> Sequence[Event] | Awaitable[Sequence[Event]]:
        """The events of one raw item (none for an item of no interest). May be ``async``.

        Any exception but FatalError and RetryableError makes the item a reject."""
        raise NotImplementedError(f"{type(self).__name__} must implement to_events(item)")

    def item_id(self, item: Any) -> str:
        """The network's id of a raw item, the locator of its reject (default: ``item[item_id_field]``)."""
        return str(item[self.item_id_field])

    # ------------------------------------------------------------ helpers for poll()

    def _item_id(self, item: Any, n: int) -> str:
        try:
            return self.item_id(item)
        except Exception:
            return f"item #{n} of a {type(self).name} batch (no readable id)"

    async def events_of(self, items: Iterable[Any]) -> tuple[list[Event], list[tuple[str, str]]]:
        """Every item through :meth:`to_events`, each guarded: an item that fails with anything but a
        transient or fatal error is that item's reject (:func:`scrm_core.failures.guarded`)."""
        events: list[Event] = []
        rejects: list[tuple[str, str]] = []
        for n, item in enumerate(items):
            events += await self.guarded(self._item_id(item, n), functools.partial(self.to_events, item), rejects)
        return events, rejects

    #: One item's events, its failure made its reject (:func:`scrm_core.failures.guarded`).
    guarded = staticmethod(guarded)

    async def page(self, items: Iterable[Any], cursor: CursorT | str) -> EventPage:
        """One page of ``items`` (mapped by :meth:`events_of`) with the cursor after them."""
        events, rejects = await self.events_of(items)
        text = cursor if isinstance(cursor, str) else cursor.dump()
        return EventPage(events=events, cursor=text, rejects=rejects)
