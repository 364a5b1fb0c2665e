"""The engine: sources -> bounded queue -> ingest -> one commit per page -> sink -> CRM.

One reader task per source pulls pages from its adapter into a bounded queue (so a fast
source cannot run ahead of the store: backpressure). One ingest task turns each page into
a :class:`PageCommit` and commits it with the page's cursor. The sink drains the outbox
into the CRM concurrently. SIGINT/SIGTERM stop reading, finish the page in hand, drain
what the CRM accepts within ``drain_seconds``, and return: whatever is left is in the
state store and is sent by the next run.

One process writes a state store (:meth:`StateStore.claim_writer`): a second ``scrm run``
on the same state is refused at once, naming the first. A source that fails is that
source's problem, not the run's: a transient failure is retried with the sink's back-off
(``[engine] max_attempts`` times with ``--once``; for ever, capped at
``retry_max_seconds``, when following), any other failure of a reader stops that source
only; the others go on, and the run reports the failed ones in
:attr:`RunStats.failed_sources` (the CLI exits 1 naming them). An item that fails while
it is parsed, mapped or stored is that item's dead letter (:mod:`scrm_core.failures`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from scrm.plugins import PluginHost
from scrm.store import (
    AsyncStore,
    Lease,
    LeaseLost,
    NewDeadLetter,
    PageCommit,
    ReplyRecord,
    ReplyStatus,
    StateStore,
    StorageError,
    StoreAdapterState,
    StoreInUse,
    open_store,
)
from scrm_core.adapters import AdapterContext, AdapterState, CrmAdapter, NetworkAdapter, NetworkCapability, SentReply
from scrm_core.config import Config, SourceConfig
from scrm_core.errors import FatalError, RetryableError, ScrmError
from scrm_core.failures import event_locator, is_transient, item_reason
from scrm_core.http import make_client
from scrm_core.models import CrmOperation, EventPage, MessageCreated
from scrm_core.retry import asked_wait, backoff
from scrm_core.streams import PageStream, adapter_cursor

from .fleet import FleetSink, LeaseKeeper, new_worker
from .inbox import inbox_checkpoint, read_inbox
from .ingest import IngestCounts, Ingestor
from .learning import CRM_LABELS, CorrectionCollector, CorrectionCounts, load_models
from .page_stream import StreamedSources
from .preflight import check_adapters, raise_if_blocking
from .replies import REPLIES, ReplyCounts, ReplySender
from .sink import Sink, SinkCounts

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("scrm.engine")

_DONE = object()  # a reader's end-of-stream marker in the queue


@dataclass
class _SentReply:
    """A sent reply's message for the ingest loop; ``committed`` resolves once it is stored."""

    page: EventPage
    committed: asyncio.Future[None]


def tune_gc_for_throughput() -> None:
    """Fewer, larger garbage collections for a long sync (a process-wide choice: the CLI makes it).

    Each event is ~15 objects the collector tracks, so the default thresholds run a
    collection every few dozen events; what exists at start-up (plugins, models) is frozen
    out of collection altogether. Measured: about 20% more events/s through the replay
    adapter (docs/benchmarks.md). A young generation of 500,000 rather than 50,000 objects
    cut the collector's share of the pipeline from ~12 to under 1 µs CPU per message:
    nearly everything the hot path makes is freed by reference counting before a
    collection would look at it (docs/benchmarks.md, "The in-memory hot path").
    """
    gc.freeze()
    gc.set_threshold(500_000, 20, 100)


@dataclass
class RunStats:
    ingest: IngestCounts
    sink: SinkCounts
    replies: ReplyCounts = field(default_factory=ReplyCounts)
    corrections: CorrectionCounts = field(default_factory=CorrectionCounts)
    seconds: float = 0.0
    pages: int = 0
    stopped_by_signal: bool = False
    plugin_failures: dict[str, int] = field(default_factory=dict)
    #: Sources (readers, by checkpoint name) that stopped in this run, and why.
    failed_sources: dict[str, str] = field(default_factory=dict)


ProgressCallback = Callable[[RunStats], None]
Reader = Callable[[str | None], AsyncIterator[EventPage]]


def _listen_reader(adapter: NetworkAdapter, follow: bool) -> Reader:
    return lambda cursor: adapter.listen(adapter_cursor(cursor), follow=follow)  # a once-streamed source too


