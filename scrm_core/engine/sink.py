"""The sink: drains the outbox into the CRM in batches, exactly once per record.

A flush takes the oldest outbox items, merges operations on the same record, groups them
by object type in reference order (contact, profile, case, lead, message) and calls
``CrmAdapter.apply`` with batches no larger than the adapter's limit. Then one store
transaction settles the flush: applied items leave the outbox with their CRM ids,
records the CRM refused for good go to the dead-letter queue with its reason, transient
per-record failures stay for another attempt.

A whole call that fails with :class:`RetryableError` (rate limit, timeout, 5xx) is
retried with tenacity, waiting as long as the CRM asked. Because every write is an upsert
by external key, a retry after a timeout whose request did land creates nothing new.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, stop_never

from ..adapters import CrmAdapter
from ..config import EngineConfig
from ..errors import FatalError, RetryableError
from ..models import CRM_OBJECT_ORDER, CrmObject, CrmOperation, OperationResult
from ..store import AsyncStore
from ..store.base import OutboxItem, Settlement

log = logging.getLogger("scrm.sink")


class _Stopped(Exception):
    """Raised out of a retry wait when the engine is stopping."""


@dataclass
class SinkCounts:
    applied: int = 0  # outbox items settled as done
    dead_lettered: int = 0
    calls: int = 0  # apply() calls made, retries included
    retried_calls: int = 0
    record_retries: int = 0


@dataclass
class _Group:
    """One record's operations in this flush, merged, and the outbox items they came from."""

    op: CrmOperation
    items: list[OutboxItem]

    @property
    def seqs(self) -> list[int]:
        return [item.seq for item in self.items]

    @property
    def attempts(self) -> int:
        return max(item.attempts for item in self.items)


def coalesce(items: Sequence[OutboxItem]) -> dict[CrmObject, list[_Group]]:
    """Merge operations on the same record (in outbox order) and group them by object type."""
    groups: dict[tuple[CrmObject, str], _Group] = {}
    for item in items:
        key = (item.op.object, item.op.external_key)
        group = groups.get(key)
        if group is None:
            groups[key] = _Group(item.op, [item])
        else:
            group.op = group.op.merged_with(item.op)
            group.items.append(item)
    by_object: dict[CrmObject, list[_Group]] = {}
    for group in groups.values():
        by_object.setdefault(group.op.object, []).append(group)
    return dict(sorted(by_object.items(), key=lambda kv: CRM_OBJECT_ORDER[kv[0]]))


