"""A heavy source scales across the fleet: its pages go through a shared stream.

A source with ``stream = true`` (in a fleet, with a :class:`PageStream` installed by a
coordination plugin such as scrm-redis) is read by the holder of its lease, as any source,
but its pages are not ingested there: each is **published** with a per-source sequence
number (1, 2, 3...) and the adapter's cursor after it. Every worker, the reader included,
**consumes** pages from the stream: it runs understanding (the costly, per-message part:
language, sentiment, listening, moderation, labels) at once, in parallel with the other
workers, then waits for the page's **turn**: it runs the rest of ingest (which reads what
the pages before it stored) and commits, only once the checkpoint shows the page before it.

* **In order, once.** The source's checkpoint carries the sequence of the last committed
  page (:func:`stream_checkpoint`). A page is committed under a short commit lease
  (``<source>#page``, fenced like a reader's commit), after reading the checkpoint inside
  that lease: page N is committed only if the checkpoint says N - 1; one the checkpoint
  already covers is acknowledged and dropped. Two workers holding the same page (one
  presumed dead and its page claimed) cannot both commit it.
* **A consumer dies**: the pages it held stay pending in the stream; once idle for
  ``[state] lease_seconds`` another worker claims them (a live consumer keeps its pages
  fresh while they wait for their turn).
* **The reader dies**: the next holder of the source's lease resumes after the last page
  published (the stream keeps it until the page after it is committed), or from the
  checkpoint when everything published is committed; it never publishes a sequence twice
  (the stream refuses it) and a deposed reader's late publish is refused (by lease token).
* **Backpressure**: the reader publishes while fewer than ``backlog`` pages wait.

Sources without ``stream``, a single process and SQLite are read and ingested as before.
The stream itself is a coordination back end's (:class:`scrm_core.streams.PageStream`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from scrm.hooks import Hooks
from scrm.store import AsyncStore, FleetStore, Lease, LeaseLost, PageCommit, StateStore
from scrm_core.adapters import NetworkAdapter
from scrm_core.config import Config
from scrm_core.errors import RetryableError
from scrm_core.models import CrmOperation, EventPage, Message, MessageCreated, MessageEdited, SocialProfile
from scrm_core.retry import asked_wait, backoff
from scrm_core.streams import PageStream, StreamPage, split_checkpoint, stream_checkpoint

from .fleet import LeaseKeeper
from .ingest import Ingestor
from .sink import Sink

if TYPE_CHECKING:
    from .runner import Engine, Reader

__all__ = ["PreparedIngestor", "StreamedSources"]

log = logging.getLogger("scrm.stream")


#: Messages understood at a time, hook by hook, between two looks at the turn: a page whose
#: turn came waits for at most this many.
_CHUNK = 16


def page_turn_lease(source: str) -> str:
    return f"{source}#page"  # "#": no source name has one


def _messages(page: EventPage) -> list[Message]:
    return [e.message for e in page.events if isinstance(e, MessageCreated | MessageEdited)]


class PreparedIngestor(Ingestor):
    """Ingest whose understanding of a message was done beforehand, out of turn."""

    def __init__(self, store: AsyncStore, hooks: Hooks, config: Config) -> None:
        super().__init__(store, hooks, config)
        self.understood: set[int] = set()  # ids of the messages understood already

    async def understand(self, message: Message) -> None:
        if id(message) not in self.understood:
            await self.understander.understand(message)

    async def understand_page(self, messages: list[Message]) -> None:
        await super().understand_page([m for m in messages if id(m) not in self.understood])


@dataclass
class _Held:
    page: StreamPage
    events: EventPage


CommitPage = Callable[[str, EventPage, Ingestor, Lease], Awaitable[tuple[list[int], list[CrmOperation]]]]


@dataclass
class StreamedSources:
    """This worker's part in streamed sources: publishing those it reads, consuming all of them."""

    stream: PageStream
    store: AsyncStore
    keeper: LeaseKeeper
    sources: list[str]
    #: Ingest for the pages' turns, understanding done beforehand (:meth:`for_engine` builds it).
    ingestor: PreparedIngestor
    commit: CommitPage
    backlog: int = 8
    in_hand: int = 2  # pages understood ahead of their turn
    retry_max_seconds: float = 60.0
    #: The worker's sink: a reader publishes only while the fleet's outbox has room, and
    #: each commit counts into the outbox's depth the sink follows.
    sink: Sink | None = None
    committed_pages: int = 0
    _held: dict[tuple[str, int], _Held] = field(default_factory=dict)
    _known: dict[str, int] = field(default_factory=dict)  # source -> a sequence known committed
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    #: source -> the last page this worker committed (or the checkpoint it first saw)
    _mine: dict[str, int] = field(default_factory=dict)
    _shared_at: float = -math.inf  # monotonic time another worker was last seen committing
    #: Set while this worker does not hold a source's commit lease. While other workers
    #: consume too, understanding pauses during the turn: the turn is then the source's one
    #: sequential part, which every worker waits on, so it gets this process's CPU (and the
    #: GIL its store thread needs) to itself. Alone, a worker understands on meanwhile: it
    #: has the turn's waits for the database to fill.
    _off_turn: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def for_engine(
        cls, engine: Engine, readers: dict[str, Reader], ingestor: Ingestor, sink: Sink
    ) -> StreamedSources | None:
        """This fleet worker's streamed sources, their entries in ``readers`` now publishing;
        None if no enabled source has ``stream = true`` (or no stream is installed: then they
        are read and ingested by their reader alone, and a warning says so)."""
        config = engine.config
        names = [s.name for s in config.sources if s.enabled and s.stream and s.name in readers]
        if not names:
            return None
        keeper, store = engine._keeper, engine.store
        if engine.page_stream is None or keeper is None or store is None:
            log.warning(
                "sources %s have stream = true, but no stream of pages is installed ([state] coordination_url "
                "naming a Redis, with scrm-redis): each is read and ingested by its reader alone",
                ", ".join(names),
            )
            return None
        ingest = PreparedIngestor(store, engine.hooks, config)
        ingest.counts = ingestor.counts  # one set of counts for the run
        streamed = cls(
            engine.page_stream,
            store,
            keeper,
            names,
            ingest,
            engine._commit,
            backlog=2 * config.engine.pages_in_flight,
            retry_max_seconds=config.engine.retry_max_seconds,
            sink=sink,
        )
        for name in names:
            readers[name] = streamed.reader(name, engine.sources[name], follow=True)
        return streamed

    async def run(self, queue: asyncio.Queue[tuple[str, object]]) -> None:
        """:meth:`consume` as one of the engine's tasks: a failure goes to the ingest loop, which stops the run."""
        attempt = 0
        while True:
            try:
                await self.consume()
                return
            except RetryableError as exc:  # the stream or the store unreachable a while: go on after a pause
                attempt += 1
                wait = backoff(attempt, asked_wait(exc), cap=self.retry_max_seconds)
                log.warning("streamed sources: %s; trying again in %.1fs", exc.operator_message, wait)
                await asyncio.sleep(wait)
            except Exception as exc:
                await queue.put(("stream", exc))
                return

    @property
    def idle(self) -> float:
        """How long a page may stay pending untouched before another worker claims it."""
        return self.keeper.lease_seconds

    # ------------------------------------------------------------ the reader

    def reader(
        self, name: str, adapter: NetworkAdapter, follow: bool
    ) -> Callable[[str | None], AsyncIterator[EventPage]]:
        """The source's reader in the engine: it publishes, and yields nothing to ingest (it
        ignores the cursor it is given: it goes on from the stream, or the checkpoint)."""
        return lambda cursor: self._published(name, adapter, follow)

    async def _published(self, name: str, adapter: NetworkAdapter, follow: bool) -> AsyncIterator[EventPage]:
        try:
            await self._publish(name, adapter, follow)
        except LeaseLost:
            self.keeper.lost(name)  # another worker reads it now, from where this one stopped
        nothing: list[EventPage] = []
        for page in nothing:
            yield page

    async def _publish(self, name: str, adapter: NetworkAdapter, follow: bool) -> None:
        lease = self.keeper.readers.get(name)
        if lease is None:
            raise LeaseLost(name)
        seq, cursor = await self._resume(name, lease)
        acknowledging = asyncio.create_task(self._acknowledge(name, adapter, seq), name=f"acknowledge:{name}")
        try:
            await self._publish_from(name, adapter, follow, lease, seq, cursor)
        finally:
            acknowledging.cancel()

    async def _acknowledge(self, name: str, adapter: NetworkAdapter, seq: int) -> None:
        """Tell the reader's adapter what the consumers committed (a source whose reads are
        destructive acknowledges only then: :meth:`NetworkAdapter.committed`)."""
        while True:
            await asyncio.sleep(0.5)  # the checkpoint's pace, looked at twice a second
            try:
                committed, cursor = split_checkpoint(await self.store.call(StateStore.checkpoint, name))
                if committed is not None and committed > seq and cursor is not None:
                    await adapter.committed(cursor)
                    seq = committed
            except Exception as exc:  # the next look acknowledges more
                log.warning("source %s: acknowledging commits failed: %s", name, exc)

    async def _publish_from(
        self, name: str, adapter: NetworkAdapter, follow: bool, lease: Lease, seq: int, cursor: str | None
    ) -> None:
        async for page in adapter.listen(cursor, follow=follow):
            if not page.events and not page.rejects and page.cursor == cursor:
                continue
            await self._wait_for_room(name)
            seq += 1
            data = page.model_dump_json().encode()
            await self.stream.publish(StreamPage(name, seq, data, page.cursor), lease.token)
            cursor = page.cursor

    async def _resume(self, name: str, lease: Lease) -> tuple[int, str | None]:
        """Where this reader goes on: after the last page published, or from the checkpoint."""
        await self.stream.fence(name, lease.token)  # first: the reader before stops publishing
        seq, cursor = split_checkpoint(await self.store.call(StateStore.checkpoint, name))
        highest, last = await self.stream.tail(name)
        if seq is not None and last is not None and last.seq > seq:
            log.info("source %s: going on after page %d, published and not yet committed", name, last.seq)
            return last.seq, last.cursor
        if seq is None or highest > seq:
            # Read directly since (or the stream lost pages): pages left in it are stale, and
            # the checkpoint starts after the highest sequence ever published.
            await self.stream.reset(name)
            seq = max(seq or 0, highest)
            await self.store.call(StateStore.commit_page, PageCommit(name, stream_checkpoint(seq, cursor), lease=lease))
        log.info("source %s: reading on from the checkpoint after page %d", name, seq)
        return seq, cursor

    async def _wait_for_room(self, name: str) -> None:
        if self.sink is not None and not self.sink.has_room():
            await self.sink.wait_for_room()  # the fleet's outbox is above engine.outbox_high_water
        pause = 0.005
        while await self.stream.backlog(name) >= self.backlog:
            await asyncio.sleep(pause)  # polling for room: consumers finish pages at their pace
            pause = min(pause * 2, 0.05)

    # ------------------------------------------------------------ the consumer

    async def consume(self) -> None:
        """Take, understand and commit pages of every streamed source, until cancelled."""
        await self._warm_up()
        self._off_turn.set()
        fetch = asyncio.create_task(self._fetch(), name="stream:fetch")
        try:
            await self._commit_in_turn(fetch)
        finally:
            fetch.cancel()
            with contextlib.suppress(BaseException):
                await fetch
            log.info("streamed sources: this worker committed %d page(s)", self.committed_pages)

    async def _warm_up(self) -> None:
        """Load what understanding loads at its first message (models, word lists: ~0.5 s of
        CPU) before taking a page: pages commit in order, so a page held while a newly
        joined worker loads would hold up every page after it."""
        author = SocialProfile(network="scrm", account_id="warm-up")
        text = "Merci, the new update is great but the app crashes at login"
        message = Message(network="scrm", id="warm-up", author=author, text=text, created_at=datetime.now(UTC))
        await self.ingestor.understander.understand(message)

    async def _fetch(self) -> None:
        me = self.keeper.worker.id
        last_claim = last_keep = time.monotonic()
        while True:
            # No new page while this worker has the turn: the other workers understand the
            # next pages meanwhile, and the turn (the source's one sequential part) ends sooner.
            room = self.in_hand - len(self._held) if self._off_turn.is_set() else 0
            # Consecutive pages when it can: their commits follow each other under one turn.
            pages = await self.stream.take(me, self.sources, room, min(1.0, self.idle / 4)) if room > 0 else []
            now = time.monotonic()
            if now - last_claim > self.idle / 2:  # pages a dead consumer held: always taken
                pages += await self.stream.claim(me, self.sources, self.idle, 16)
                last_claim = now
            if now - last_keep > self.idle / 4 and self._held:
                await self.stream.keep(me, [held.page for held in self._held.values()])
                last_keep = now
            for page in pages:
                key = (page.source, page.seq)
                if key not in self._held:
                    try:
                        self._held[key] = _Held(page, await self._understand(page))
                    finally:
                        self._arrived.set()
                    await asyncio.sleep(0)  # let a page whose turn came be committed now
            if room <= 0 and not pages:
                await asyncio.sleep(min(0.05, self.idle / 8))  # full: the commit side frees room

    async def _understand(self, page: StreamPage) -> EventPage:
        events = EventPage.model_validate_json(page.data)
        understood, understander = self.ingestor.understood, self.ingestor.understander
        messages = _messages(events)
        for start in range(0, len(messages), _CHUNK):
            chunk = messages[start : start + _CHUNK]
            await understander.understand_page(chunk)  # hook by hook, as ingest does a page
            understood.update(id(message) for message in chunk)
            if start + _CHUNK < len(messages):
                await asyncio.sleep(0)  # a page whose turn came is committed meanwhile, not after this one
                await self._off_turn.wait()
        return events

    async def _commit_in_turn(self, fetch: asyncio.Task[None]) -> None:
        while True:
            if fetch.done():
                fetch.result()  # the stream failed: the run stops and says why
            if not self._held:
                self._arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), 1.0)
                continue
            firsts: dict[str, int] = {}
            for source, seq in self._held:
                firsts[source] = min(seq, firsts.get(source, seq))
            progressed = busy = False
            for source, seq in firsts.items():
                known = self._known.get(source)
                if known is None or seq > known + 1:
                    # A look at the checkpoint, without the commit lease: taking the lease
                    # for a page whose turn has not come would hold up the page whose has.
                    known, _ = split_checkpoint(await self.store.call(StateStore.checkpoint, source))
                    if known is None:
                        continue  # the reader has not started the stream over yet
                    self._known[source] = known
                    self._saw(source, known)
                if seq <= known + 1:
                    outcome = await self._try_commit(self._held[(source, seq)])
                    progressed |= outcome is True
                    busy |= outcome is None
            if not progressed:
                # Busy: the page is next but another worker holds the commit lease (it gives
                # it back in a moment, and its turn's signal was taken already): look again soon.
                woke = await self.stream.wait_turn(list(firsts.items()), 0.02 if busy else 0.25)
                if woke is None:
                    self._known.clear()  # nobody signalled: read the checkpoints again
                else:
                    self._known[woke[0]] = woke[1] - 1
                    self._saw(woke[0], woke[1] - 1)

    async def _try_commit(self, held: _Held) -> bool | None:
        """Commit the page if its turn has come, then the pages after it this worker holds,
        under one turn: True if it did, False if its turn has not come, None if another
        worker holds the source's commit lease now."""
        source, store, keeper = held.page.source, self.store, self.keeper
        name = page_turn_lease(source)
        got, checkpoint = await store.run(lambda s: self._take_turn(s, name, source))
        if not got:
            return None
        finished: list[StreamPage] = []
        try:
            seq, _ = split_checkpoint(checkpoint)
            if seq is None:
                return False  # the reader has not started the stream over yet
            self._known[source] = seq
            self._saw(source, seq)
            if time.monotonic() - self._shared_at < self.idle:
                self._off_turn.clear()
            next_: _Held | None = held
            while next_ is not None:
                page = next_.page
                if page.seq > seq + 1:
                    return False  # not its turn yet
                if page.seq == seq + 1:
                    events = EventPage.model_construct(
                        events=next_.events.events, cursor=stream_checkpoint(page.seq, page.cursor),
                        rejects=next_.events.rejects,
                    )  # fmt: skip
                    seqs, ops = await self.commit(source, events, self.ingestor, got[0])
                    if self.sink is not None:
                        self.sink.notify(seqs, ops)
                    seq = self._known[source] = self._mine[source] = page.seq
                    self.committed_pages += 1
                self._drop(next_)  # committed now, or before (an older copy of it)
                finished.append(page)
                # The next page, if this worker holds it understood (one being understood
                # waits: understanding pauses during the turn, and nobody else can commit it).
                next_ = self._held.get((source, seq + 1))
            return True
        except LeaseLost:
            return False  # the commit lease lapsed meanwhile: try again
        finally:
            self._off_turn.set()
            await store.fleet(FleetStore.release_leases, keeper.worker.id, [name])
            # Acknowledged once the turn is given back: the last one wakes the worker whose
            # page is next, which then finds the commit lease free.
            for page in finished:
                await self.stream.done(page)

    def _saw(self, source: str, committed: int) -> None:
        """Note the source's last committed page: one this worker did not commit (after the
        checkpoint it first saw, e.g. where a restart goes on from) means others consume too."""
        if committed > self._mine.setdefault(source, committed):
            self._shared_at = time.monotonic()

    def _take_turn(self, store: StateStore, name: str, source: str) -> tuple[list[Lease], str | None]:
        """In the store's thread, one hop: the source's commit lease, and if this worker got it,
        the checkpoint (read under the lease: no other worker commits the source meanwhile)."""
        assert isinstance(store, FleetStore)
        keeper = self.keeper
        got = store.acquire_leases(keeper.worker.id, [name], 1, keeper.lease_seconds)
        return got, store.checkpoint(source) if got else None

    def _drop(self, held: _Held) -> None:
        del self._held[(held.page.source, held.page.seq)]
        for message in _messages(held.events):
            self.ingestor.understood.discard(id(message))