def _inbox_reader(
    store: AsyncStore, name: str, adapter: NetworkAdapter, follow: bool, waiting: asyncio.Event, keep: timedelta
) -> Reader:
    return lambda cursor: read_inbox(store, name, adapter, cursor, follow=follow, wake=waiting, keep=keep)


def _context(
    config: Config, name: str, http: httpx.AsyncClient | None, state: AdapterState | None = None
) -> AdapterContext:
    logger = logging.getLogger(f"scrm.adapter.{name}")
    context = AdapterContext(name=name, base_dir=config.base_dir, http=http, logger=logger)
    if state is not None:
        context.state = state
    return context


def build_crm(
    config: Config, host: PluginHost, *, http: httpx.AsyncClient | None = None, state: AdapterState | None = None
) -> CrmAdapter:
    """The configured CRM adapter, not started yet; ``http``: the shared client for its context;
    ``state``: its durable key-value area."""
    cls = host.crms.get(config.crm.adapter)
    if cls is None:
        raise FatalError(f"no CRM adapter named {config.crm.adapter!r} is installed")
    return cls(cls.Settings.model_validate(config.crm.settings), _context(config, "crm", http, state))


def build_source(
    config: Config, host: PluginHost, source: SourceConfig, *, http: httpx.AsyncClient | None = None
) -> NetworkAdapter:
    """One configured source's network adapter, not started yet; ``http``: the shared client for its context."""
    cls = host.networks.get(source.adapter)
    if cls is None:
        raise FatalError(f"source {source.name!r}: no network adapter named {source.adapter!r} is installed")
    return cls(cls.Settings.model_validate(source.settings), _context(config, source.name, http))


