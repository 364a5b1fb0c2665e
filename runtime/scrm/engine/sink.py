"""The sink: drains the outbox into the CRM in full batches, exactly once per record.

Operations reach the sink two ways: those committed by this process through
:meth:`Sink.notify` (the outbox row is the durable copy, so a crash loses nothing), and
those an earlier run left in the outbox (the backlog), read back first. They wait in a
:class:`~scrm.engine.pool.Pool`, merged per record, until the CRM takes them:

* **Full batches only, while more is coming.** A batch goes out as soon as an object
  type has ``limits.batch_size`` records ready; a partial batch is carried over, not
  flushed, until the input ends (``--once``), the outbox reaches its high-water mark, or
  (when following) the oldest record has waited ``batch_window_ms``. So the number of
  calls depends on the records, not on how fast they arrive.
* **Parents first.** A record is sent only once every record it refers to has been
  written (contact, then profile, case, lead, message).
* **A refused parent never takes its children.** A record the CRM refuses for good goes
  to the dead-letter queue with the CRM's code and the fix; the records referring to it
  are written without that reference, and the missing link is kept in the state store
  and sent by itself once the parent is repaired and written.
* **Deterministic refusals are not retried**: only what the adapter marks retryable
  goes back to the pool, with back-off, up to ``max_attempts``.
* **Never re-create blind.** Each batch is a :class:`~scrm_core.adapters.WriteBatch`
  telling the adapter the CRM ids already known and which records may have been written
  without an answer (the backlog after a restart; a batch whose call failed or timed
  out), so the adapter looks those up instead of creating them again.

A whole call that fails with :class:`RetryableError` (rate limit, timeout, 5xx) is
retried with tenacity, waiting as long as the CRM asked. Each batch is settled in one
store transaction as soon as its results are in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scrm.store import AsyncStore, PendingLink, Refusal, Settlement, StateStore
from scrm_core.adapters import CrmAdapter, CrmCapability, WriteBatch
from scrm_core.config import EngineConfig
from scrm_core.errors import FatalError
from scrm_core.models import CRM_OBJECT_ORDER, CrmObject, CrmOperation, OperationResult
from scrm_core.retry import backoff, retrying

from .pool import Group, Pool, ref_target

if TYPE_CHECKING:
    from tenacity import AsyncRetrying

log = logging.getLogger("scrm.sink")

__all__ = ["Sink", "SinkCounts"]


class _Stopped(Exception):
    """Raised out of a retry wait when the engine is stopping."""


@dataclass
class SinkCounts:
    applied: int = 0  # outbox items settled as done
    dead_lettered: int = 0
    calls: int = 0  # apply() calls made, retries included
    retried_calls: int = 0
    record_retries: int = 0
    links_deferred: int = 0  # references left out because their target was refused


def _without_dead_refs(group: Group, dead: set[tuple[CrmObject, str]]) -> tuple[CrmOperation, list[PendingLink]]:
    """The group's operation minus references to refused records, and the links left out."""
    op = group.op
    if not dead:  # the usual case: nothing refused
        return op, []
    links = [
        PendingLink(target[0], target[1], op.object, op.external_key, name)
        for name, key in op.refs.items()
        if (target := ref_target(name, key)) is not None and target in dead
    ]
    if not links:
        return op, []
    refs = {name: key for name, key in op.refs.items() if name not in {link.ref for link in links}}
    return CrmOperation.model_construct(
        object=op.object, external_key=op.external_key, fields=op.fields, refs=refs
    ), links


#: While a call had to wait for the CRM's rate budget in the last this many seconds, a
#: partial batch waits at least BUDGET_PRESSED_WINDOW seconds for more records.
BUDGET_PRESSED_SECONDS = 10.0
BUDGET_PRESSED_WINDOW = 2.0


