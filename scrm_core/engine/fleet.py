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
  reads it again from the checkpoint, which did not move. No page is committed twice.
* **One sink drains the outbox** at a time, the holder of the ``#outbox`` lease, which
  claims rows from whichever worker committed them (:meth:`FleetStore.outbox_claim`), so
  no two sinks send the same row and a record's writes go out in order, parents before
  children. What a dead holder had in hand is handed to the next one marked as possibly
  written, and looked up by external key before it is written again.

Replies are claimed per reply (:meth:`StateStore.claim_reply`), so every worker may send
them; a webhook receiver (``scrm serve``) writes the shared inbox, deduplicated by its key.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import secrets
import socket
import sys
import time
from collections.abc import Callable, Sequence

from ..adapters import CrmAdapter
from ..config import EngineConfig
from ..models import CrmOperation
from ..store import AsyncStore, FleetStore, Lease, LeaseLost, OutboxItem, StateStore, WorkerInfo
from .pool import Pool
from .sink import Sink, _Stopped

__all__ = ["SINK_LEASE", "FleetSink", "LeaseKeeper", "new_worker"]

log = logging.getLogger("scrm.fleet")

#: The lease of the one worker whose sink drains the outbox (every partition).
SINK_LEASE = "#outbox"  # "#": no source name has one


def new_worker() -> WorkerInfo:
    """This process as a fleet worker: a new id each start (a restarted worker is a new one)."""
    host = socket.gethostname()
    return WorkerInfo(f"{host}:{os.getpid()}:{secrets.token_hex(3)}", host, os.getpid(), " ".join(sys.argv)[:200])


class LeaseKeeper:
    """This worker's leases: the heartbeat, taking and giving back readers, the sink's lease."""

    def __init__(self, store: AsyncStore, worker: WorkerInfo, lease_seconds: float) -> None:
        self.store, self.worker, self.lease_seconds = store, worker, lease_seconds
        self.names: list[str] = []  # every reader of the fleet, by checkpoint name
        self.readers: dict[str, Lease] = {}
        self.sink: Lease | None = None
        self.on_lost: Callable[[str], None] = lambda name: None

    def set_names(self, names: list[str]) -> None:
        # Each worker tries the readers from its own starting point: fewer collisions.
        start = int.from_bytes(self.worker.id.encode()[-4:], "big") % max(1, len(names))
        self.names = names[start:] + names[:start]

    @property
    def interval(self) -> float:
        return self.lease_seconds / 3

    async def join(self) -> None:
        await self.store.fleet(FleetStore.join_fleet, self.worker)

    async def leave(self) -> None:
        """A clean stop: every lease is given back now, so the others go on at once."""
        with contextlib.suppress(Exception):
            await self.store.fleet(FleetStore.leave_fleet, self.worker.id)

    def lost(self, name: str) -> None:
        """A lease this worker can no longer use (its commit or claim was refused)."""
        if self.readers.pop(name, None) is not None:
            log.warning("lost the lease on %s: another worker goes on from its checkpoint", name)
            self.on_lost(name)
        if self.sink is not None and name == self.sink.name:
            log.warning("lost the outbox lease: another worker's sink goes on")
            self.sink = None

    async def tick(self) -> tuple[list[str], list[str]]:
        """One heartbeat: (readers to start, readers to stop) on this worker."""
        wid, secs = self.worker.id, self.lease_seconds
        held = {lease.name: lease for lease in await self.store.fleet(FleetStore.fleet_heartbeat, wid, secs)}
        for name in [n for n in self.readers if n not in held]:
            self.lost(name)
        if self.sink is not None and SINK_LEASE not in held:
            self.lost(SINK_LEASE)
        self.readers = {n: lease for n, lease in held.items() if n in self.readers}
        if self.sink is None:
            got = await self.store.fleet(FleetStore.acquire_leases, wid, [SINK_LEASE], 1, secs)
            self.sink = got[0] if got else None
        live = len(await self.store.fleet(FleetStore.live_workers, secs)) or 1
        share = math.ceil(len(self.names) / live)
        start: list[str] = []
        stop: list[str] = []
        if len(self.readers) > share:  # workers joined: give back what is above an even share
            stop = sorted(self.readers)[share:]
            for name in stop:
                del self.readers[name]
            await self.store.fleet(FleetStore.release_leases, wid, stop)
        elif len(self.readers) < share:
            wanted = [n for n in self.names if n not in self.readers]
            for lease in await self.store.fleet(
                FleetStore.acquire_leases, wid, wanted, share - len(self.readers), secs
            ):
                self.readers[lease.name] = lease
                start.append(lease.name)
        return start, stop


class FleetSink(Sink):
    """The sink of a fleet worker: sends only while it holds the ``#outbox`` lease, reading the
    outbox by claims (rows any worker committed), never by :meth:`notify`."""

    def __init__(self, store: AsyncStore, crm: CrmAdapter, config: EngineConfig, keeper: LeaseKeeper) -> None:
        super().__init__(store, crm, config, follow=True)
        self.keeper = keeper

    def notify(self, seqs: Sequence[int], ops: Sequence[CrmOperation]) -> None:
        """Not used: the holder of the outbox lease claims what every worker committed."""

    async def start(self) -> None:
        self._dead = await self.store.call(StateStore.dead_letter_keys)

    async def run(self) -> None:
        try:
            await self._claims()
        except _Stopped:
            log.info("sink stopped; what it had not sent stays in the outbox for the next holder")

    async def _claims(self) -> None:
        poll = min(1.0, self.keeper.interval)
        while not self._stopping.is_set():
            lease = self.keeper.sink
            if lease is None:
                self.pool = Pool(self.crm.stored_on)  # the new holder has these rows again
                if self._finishing.is_set():
                    return
                await self._sleep(poll)
                continue
            claimed: list[tuple[OutboxItem, bool]] = []
            if len(self.pool) < self.config.outbox_high_water:
                try:
                    claimed = await self.store.fleet(FleetStore.outbox_claim, lease, self.take_limit)
                except LeaseLost:
                    self.keeper.lost(lease.name)
                    continue
                now = time.monotonic()
                for item, again in claimed:
                    self.pool.add(item, now, uncertain=again)
            wait, sent = await self.flush(partial=True)
            if wait:
                await self._sleep(wait)
            elif not sent and not claimed:
                if self._finishing.is_set() and not len(self.pool):
                    return
                await self._sleep(poll)