class Engine:
    """Runs one configuration. ``run(follow=False)`` syncs until every source is drained."""

    def __init__(
        self,
        config: Config,
        host: PluginHost,
        *,
        progress: ProgressCallback | None = None,
        drain_seconds: float = 30.0,
        preflight: bool = False,
        crm: CrmAdapter | None = None,
    ) -> None:
        self.config = config
        self.host = host
        #: The event hooks for this config: every plugin's, and the objects they build from it.
        self.hooks = host.hooks_for(config)
        self.progress = progress
        self.drain_seconds = drain_seconds
        self.preflight = preflight  # every adapter's check() before anything is sent (engine/preflight.py)
        self._given_crm = crm  # e.g. the dry run's recording CRM
        self.store: AsyncStore | None = None
        self.crm: CrmAdapter | None = None
        self.sources: dict[str, NetworkAdapter] = {}
        self.replies: ReplySender | None = None
        self.corrections: CorrectionCollector | None = None
        self._models: dict[str, int | None] = {}
        self._stop = asyncio.Event()
        self._stopped_by_signal = False
        self._webhooks_waiting: dict[str, asyncio.Event] = {}
        #: Readers that stopped for good in this run, and why (``/health`` shows them).
        self.failed_sources: dict[str, str] = {}
        #: In a fleet (a shared store, following): this worker's leases.
        self._keeper: LeaseKeeper | None = None
        #: Readers waiting (now) to try again after a transient failure, and why.
        self.retrying_sources: dict[str, str] = {}
        #: Set once the store is migrated and every adapter started (``scrm serve`` waits for it).
        self.ready = asyncio.Event()
        self._replies_waiting = asyncio.Event()
        #: Checkpoint name -> the adapter told of each commit of it (``NetworkAdapter.committed``).
        self._acknowledge: dict[str, NetworkAdapter] = {}
        #: The fleet's stream of pages for ``stream = true`` sources (set by a coordination
        #: plugin's ``scrm_startup``, e.g. scrm-redis; engine/page_stream.py).
        self.page_stream: PageStream | None = None

    def webhook_stored(self, source: str) -> None:
        """The receiver stored a payload for ``source``: read it now rather than at the next look."""
        waiting = self._webhooks_waiting.get(source)
        if waiting is not None:
            waiting.set()

    def reply_queued(self) -> None:
        """A reply was queued: send it now rather than at the next poll."""
        self._replies_waiting.set()

    def request_stop(self) -> None:
        """Stop reading; finish and flush what is in hand (what SIGINT/SIGTERM do)."""
        self._stopped_by_signal = True
        self._stop.set()

    # ------------------------------------------------------------ running

    async def run(self, *, follow: bool = False, handle_signals: bool = True, listen: bool = True) -> RunStats:
        """Sync until drained (or, with ``follow``, until stopped). ``listen=False`` only sends
        the queued replies and flushes the outbox (what ``scrm reply`` runs)."""
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.request_stop)
        config = self.config
        self.store = store = AsyncStore(lambda: open_store(config.state.url, config.base_dir, self.host.stores))
        # One connection pool for every adapter (AdapterContext.http); each request sets its own timeout.
        http = make_client()
        enabled = [s for s in config.sources if s.enabled]
        self.sources = sources = {s.name: build_source(config, self.host, s, http=http) for s in enabled}
        self.crm = crm = self._given_crm or build_crm(
            config, self.host, http=http, state=StoreAdapterState(store, "crm")
        )
        ingestor = Ingestor(store, self.hooks, config)
        sink = Sink(store, crm, config.engine, follow=follow)
        self.replies = ReplySender(store, self.hooks, crm, sources, config.replies)
        self.corrections = CorrectionCollector(store, crm)
        stats = RunStats(
            ingest=ingestor.counts, sink=sink.counts, replies=self.replies.counts, corrections=self.corrections.counts
        )
        opened: list[NetworkAdapter | CrmAdapter] = []
        try:
            # A store shared by a fleet (PostgreSQL) runs this process as one of its workers
            # (engine/fleet.py); otherwise one process writes the state.
            fleet = follow and listen and await store.is_fleet()
            if not fleet:
                await store.call(
                    StateStore.claim_writer
                )  # a second scrm process on this state is refused here, at once
            await store.call(StateStore.migrate)
            if fleet:
                self._keeper = LeaseKeeper(store, new_worker(), config.state.lease_seconds)
                await self._keeper.join()
                sink = FleetSink(store, crm, config.engine, self._keeper)
                stats.sink = sink.counts
            adapters: list[NetworkAdapter | CrmAdapter] = [crm, *sources.values()]
            for adapter in adapters:
                await adapter.start()
                opened.append(adapter)
            if self.preflight:
                raise_if_blocking(await check_adapters(crm, sources))
            await sink.start()
            self._models = await load_models(store, self.host.classifiers)
            await self.hooks.startup(self)
            self.ready.set()
            await self._pump(self._readers(sources if listen else {}, follow), ingestor, sink, stats, follow)
        finally:
            for adapter in reversed(opened):
                with contextlib.suppress(Exception):
                    await adapter.close()
            await self.hooks.shutdown(self)
            if self._keeper is not None:
                await self._keeper.leave()  # a clean stop: the others take over at once
            await store.close()
            await http.aclose()
            if handle_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
            stats.seconds = time.perf_counter() - started
            stats.stopped_by_signal = self._stopped_by_signal
            stats.plugin_failures = dict(self.hooks.failures)
            stats.failed_sources = dict(self.failed_sources)
        return stats

    def _readers(self, sources: dict[str, NetworkAdapter], follow: bool) -> dict[str, Reader]:
        """What feeds the ingest loop, by checkpoint name: each source's ``listen``, the stored
        webhook payloads of each webhook source, and the replies sent."""
        assert self.store is not None
        store = self.store
        readers: dict[str, Reader] = {}
        keep = timedelta(days=self.config.serve.keep_days)
        for name, adapter in sources.items():
            readers[name] = _listen_reader(adapter, follow)
            self._acknowledge[name] = adapter
            if NetworkCapability.webhook in type(adapter).capabilities:
                waiting = self._webhooks_waiting.setdefault(name, asyncio.Event())
                readers[inbox_checkpoint(name)] = _inbox_reader(store, name, adapter, follow, waiting, keep)
        return readers

    async def _pump(
        self, readers: dict[str, Reader], ingestor: Ingestor, sink: Sink, stats: RunStats, follow: bool
    ) -> None:
        assert self.store is not None
        queue: asyncio.Queue[tuple[str, object]] = asyncio.Queue(maxsize=self.config.engine.pages_in_flight)
        if self._keeper is not None:  # a fleet worker reads the sources it holds the lease of
            streamed = StreamedSources.for_engine(self, readers, ingestor, sink)
            tasks = [asyncio.create_task(self._leased_readers(readers, queue, follow), name="fleet")]
            if streamed is not None:  # heavy sources: every worker ingests their pages
                tasks.append(asyncio.create_task(streamed.run(queue), name="stream"))
        else:
            cursors = {name: await self.store.call(StateStore.checkpoint, name) for name in readers}
            tasks = [
                asyncio.create_task(self._read(name, read, cursors[name], queue, follow), name=f"read:{name}")
                for name, read in readers.items()
            ]
        if self.config.replies.enabled:
            tasks.append(asyncio.create_task(self._send_replies(queue, follow), name="replies"))
        if self.config.learning.collect_corrections and self.corrections is not None and self.corrections.enabled:
            # A state with no checkpoint at all has never written to the CRM, so no agent can have
            # corrected a record of it yet: its first read waits for the next poll (or run), and
            # nothing is missed, since the corrections cursor stays where it was.
            new_state = not await self.store.call(StateStore.checkpoints)
            tasks.append(
                asyncio.create_task(self._collect_corrections(queue, follow, wait_first=new_state), name="corrections")
            )
        sink_task = asyncio.create_task(sink.run(), name="sink")
        stop_task = asyncio.create_task(self._stop.wait())
        failed = False
        try:
            await self._ingest_loop(queue, len(tasks), ingestor, sink, stats, stop_task, sink_task)
        except BaseException:
            failed = True
            raise
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            stop_task.cancel()
            await self._drain(sink, sink_task, bounded=failed or self._stop.is_set(), quiet=failed)
        self._report(stats)

    async def _drain(self, sink: Sink, sink_task: asyncio.Task[None], *, bounded: bool, quiet: bool) -> None:
        """Let the sink send what is committed: all of it, or for ``drain_seconds`` when stopping.

        A CRM that keeps failing ends the run with a FatalError saying the outbox is kept;
        with ``quiet`` (the run is already failing for another reason) that is only logged.
        """
        if not sink_task.done():
            sink.finish()
            try:
                await asyncio.wait_for(asyncio.shield(sink_task), self.drain_seconds if bounded else None)
            except TimeoutError:
                sink.stop()
                await sink_task
        try:
            sink_task.result()
        except Exception as exc:
            error: Exception = exc
            if isinstance(exc, RetryableError):
                assert self.store is not None
                waiting = await self.store.call(StateStore.outbox_depth)
                error = FatalError(
                    f"the CRM kept failing ({exc.operator_message}); {waiting:,} operation(s) stay in the "
                    "outbox and go out first with the next run",
                    detail=exc.detail,
                )
            if quiet:  # never mask the error that is already ending the run
                log.error("the sink failed too: %s", error)
                return
            raise error from exc

    async def _ingest_loop(
        self,
        queue: asyncio.Queue[tuple[str, object]],
        readers: int,
        ingestor: Ingestor,
        sink: Sink,
        stats: RunStats,
        stop_task: asyncio.Task[Any],
        sink_task: asyncio.Task[None],
    ) -> None:
        assert self.store is not None
        finished = 0
        while finished < readers:
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, stop_task, sink_task}, return_when=asyncio.FIRST_COMPLETED)
            if sink_task.done():
                getter.cancel()
                return  # the sink failed; _pump reports why
            if not getter.done():
                getter.cancel()
                return  # stop requested: the page not yet taken is re-read next run
            source, item = getter.result()
            if item is _DONE:
                if self._keeper is None or source not in self._keeper.names:  # a leased reader's end is not the run's
                    finished += 1
                continue
            if isinstance(item, BaseException):
                raise item
            sent = item if isinstance(item, _SentReply) else None
            page = sent.page if sent is not None else item
            assert isinstance(page, EventPage)
            try:
                seqs, ops = await self._commit(source, page, ingestor)
            except LeaseLost:
                assert self._keeper is not None
                self._keeper.lost(source)  # dropped: the new holder reads it again from the checkpoint
                continue
            sink.notify(seqs, ops)  # no await in between: see Sink.notify
            if sent is not None:
                sent.committed.set_result(None)
            await self._acknowledge_commit(source, page.cursor)
            stats.pages += 1
            self._report(stats)
            if not sink.has_room():  # backpressure, unless the sink has failed meanwhile
                room = asyncio.ensure_future(sink.wait_for_room())
                await asyncio.wait({room, sink_task}, return_when=asyncio.FIRST_COMPLETED)
                room.cancel()

    async def _acknowledge_commit(self, source: str, cursor: str | None) -> None:
        """Tell the source's adapter that everything up to ``cursor`` is durable (destructive
        reads acknowledge only now). A failure is logged: the next commit acknowledges more."""
        adapter = self._acknowledge.get(source)
        if adapter is None or cursor is None:
            return
        try:
            await adapter.committed(cursor)
        except Exception as exc:
            log.warning("source %s: acknowledging a commit failed: %s", source, exc)

    async def _commit(
        self, source: str, page: EventPage, ingestor: Ingestor, lease: Lease | None = None
    ) -> tuple[list[int], list[CrmOperation]]:
        """Commit a page; (outbox seqs, ops) for the sink. If the store refuses the page for its
        data (a value SQLite or JSON cannot hold), the events are committed one by one and the
        one that fails becomes a dead letter: one item never stops the engine. ``lease``: the
        lease the commit is fenced by, if not the source's reader's (a streamed page's turn)."""
        assert self.store is not None
        commit = await ingestor.process(source, page)
        if lease is not None:
            commit.lease = lease
        elif self._keeper is not None and source in self._keeper.names:
            commit.lease = self._keeper.page_lease(source, page)
            if commit.lease is None:
                raise LeaseLost(source)  # given back or taken over since the page was read
        try:
            return await self.store.call(StateStore.commit_page, commit), list(commit.ops)
        except (StorageError, StoreInUse, LeaseLost):
            raise  # the store itself: disk full, read-only... the run stops and says what to do
        except Exception as exc:
            if not page.events:
                raise
            log.warning("source %s: a page could not be stored (%s); storing its events one by one", source, exc)
        previous = await self.store.call(StateStore.checkpoint, source)
        seqs: list[int] = []
        ops: list[CrmOperation] = []
        for i, event in enumerate(page.events):
            last = i == len(page.events) - 1
            part = EventPage.model_construct(
                events=[event], cursor=page.cursor if last else previous, rejects=page.rejects if last else []
            )
            one = await ingestor.process(source, part)
            one.lease = commit.lease
            try:
                seqs += await self.store.call(StateStore.commit_page, one)
                ops += one.ops
            except (StorageError, StoreInUse, LeaseLost):
                raise
            except Exception as exc:
                letter = NewDeadLetter(source, f"could not be stored: {item_reason(exc)}", event_locator(event))
                rejects = [NewDeadLetter(source, reason, where) for where, reason in part.rejects]
                await self.store.call(
                    StateStore.commit_page,
                    PageCommit(source, part.cursor, event_keys=[event.key], dead_letters=[letter, *rejects]),
                )
        return seqs, ops

    async def _leased_readers(
        self, readers: dict[str, Reader], queue: asyncio.Queue[tuple[str, object]], follow: bool
    ) -> None:
        """A fleet worker's readers: every heartbeat, start those whose lease it took and stop
        those it gave back or lost (each from its checkpoint, read once the lease is held)."""
        keeper, store = self._keeper, self.store
        assert keeper is not None and store is not None
        keeper.set_names(list(readers))
        running: dict[str, asyncio.Task[None]] = {}

        def stop(name: str) -> None:
            task = running.pop(name, None)
            if task is not None:
                task.cancel()

        keeper.on_lost = stop
        try:
            while True:
                start, given_back = await keeper.tick()
                for name in given_back:
                    stop(name)
                for name in start:
                    cursor = await store.call(StateStore.checkpoint, name)
                    running[name] = asyncio.create_task(
                        self._read(name, keeper.reading(name, readers[name]), cursor, queue, follow),
                        name=f"read:{name}",
                    )
                await asyncio.sleep(keeper.interval)  # the heartbeat's period
        except Exception as exc:
            await queue.put(("fleet", exc))  # the shared store failed: the run stops and says why
        finally:
            for task in running.values():
                task.cancel()
            await asyncio.gather(*running.values(), return_exceptions=True)

    async def _read(
        self, name: str, read: Reader, cursor: str | None, queue: asyncio.Queue[tuple[str, object]], follow: bool
    ) -> None:
        """Pull pages from one reader; a transient failure resumes from the last page read after
        the sink's back-off (at most ``max_attempts`` times in a row with ``--once``); any other
        failure stops this source only."""
        settings = self.config.engine
        attempt = 0
        while True:
            try:
                async for page in read(cursor):
                    await queue.put((name, page))
                    cursor, attempt = page.cursor, 0
                await queue.put((name, _DONE))
                return
            except (StorageError, StoreInUse) as exc:
                await queue.put((name, exc))  # the state store itself: the ingest loop stops the run
                return
            except Exception as exc:
                if is_transient(exc):
                    attempt += 1
                    reason = exc.operator_message if isinstance(exc, ScrmError) else item_reason(exc)
                    if follow or attempt < settings.max_attempts:
                        wait = backoff(attempt, asked_wait(exc), cap=settings.retry_max_seconds)
                        self.retrying_sources[name] = reason  # while it waits: /health says so
                        log.warning("source %s: %s; attempt %d, trying again in %.1fs", name, reason, attempt, wait)
                        await asyncio.sleep(wait)
                        self.retrying_sources.pop(name, None)
                        continue
                    failure = f"unreachable after {attempt} attempts: {reason}"
                elif isinstance(exc, ScrmError):
                    failure = exc.operator_message
                else:  # an adapter bug, or an item it cannot read: the source stops, the others go on
                    failure = f"the adapter failed: {item_reason(exc)}"
                    log.error("source %s: the adapter failed", name, exc_info=exc)
                self.failed_sources[name] = failure
                log.error("source %s stopped: %s", name, failure)
                await queue.put((name, _DONE))
                return

    async def _send_replies(self, queue: asyncio.Queue[tuple[str, object]], follow: bool) -> None:
        """Queue the CRM's new replies, send what is due, hand each sent message to ingest."""
        sender = self.replies
        assert sender is not None
        try:
            while not self._stop.is_set():
                self._replies_waiting.clear()
                try:
                    await sender.collect_from_crm()
                    for reply in await sender.due():
                        if self._stop.is_set():
                            break
                        outcome = await sender.send(reply)
                        if outcome is not None:
                            await self._commit_sent(queue, *outcome)
                except RetryableError as exc:
                    log.warning("replies: %s; trying again at the next poll", exc.operator_message)
                if not follow:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._replies_waiting.wait(), self.config.replies.poll_seconds)
            await queue.put((REPLIES, _DONE))
        except Exception as exc:
            await queue.put((REPLIES, exc))

    async def _collect_corrections(
        self, queue: asyncio.Queue[tuple[str, object]], follow: bool, *, wait_first: bool = False
    ) -> None:
        """Keep the agents' label corrections; pick up a model ``scrm intent train`` stored meanwhile.
        ``wait_first``: skip the read at start (a new state: nothing of it can be corrected yet)."""
        collector = self.corrections
        assert collector is not None and self.store is not None
        try:
            while not self._stop.is_set():
                if not wait_first:
                    try:
                        await collector.collect()
                    except RetryableError as exc:
                        log.warning("label corrections: %s; trying again at the next poll", exc.operator_message)
                wait_first = False
                if not follow:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.config.learning.poll_seconds)
                for name in self.host.classifiers:
                    stored = await self.store.call(StateStore.model, name)
                    if (stored.id if stored else None) != self._models.get(name):
                        self._models.update(await load_models(self.store, {name: self.host.classifiers[name]}))
                        log.info("classifier %s: now using model %s", name, self._models[name] or "shipped")
            await queue.put((CRM_LABELS, _DONE))
        except Exception as exc:
            await queue.put((CRM_LABELS, exc))

    async def _commit_sent(self, queue: asyncio.Queue[tuple[str, object]], reply: ReplyRecord, sent: SentReply) -> None:
        assert self.replies is not None and self.store is not None
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        page = EventPage(events=[MessageCreated(message=sent.message)], cursor=None)
        try:
            await queue.put((REPLIES, _SentReply(page, committed)))
            await committed
        except BaseException:
            # Not stored: the next attempt sends with the same key (posting nothing new) and stores it.
            await self.store.call(
                StateStore.update_reply, reply.id, ReplyStatus.pending, error="sent, not yet recorded"
            )
            raise
        await self.replies.mark_sent(reply, sent)

    def _report(self, stats: RunStats) -> None:
        if self.progress is not None:
            self.progress(stats)