class Sink:
    """Owns the CRM side of the engine (see the module docstring)."""

    def __init__(self, store: AsyncStore, crm: CrmAdapter, config: EngineConfig, *, follow: bool) -> None:
        self.store, self.crm, self.config = store, crm, config
        self.follow = follow
        self.counts = SinkCounts()
        self.pool = Pool(crm.stored_on)
        self._dead: set[tuple[CrmObject, str]] = set()
        self._backlog = 0  # items of earlier runs still in the outbox (an estimate once reading starts)
        self._backlog_after = 0  # last backlog seq read
        self._first_fresh_seq: int | None = None
        self._wake = asyncio.Event()
        self._finishing = asyncio.Event()
        self._stopping = asyncio.Event()
        self._below_high_water = asyncio.Event()
        self._below_high_water.set()
        # In --once mode a CRM that stays down must end the run; when following, keep trying.
        self._attempts = None if follow else config.max_attempts  # a whole call: for ever while following
        self.take_limit = max(crm.limits.max_batch * 4, 1000)
        self._budget_waited_at = -math.inf  # when a call last had to wait for the rate budget
        self._policy: AsyncRetrying | None = None  # built at the first call (see _apply)

    @property
    def pending(self) -> int:
        """Records not yet settled, as far as this process knows."""
        return len(self.pool) + self._backlog

    async def start(self) -> None:
        """Call before the first commit of this run: whatever is in the outbox now is backlog."""
        self._backlog = await self.store.call(StateStore.outbox_depth)
        self._dead = await self.store.call(StateStore.dead_letter_keys)
        self._update_water()

    def notify(self, seqs: Sequence[int], ops: Sequence[CrmOperation]) -> None:
        """Ingest committed ``ops`` as outbox items ``seqs``.

        Called right after ``commit_page`` returns and before any other await, so a backlog
        read that the store ran after this commit still sees ``_first_fresh_seq`` set.
        """
        if not ops:
            return
        if self._first_fresh_seq is None:
            self._first_fresh_seq = seqs[0]
            if self._backlog:
                self.pool.hold_from = seqs[0]  # until the older rows are all read
        self.pool.add_committed(seqs, ops, time.monotonic())
        self._update_water()
        self._wake.set()

    def has_room(self) -> bool:
        return self._below_high_water.is_set()

    async def wait_for_room(self) -> None:
        """Backpressure: ingest waits here while the outbox is above its high-water mark."""
        await self._below_high_water.wait()

    def finish(self) -> None:
        """No more input: drain the outbox, then stop."""
        self._finishing.set()
        self._wake.set()

    def stop(self) -> None:
        """Stop as soon as the current call ends; what is unsent stays in the outbox."""
        self._stopping.set()
        self._finishing.set()
        self._wake.set()

    def _update_water(self) -> None:
        if self.pending > self.config.outbox_high_water:
            self._below_high_water.clear()
        else:
            self._below_high_water.set()

    async def run(self) -> None:
        try:
            await self._loop()
        except _Stopped:
            log.info("sink stopped with %d record(s) still in the outbox", self.pending)

    # ------------------------------------------------------------ the loop

    async def _loop(self) -> None:
        window = self.config.batch_window_ms / 1000
        while not self._stopping.is_set():
            await self._read_backlog()
            backoff, sent = await self.flush(partial=self._partial_due(window))
            if backoff:
                await self._sleep(backoff)
                continue
            if sent:
                continue
            if not self.pending and self._finishing.is_set():
                return
            self._wake.clear()
            await self._wait_for_input(window)

    def _partial_due(self, window: float) -> bool:
        """Whether partial batches go out now rather than wait for more records."""
        if len(self.pool) - self.pool.held >= self.config.outbox_high_water:
            return True  # no room to wait for more: ingest is held up
        if self._backlog:
            return False  # more of the outbox is still to be read
        if self._finishing.is_set():
            return True
        oldest = self.pool.oldest()
        return self.follow and oldest is not None and time.monotonic() - oldest >= self._window(window)

    def _window(self, window: float) -> float:
        """How long a partial batch waits for more records: ``batch_window_ms``, or longer while
        the CRM's rate budget is what holds the sink back (a call had to wait for it lately):
        then every call is worth a full batch, and the records wait for the budget anyway."""
        if time.monotonic() - self._budget_waited_at < BUDGET_PRESSED_SECONDS:
            return max(window, BUDGET_PRESSED_WINDOW)
        return window

    async def _wait_for_input(self, window: float) -> None:
        """Until new records, the end of the input, or (following) the oldest record's window."""
        timeout = None
        oldest = self.pool.oldest()
        if self.follow and oldest is not None:
            timeout = max(0.0, oldest + self._window(window) - time.monotonic())
        if self._finishing.is_set():
            timeout = 0.05  # nothing more will come; only a record's back-off can be pending
        waiter = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({waiter}, timeout=timeout)
        finally:
            waiter.cancel()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake early when asked to stop or finish."""
        waiter = self._stopping if self._finishing.is_set() else self._finishing
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter.wait(), timeout=seconds)

    async def _read_backlog(self) -> None:
        """Outbox rows of earlier runs into the pool, a slice at a time, while it has room.

        Any of them may have reached the CRM before the run that queued them ended, so
        they are marked uncertain: the adapter looks them up before writing. Until the
        last of them is read, records committed by this run wait (``Pool.hold_from``): an
        edit must not go out before the creation still unread in the outbox."""
        if not self._backlog or len(self.pool) - self.pool.held >= self.config.outbox_high_water:
            return
        items = await self.store.call(StateStore.outbox_take, self.take_limit, self._backlog_after)
        if self._first_fresh_seq is not None:
            items = [i for i in items if i.seq < self._first_fresh_seq]
        if not items:
            self._backlog = 0
            self.pool.release()
            self._update_water()
            return
        self._backlog_after = items[-1].seq
        self._backlog = max(self._backlog - len(items), 1)  # exact again when a read comes back empty
        now = time.monotonic()
        for item in items:
            self.pool.add(item, now, uncertain=True)

    # ------------------------------------------------------------ sending

    async def flush(self, *, partial: bool) -> tuple[float, bool]:
        """Send every batch that is due, in reference order.

        Returns (how long to back off before the next try, whether anything was sent)."""
        sent = False
        backoff = 0.0
        for obj in CRM_OBJECT_ORDER:
            size = self.crm.limits.batch_size(obj)
            while units := self.pool.take(obj, size, partial=partial):
                wait = await self._send([group for unit in units for group in unit])
                sent = True
                backoff = max(backoff, wait)
                if self._stopping.is_set():
                    return 0.0, sent
        self._update_water()
        return backoff, sent

    async def _send(self, groups: list[Group]) -> float:
        """Apply one batch and settle it; returns the back-off its retried records ask for."""
        links: dict[int, list[PendingLink]] = {}
        if not self._dead:  # the usual case: nothing refused, every operation goes as it is
            ops = [group.op for group in groups]
        else:
            ops = []
            for i, group in enumerate(groups):
                op, left_out = _without_dead_refs(group, self._dead)
                ops.append(op)
                if left_out:
                    links[i] = left_out
        batch = WriteBatch(
            ops,
            known=await self._known_ids(ops),
            uncertain=[group.key for group in groups if group.uncertain],
        )
        settlement = Settlement()
        again: list[Group] = []
        try:
            results = await self._apply(batch)
            settlement, again = self._settlement(groups, results, links)
        except BaseException:
            # Not sent or no answer: back into the pool, to be looked up before they are written.
            for group in groups:
                group.uncertain = True
                self.pool.put_back(group)
            raise
        finally:
            if settlement.done or settlement.failed or settlement.retry:
                released = await self.store.call(StateStore.outbox_settle, settlement)
                self._count(settlement)
                now = time.monotonic()
                for item in released:  # links waiting for a parent written just now
                    self.pool.add(item, now)
        for group in again:
            for item in group.items:
                item.attempts += 1
            self.pool.put_back(group)
        if again:
            return backoff(max(g.attempts for g in again), cap=self.config.retry_max_seconds)
        return 0.0

    async def _known_ids(self, ops: Sequence[CrmOperation]) -> dict[tuple[CrmObject, str], str]:
        if CrmCapability.ids_follow_keys in self.crm.capabilities:
            return {}  # the CRM finds its records by key: no ids kept to look up
        by_object: dict[CrmObject, list[str]] = {}
        for op in ops:
            by_object.setdefault(op.object, []).append(op.external_key)
            for name, key in op.refs.items():  # the records it refers to: no look-up by key for them
                target = ref_target(name, key)
                if target is not None:
                    by_object.setdefault(target[0], []).append(target[1])
        known: dict[tuple[CrmObject, str], str] = {}
        for obj, keys in by_object.items():
            for key, crm_id in (await self.store.call(StateStore.crm_ids, obj, list(dict.fromkeys(keys)))).items():
                known[(obj, key)] = crm_id
        return known

    def _settlement(
        self, groups: list[Group], results: list[OperationResult], links: dict[int, list[PendingLink]]
    ) -> tuple[Settlement, list[Group]]:
        done: list[int] = []
        crm_ids: list[tuple[CrmObject, str, str]] = []
        failed: list[Refusal] = []
        deferred: list[PendingLink] = []
        again: list[Group] = []
        for i, (group, result) in enumerate(zip(groups, results, strict=True)):
            if result.ok:
                items = group.items
                if len(items) == 1:  # the usual group: one outbox item
                    done.append(items[0].seq)
                else:
                    done += group.seqs
                if result.crm_id:
                    op = group.op
                    crm_ids.append((op.object, op.external_key, result.crm_id))
                if links:
                    deferred += links.get(i, ())
            elif result.retryable and group.attempts + 1 < self.config.max_attempts:
                again.append(group)
            else:
                reason = result.error or "refused by the CRM (no reason given)"
                if result.retryable:
                    reason += f" (gave up after {group.attempts + 1} attempts)"
                failed += [Refusal(seq, reason, result.code, result.retryable, result.fix or "") for seq in group.seqs]
                self._dead.add(group.key)
        if failed:
            log.warning("%d record(s) refused by the CRM went to the dead-letter queue", len(failed))
        if self._dead:
            for record in crm_ids:  # repaired and written at last: references to it are sent again
                self._dead.discard((record[0], record[1]))
        retry = [seq for group in again for seq in group.seqs]
        keep_ids = CrmCapability.ids_follow_keys not in self.crm.capabilities
        settlement = Settlement(done, crm_ids, failed, retry, deferred, keep_ids=keep_ids)
        return settlement, again

    def _count(self, settlement: Settlement) -> None:
        self.counts.applied += len(settlement.done)
        self.counts.dead_lettered += len(settlement.failed)
        self.counts.record_retries += len(settlement.retry)
        self.counts.links_deferred += len(settlement.links)

    def _waiting(self, exc: BaseException | None, seconds: float) -> None:
        log.warning("CRM call failed (%s); retrying in %.1fs", exc, seconds)

    async def _apply(self, batch: WriteBatch) -> list[OperationResult]:
        # One retry policy for the sink's life: a tenacity policy is a reference cycle (~40
        # objects), so one per call left cyclic garbage behind every CRM call, there until the
        # collector's next run (rare: tune_gc_for_throughput). Calls never overlap: only the
        # sink's own task sends.
        if self._policy is None:
            self._policy = retrying(
                attempts=self._attempts,
                cap=self.config.retry_max_seconds,
                sleep=self._retry_sleep,
                on_retry=self._waiting,
            )
        async for attempt in self._policy:
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    self.counts.retried_calls += 1
                    # The failed call may have been applied before its answer was lost.
                    batch.uncertain = frozenset((op.object, op.external_key) for op in batch)
                waited = self.crm.budget.stats.waited_seconds
                await self.crm.budget.acquire()
                if self.crm.budget.stats.waited_seconds > waited:
                    self._budget_waited_at = time.monotonic()
                self.counts.calls += 1
                results = await self.crm.apply(batch)
        if len(results) != len(batch):
            raise FatalError(
                f"CRM adapter {self.crm.name!r} returned {len(results)} results for {len(batch)} operations",
                detail="CrmAdapter.apply must return one result per operation, in order",
            )
        return results

    async def _retry_sleep(self, seconds: float) -> None:
        await self._sleep(seconds)
        if self._stopping.is_set():
            raise _Stopped  # shutting down: the batch stays in the outbox for the next run