class Sink:
    """Owns the CRM side of the engine.

    Operations reach it two ways. Those committed by this process arrive through
    :meth:`notify` and are kept in memory (the outbox row is the durable copy, so a crash
    loses nothing). Those left in the outbox by an earlier run (the backlog) are read
    back from the store first, oldest first.
    """

    def __init__(self, store: AsyncStore, crm: CrmAdapter, config: EngineConfig, *, follow: bool) -> None:
        self.store, self.crm, self.config = store, crm, config
        self.counts = SinkCounts()
        self._fresh: deque[OutboxItem] = deque()
        self._backlog = 0  # items of earlier runs still in the outbox (an estimate once reading starts)
        self._backlog_after = 0  # last backlog seq read
        self._first_fresh_seq: int | None = None
        self._wake = asyncio.Event()
        self._finishing = asyncio.Event()
        self._stopping = asyncio.Event()
        self._below_high_water = asyncio.Event()
        self._below_high_water.set()
        # In --once mode a CRM that stays down must end the run; when following, keep trying.
        self._stop_retrying = stop_never if follow else stop_after_attempt(config.max_attempts)
        self.take_limit = max(crm.limits.max_batch * 4, 1000)

    @property
    def pending(self) -> int:
        """Operations not yet settled, as far as this process knows."""
        return len(self._fresh) + self._backlog

    async def start(self) -> None:
        """Call before the first commit of this run: whatever is in the outbox now is backlog."""
        self._backlog = await self.store.outbox_depth()
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
        self._fresh.extend(map(OutboxItem, seqs, ops))
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
            log.info("sink stopped with %d operation(s) still in the outbox", self.pending)

    async def _loop(self) -> None:
        window = self.config.batch_window_ms / 1000
        while not self._stopping.is_set():
            if self.pending <= 0:
                if self._finishing.is_set():
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.pending < self.crm.limits.max_batch and not self._finishing.is_set():
                await self._sleep(window)  # let a batch fill up
            backoff = await self.flush()
            if backoff:
                await self._sleep(backoff)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake early when asked to stop or finish."""
        waiter = self._stopping if self._finishing.is_set() else self._finishing
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter.wait(), timeout=seconds)

    async def _take(self) -> list[OutboxItem]:
        """The next slice: backlog from the store first, then what this run committed."""
        if self._backlog:
            items = await self.store.outbox_take(self.take_limit, self._backlog_after)
            if self._first_fresh_seq is not None:
                items = [i for i in items if i.seq < self._first_fresh_seq]
            if items:
                self._backlog_after = items[-1].seq
                self._backlog = max(self._backlog - len(items), 1)  # exact again when a read comes back empty
                return items
            self._backlog = 0
        fresh = self._fresh
        return [fresh.popleft() for _ in range(min(self.take_limit, len(fresh)))]

    async def flush(self) -> float:
        """Send one slice; returns how long to back off before the next (0: none)."""
        items = await self._take()
        if not items:
            self._update_water()
            return 0.0
        done: list[int] = []
        crm_ids: list[tuple[CrmObject, str, str]] = []
        failed: list[tuple[int, str]] = []
        again: list[_Group] = []
        try:
            for obj, groups in coalesce(items).items():
                size = self.crm.limits.batch_size(obj)
                for start in range(0, len(groups), size):
                    batch = groups[start : start + size]
                    results = await self._apply([g.op for g in batch])
                    for group, result in zip(batch, results, strict=True):
                        if result.ok:
                            done += group.seqs
                            if result.crm_id:
                                crm_ids.append((obj, group.op.external_key, result.crm_id))
                        elif result.retryable and group.attempts + 1 < self.config.max_attempts:
                            again.append(group)
                        else:
                            reason = result.error or "refused by the CRM (no reason given)"
                            failed += [(seq, reason) for seq in group.seqs]
        finally:
            # Also when a call gives up or the engine stops mid-slice: what the CRM took is
            # settled now; the rest of the slice stays in the outbox for the next run.
            retry = [seq for group in again for seq in group.seqs]
            await self.store.outbox_settle(Settlement(done=done, crm_ids=crm_ids, failed=failed, retry=retry))
        # Records to try again go back to the front, in order, one attempt older.
        retry_items = [item for group in again for item in group.items]
        for item in retry_items:
            item.attempts += 1
        self._fresh.extendleft(reversed(retry_items))
        self.counts.applied += len(done)
        self.counts.dead_lettered += len(failed)
        self.counts.record_retries += len(retry)
        self._update_water()
        if failed:
            log.warning("%d record(s) refused by the CRM went to the dead-letter queue", len(failed))
        if again:
            return self._backoff(max(g.attempts for g in again) + 1, None)
        return 0.0

    def _backoff(self, attempt: int, asked: float | None) -> float:
        if asked is not None:
            return min(asked, self.config.retry_max_seconds)
        exponential: float = min(0.5 * 2.0 ** (attempt - 1), self.config.retry_max_seconds)
        return exponential * (0.5 + random.random() / 2)  # jitter: retries of many workers spread out

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        asked = exc.retry_after if isinstance(exc, RetryableError) else None
        wait = self._backoff(state.attempt_number, asked)
        log.warning("CRM call failed (%s); retrying in %.1fs", exc, wait)
        return wait

    async def _apply(self, ops: list[CrmOperation]) -> list[OperationResult]:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(RetryableError),
            wait=self._wait,
            stop=self._stop_retrying,
            sleep=self._retry_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    self.counts.retried_calls += 1
                await self.crm.budget.acquire()
                self.counts.calls += 1
                results = await self.crm.apply(ops)
        if len(results) != len(ops):
            raise FatalError(
                f"CRM adapter {self.crm.name!r} returned {len(results)} results for {len(ops)} operations",
                detail="CrmAdapter.apply must return one result per operation, in order",
            )
        return results

    async def _retry_sleep(self, seconds: float) -> None:
        await self._sleep(seconds)
        if self._stopping.is_set():
            raise _Stopped  # shutting down: the batch stays in the outbox for the next run
