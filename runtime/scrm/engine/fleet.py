"""A fleet: several ``scrm run`` workers on one shared state store (a :class:`FleetStore`,
e.g. PostgreSQL), started the same way on any machine.

* **Sources are leased.** Each reader (by checkpoint name: a source, a webhook inbox) is
  read by the worker holding its lease. :class:`LeaseKeeper` renews the worker's leases
  every third of ``[state] lease_seconds`` (the heartbeat), takes free or expired ones up
  to an even share (readers / live workers, rounded up) and gives back what is above its
  share when workers join, so the readers spread out. A worker that dies (SIGKILL, a lost
  machine) stops renewing: its leases expire and the others take its readers over from
  their checkpoints within ``lease_seconds`` plus one heartbeat.
* **Commits are fenced.** Each page is committed with the reader's lease
  (:attr:`PageCommit.lease`); once the lease was taken over the commit is refused
  (:class:`LeaseLost`), the page is dropped and its reader stops here: the new holder
  reads it again from the checkpoint, which did not move. No page is committed twice, and
  a page read under a lease since lost is never committed under the next one, even when
  this worker takes the lease again (:meth:`LeaseKeeper.page_lease`).
* **Every worker's sink drains the outbox**, partitioned by record: an operation's
  partition (``outbox#N``) follows its external key, and each partition is leased like a
  reader, spread evenly over the workers. A sink claims the rows of the partitions it holds
  (:meth:`FleetStore.outbox_claim_each`: one round trip for all), so no two sinks send the same row and one record's
  writes go out in order, by one sink. Parents still go before their children across
  partitions: a record referring to a record that another partition has not written yet
  (:meth:`FleetStore.outbox_waiting`) waits in the pool until that one is settled. What a
  dead holder had in hand is handed to the next one marked as possibly written, and
  looked up by external key before it is written again. A partition given back (workers
  joined) is given back by the sink between two batches, never with a write in flight, and
  a sink sends only while its heartbeat is fresh (:meth:`LeaseKeeper.fresh`).
* **Ingest pauses on the fleet's outbox**, not a worker's own pool: each sink reads the
  shared outbox's depth every :data:`DEPTH_EVERY` seconds (a count that stops past
  ``engine.outbox_high_water``) and counts what its own worker commits meanwhile, so
  while the CRM is down every worker's readers stop near the mark, whatever partitions
  its sink holds.

Replies are claimed per reply (:meth:`StateStore.claim_reply`), so every worker may send
them; a webhook receiver (``scrm serve``) writes the shared inbox, deduplicated by its key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import cast

from scrm.store import AsyncStore, FleetStore, Lease, StateStore, WorkerInfo
from scrm_core.adapters import CrmAdapter
from scrm_core.config import EngineConfig
from scrm_core.models import CrmObject, CrmOperation, EventPage
from scrm_core.store.base import partition_of

from .pool import Group, Pool, ref_target
from .sink import Sink, _Stopped

__all__ = ["SINK_PREFIX", "FleetSink", "LeaseKeeper", "new_worker"]

log = logging.getLogger("scrm.fleet")

#: The leases of the outbox's partitions: ``outbox#0`` ... ``outbox#N-1``.
SINK_PREFIX = "outbox#"
#: How often a fleet sink reads the shared outbox's depth (what other workers committed
#: shows up within this long; its own commits at once).
DEPTH_EVERY = 0.5


def new_worker() -> WorkerInfo:
    """This process as a fleet worker: a new id each start (a restarted worker is a new one)."""
    host = socket.gethostname()
    return WorkerInfo(f"{host}:{os.getpid()}:{secrets.token_hex(3)}", host, os.getpid(), " ".join(sys.argv)[:200])


class _LeaseGone(Exception):
    """Raised out of a CRM call's retry wait once this worker's leases may have expired."""


class LeaseKeeper:
    """This worker's leases: the heartbeat, taking and giving back readers and outbox partitions."""

    def __init__(self, store: AsyncStore, worker: WorkerInfo, lease_seconds: float) -> None:
        self.store, self.worker, self.lease_seconds = store, worker, lease_seconds
        self.names: list[str] = []  # every reader of the fleet, by checkpoint name
        self.partitions: list[str] = []  # every outbox partition's lease name
        self.readers: dict[str, Lease] = {}
        self.sinks: dict[str, Lease] = {}  # the outbox partitions this worker's sink drains
        #: Partitions above this worker's share, to be given back by the sink between two batches.
        self.giving_back: set[str] = set()
        self.renewed_at = -math.inf  # monotonic time the last heartbeat was sent (before its answer)
        self.on_lost: Callable[[str], None] = lambda name: None
        self._read_under: dict[int, Lease] = {}  # id(page) -> the reader lease it was read under

    def _rotated(self, names: list[str]) -> list[str]:
        # Each worker tries the names from its own starting point: fewer collisions.
        start = int.from_bytes(self.worker.id.encode()[-4:], "big") % max(1, len(names))
        return names[start:] + names[:start]

    def set_names(self, names: list[str]) -> None:
        self.names = self._rotated(names)

    def reading(
        self, name: str, read: Callable[[str | None], AsyncIterator[EventPage]]
    ) -> Callable[[str | None], AsyncIterator[EventPage]]:
        """``read`` with each page it yields marked with the lease the reader holds now: a page
        read before the lease was lost is never committed under the next one (see
        :meth:`page_lease`), even when this worker takes the lease again at once."""
        lease, under = self.readers.get(name), self._read_under

        async def leased(cursor: str | None) -> AsyncIterator[EventPage]:
            if lease is None:
                return  # lost again before it started: the next holder reads it
            async for page in read(cursor):
                under[id(page)] = lease
                yield page

        return leased

    def page_lease(self, source: str, page: EventPage) -> Lease | None:
        """The lease to commit ``page`` under; None when it was read under a lease this worker
        no longer holds (dropped: the holder reads it again from the checkpoint)."""
        under = self._read_under.pop(id(page), None)
        lease = self.readers.get(source)
        return lease if under is None or under == lease else None

    @property
    def interval(self) -> float:
        return self.lease_seconds / 3

    def fresh(self) -> bool:
        """Whether this worker's leases are surely still its own (renewed well within the lease
        time, by this machine's clock): a sink sends only then."""
        return time.monotonic() - self.renewed_at < self.lease_seconds * 2 / 3

    async def join(self) -> None:
        await self.store.fleet(FleetStore.join_fleet, self.worker)
        parts = await self.store.run(lambda store: cast(FleetStore, store).outbox_partitions)
        self.partitions = self._rotated([f"{SINK_PREFIX}{p}" for p in range(parts)])

    async def leave(self) -> None:
        """A clean stop: every lease is given back now, so the others go on at once."""
        with contextlib.suppress(Exception):
            await self.store.fleet(FleetStore.leave_fleet, self.worker.id)

    def lost(self, name: str) -> None:
        """A lease this worker can no longer use (its commit or claim was refused, or it expired)."""
        if self.readers.pop(name, None) is not None:
            log.warning("lost the lease on %s: another worker goes on from its checkpoint", name)
            self.on_lost(name)
        if self.sinks.pop(name, None) is not None:
            self.giving_back.discard(name)
            log.warning("lost the lease on %s: another worker's sink goes on with it", name)

    async def give_back(self, names: Sequence[str]) -> None:
        """The sink let go of these partitions: release their leases."""
        for name in names:
            self.sinks.pop(name, None)
            self.giving_back.discard(name)
        await self.store.fleet(FleetStore.release_leases, self.worker.id, list(names))

    async def tick(self) -> tuple[list[str], list[str]]:
        """One heartbeat: (readers to start, readers to stop) on this worker."""
        wid, secs = self.worker.id, self.lease_seconds
        sent_at = time.monotonic()
        held = {lease.name: lease for lease in await self.store.fleet(FleetStore.fleet_heartbeat, wid, secs)}
        self.renewed_at = sent_at
        for name in [n for n in (*self.readers, *self.sinks) if n not in held]:
            self.lost(name)
        self.readers = {n: held[n] for n in self.readers}
        self.sinks = {n: held[n] for n in self.sinks}
        # Held in the store but no longer used here (dropped after a refused commit): given back,
        # or the heartbeat would renew it for ever with nobody doing its work.
        unused = sorted(set(held) - set(self.readers) - set(self.sinks))
        if unused:
            await self.store.fleet(FleetStore.release_leases, wid, unused)
        live = len(await self.store.fleet(FleetStore.live_workers, secs)) or 1
        start, stop = await self._balance(self.readers, self.names, live)
        for name in stop:
            await self.store.fleet(FleetStore.release_leases, wid, [name])
        _, above = await self._balance(self.sinks, self.partitions, live)
        self.giving_back.update(above)  # the sink lets go of them between two batches
        return start, stop

    async def _balance(self, held: dict[str, Lease], names: list[str], live: int) -> tuple[list[str], list[str]]:
        """Take free leases of ``names`` up to an even share; (taken, above the share)."""
        share = math.ceil(len(names) / live)
        if len(held) > share:  # workers joined: what is above an even share goes back
            above = sorted(held)[share:]
            if held is self.readers:
                for name in above:
                    del held[name]
            return [], above
        if len(held) == share:
            return [], []
        wanted = [n for n in names if n not in held]
        taken = await self.store.fleet(
            FleetStore.acquire_leases, self.worker.id, wanted, share - len(held), self.lease_seconds
        )
        for lease in taken:
            held[lease.name] = lease
        return [lease.name for lease in taken], []


class FleetSink(Sink):
    """The sink of a fleet worker: drains the outbox partitions this worker holds the leases
    of, reading them by claims (rows any worker committed), never by :meth:`notify`."""

    def __init__(self, store: AsyncStore, crm: CrmAdapter, config: EngineConfig, keeper: LeaseKeeper) -> None:
        super().__init__(store, crm, config, follow=True)
        self.keeper = keeper
        self._held: dict[str, Lease] = {}  # the partition leases whose rows are in the pool
        self._dead_read_at = -math.inf  # when the sink dead letters were last read
        self._depth = 0  # the shared outbox's depth: as last read, plus this worker's commits since

    @property
    def pending(self) -> int:
        """Records not yet settled in the whole fleet's outbox (what ingest's pause follows)."""
        return max(len(self.pool), self._depth)

    def notify(self, seqs: Sequence[int], ops: Sequence[CrmOperation]) -> None:
        """Count this worker's commit into the outbox's depth at once (each partition's
        holder claims the rows themselves, whichever worker committed them)."""
        self._depth += len(seqs)
        self._update_water()

    async def start(self) -> None:
        self._dead = await self.store.call(StateStore.dead_letter_keys)
        await self._read_depth()

    async def run(self) -> None:
        watching = asyncio.create_task(self._watch_depth(), name="sink:depth")
        try:
            await self._claims()
        except _Stopped:
            log.info("sink stopped; what it had not sent stays in the outbox for the next holder")
        finally:
            watching.cancel()

    async def _read_depth(self) -> None:
        # Counting stops just past the mark: a deep outbox costs no more to look at.
        self._depth = await self.store.call(StateStore.outbox_depth, self.config.outbox_high_water + 1)
        self._update_water()

    def _update_water(self) -> None:
        was_held = not self.has_room()
        super()._update_water()
        held, mark = not self.has_room(), self.config.outbox_high_water
        if held and not was_held:
            log.info("the fleet's outbox holds more than engine.outbox_high_water (%d): reading pauses", mark)
        elif was_held and not held:
            log.info("the fleet's outbox is back under engine.outbox_high_water (%d): reading goes on", mark)

    async def _watch_depth(self) -> None:
        while True:
            await asyncio.sleep(DEPTH_EVERY)
            try:
                await self._read_depth()
            except Exception as exc:  # the store unreachable a while: the next look tells
                log.warning("reading the outbox's depth failed: %s", exc)

    def _partition(self, key: str) -> str:
        return f"{SINK_PREFIX}{partition_of(key, len(self.keeper.partitions))}"

    def _drop(self, names: set[str]) -> None:
        """Forget the pooled rows of partitions this sink no longer holds (their next holder
        claims them again), keeping the others as they are."""
        kept = Pool(self.crm.stored_on)
        for group in self.pool.all_groups():
            if self._partition(group.op.external_key) not in names:
                for item in group.items:
                    kept.add(item, group.since, uncertain=group.uncertain)
        self.pool = kept
        for name in names:
            self._held.pop(name, None)
        self._update_water()  # ingest may be waiting for room that the dropped rows took

    async def _follow_leases(self) -> None:
        """Bring the pool in line with the keeper: drop partitions lost or taken anew (their
        rows are claimed again under the new lease), give back those above the share."""
        held = self.keeper.sinks
        gone = {name for name, lease in self._held.items() if held.get(name) != lease}
        back = sorted(self.keeper.giving_back)
        if gone or back:
            self._drop(gone | set(back))
        if back:
            await self.keeper.give_back(back)

    async def _parents_elsewhere(self) -> None:
        """Records referred to from the pool whose older operations still wait in the outbox (in
        another partition, or here unclaimed): the children wait for them. The sink dead letters
        are read again when one of those parents left the outbox (written, or refused by
        another sink: then its children go without the reference) and every heartbeat period."""
        targets: set[tuple[CrmObject, str]] = set()
        newest = 0
        for group in self.pool.all_groups():
            newest = max(newest, group.items[-1].seq)
            for name, key in group.op.refs.items():
                target = ref_target(name, key)
                if target is not None and target not in self.pool:
                    targets.add(target)
        if not targets:
            self.pool.elsewhere = set()
            return
        wanted = sorted(targets, key=lambda t: (t[0].value, t[1]))
        waiting = await self.store.fleet(FleetStore.outbox_waiting, wanted, newest + 1)
        settled = (self.pool.elsewhere - waiting) & targets
        if settled or time.monotonic() - self._dead_read_at > self.keeper.interval:
            self._dead = await self.store.call(StateStore.dead_letter_keys)
            self._dead_read_at = time.monotonic()
        self.pool.elsewhere = waiting

    async def _send(self, groups: list[Group]) -> float:
        # Only while every partition of the batch is still this worker's (the heartbeat runs
        # beside the sink: a lease may have been lost since the batch was taken from the pool).
        held = self.keeper.sinks
        if not self.keeper.fresh() or any(self._partition(g.op.external_key) not in held for g in groups):
            for group in groups:
                self.pool.put_back(group)
            raise _LeaseGone
        return await super()._send(groups)

    async def _retry_sleep(self, seconds: float) -> None:
        await super()._retry_sleep(seconds)
        if not self.keeper.fresh():
            raise _LeaseGone  # the batch goes back to the pool; the partitions are checked again

    async def _claims(self) -> None:
        poll = min(1.0, self.keeper.interval)
        window = self.config.batch_window_ms / 1000
        while not self._stopping.is_set():
            await self._follow_leases()
            if not self.keeper.sinks or not self.keeper.fresh():
                if self._finishing.is_set():
                    return
                await self._sleep(poll)
                continue
            claimed, lost = 0, list[str]()
            leases = list(self.keeper.sinks.values())
            if len(self.pool) < self.config.outbox_high_water:
                got, lost = await self.store.fleet(FleetStore.outbox_claim_each, leases, self.take_limit)
                for name in lost:
                    self.keeper.lost(name)
                for lease in leases:
                    if lease.name not in lost:
                        self._held[lease.name] = lease
                now = time.monotonic()
                for item, again in got:
                    self.pool.add(item, now, uncertain=again)
                claimed = len(got)
            if lost:
                continue  # drop that partition's rows before sending anything
            sent = False
            wait = 0.0
            if len(self.pool):
                await self._parents_elsewhere()
                try:
                    # Full batches while more is coming, as the single-process sink sends
                    # them: the number of calls (the CRM's budget) depends on the records.
                    wait, sent = await self.flush(partial=self._partial_due(window))
                except _LeaseGone:
                    continue
            if wait:
                await self._sleep(wait)
            elif not sent and not claimed:
                if self._finishing.is_set() and not len(self.pool):
                    return
                oldest = self.pool.oldest()
                due = poll if oldest is None else oldest + self._window(window) - time.monotonic()
                # Until a partial batch's window ends; otherwise (nothing held, or what is held
                # waits for parents in other partitions) until the next look at the outbox.
                await self._sleep(due if 0 < due < poll else poll)
