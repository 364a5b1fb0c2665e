"""Two fleet sinks (two workers' :class:`FleetSink`, each with its own store connection and
lease keeper) drain one PostgreSQL outbox in parallel, into one CRM that refuses a record
whose parent it does not hold: each record is written once, its writes in order, and no
message goes out before its contact, although contacts and messages sit in partitions
drained by different sinks and the contacts' sink is the slower one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import pytest
from scrm.engine.fleet import FleetSink, LeaseKeeper
from scrm.store import AsyncStore, PageCommit, StateStore, WorkerInfo
from scrm_postgres import PostgresStore

from scrm_core.adapters import AdapterContext, AdapterSettings, CrmAdapter
from scrm_core.config import EngineConfig
from scrm_core.models import CrmObject, CrmOperation, OperationResult
from scrm_core.store.base import partition_of

LEASE = 30.0


class _Crm(CrmAdapter):
    """One CRM shared by both sinks: refuses (retryable) a record whose reference it lacks."""

    name = "strict"

    def __init__(self, shared: dict[str, Any], who: str, slow: float) -> None:
        super().__init__(AdapterSettings(), AdapterContext(name="crm"))
        self.shared, self.who, self.slow = shared, who, slow
        self.shared.setdefault("refuse", set())

    async def apply(self, ops: Sequence[CrmOperation]) -> list[OperationResult]:
        results = []
        await asyncio.sleep(self.slow * any(op.object is CrmObject.contact for op in ops))
        for op in ops:
            if op.external_key in self.shared["refuse"]:
                results.append(OperationResult(external_key=op.external_key, ok=False, retryable=False, error="no"))
                continue
            missing = [key for key in op.refs.values() if key not in self.shared["records"]]
            if missing:
                self.shared["orphans"].append(op.external_key)
                results.append(OperationResult(external_key=op.external_key, ok=False, retryable=True, error="orphan"))
                continue
            self.shared["records"].setdefault(op.external_key, []).append(op.fields.get("v"))
            self.shared["by"].setdefault(self.who, 0)
            self.shared["by"][self.who] += 1
            results.append(OperationResult(external_key=op.external_key, ok=True, crm_id=f"id-{op.external_key}"))
        return results


async def _two_halves(postgres_url: str) -> tuple[list[AsyncStore], list[LeaseKeeper]]:
    """Two workers' stores and lease keepers, w0 holding the outbox partitions' first half
    and w1 the second."""
    parts = PostgresStore.outbox_partitions
    stores = [AsyncStore(lambda: PostgresStore(postgres_url)) for _ in range(2)]
    keepers = [LeaseKeeper(s, WorkerInfo(f"w{i}", "h", i, ""), LEASE) for i, s in enumerate(stores)]
    for keeper in keepers:
        await keeper.join()
        keeper.set_names([])
    for keeper, half in zip(keepers, (range(parts // 2), range(parts // 2, parts)), strict=True):
        keeper.partitions = [f"outbox#{p}" for p in half] + [f"outbox#{p}" for p in range(parts) if p not in half]
        await keeper.tick()
    return stores, keepers


@pytest.mark.parametrize("refused", [0, 1], ids=["all-written", "a-contact-refused"])
def test_two_sinks_share_the_outbox_send_each_write_once_in_order_and_parents_first(
    postgres_url: str, refused: int
) -> None:
    """With a contact refused for good by the CRM (by one sink), its messages (sent by the
    other) go without the reference, which is kept as a pending link, never as an orphan."""
    parts = PostgresStore.outbox_partitions
    # Contacts in partitions 0-7, their messages in 8-15: each sink holds one half.
    contacts = [k for k in (f"scrm:c{i}" for i in range(400)) if partition_of(k, parts) < parts // 2][:30]
    messages = [k for k in (f"scrm:m{i}" for i in range(400)) if partition_of(k, parts) >= parts // 2][:60]
    ops = [CrmOperation(object=CrmObject.contact, external_key=c, fields={"v": 0}) for c in contacts]
    ops += [
        CrmOperation(object=CrmObject.message, external_key=m, fields={"v": v}, refs={"contact": contacts[i % 30]})
        for v in range(2)
        for i, m in enumerate(messages)
    ]
    setup = PostgresStore(postgres_url)
    setup.migrate()
    setup.commit_page(PageCommit("demo", "1", ops=ops))
    setup.close()
    shared: dict[str, Any] = {"records": {}, "orphans": [], "by": {}, "refuse": set(contacts[:refused])}

    async def main() -> None:
        # w0 takes the contacts' half first (its share of two live workers), then w1 the rest.
        stores, keepers = await _two_halves(postgres_url)
        config = EngineConfig(batch_window_ms=0, retry_max_seconds=0.05)
        assert {int(n.removeprefix("outbox#")) for n in keepers[0].sinks} == set(range(parts // 2))
        sinks = [
            FleetSink(s, _Crm(shared, f"w{i}", slow=0.3 if i == 0 else 0.0), config, keeper)
            for i, (s, keeper) in enumerate(zip(stores, keepers, strict=True))
        ]
        for sink in sinks:
            await sink.start()
        tasks = [asyncio.create_task(sink.run()) for sink in sinks]
        deadline = time.monotonic() + 60
        while sum(map(len, shared["records"].values())) < len(contacts) + len(messages) - refused:
            assert not shared["orphans"], f"sent before their contact: {shared['orphans'][:3]}"
            assert time.monotonic() < deadline, shared["records"]
            await asyncio.sleep(0.05)  # polling interval, not a wait for the outcome
        for sink in sinks:
            sink.finish()
        await asyncio.gather(*tasks)
        assert await stores[0].call(StateStore.outbox_depth) == 0
        links = await stores[1].call(StateStore.pending_links, 1000)
        assert sorted(link.child_key for link in links) == sorted(m for i, m in enumerate(messages) if i % 30 < refused)
        assert {link.parent_key for link in links} == set(contacts[:refused])
        for store in stores:
            await store.close()

    asyncio.run(main())
    assert shared["orphans"] == []  # no message was sent before its contact
    assert sorted(shared["records"]) == sorted(contacts[refused:] + messages)
    # Each record written once: a message's two writes were merged in order (the last one wins).
    assert all(values == [1] for key, values in shared["records"].items() if key in messages)
    assert shared["by"] == {"w0": len(contacts) - refused, "w1": len(messages)}


class _CountingCrm(CrmAdapter):
    """Records the size of every call (``max_batch`` 50)."""

    name = "counting"

    def __init__(self, calls: list[int], requests_per_second: float | None = None) -> None:
        super().__init__(AdapterSettings(), AdapterContext(name="crm"))
        self.calls = calls
        self.limits = self.limits.model_copy(
            update={"max_batch": 50, "requests_per_second": requests_per_second, "burst": 1}
        )

    async def apply(self, ops: Sequence[CrmOperation]) -> list[OperationResult]:
        self.calls.append(len(ops))
        return [OperationResult(external_key=op.external_key, ok=True, crm_id=f"id-{op.external_key}") for op in ops]


async def _lone_sink(postgres_url: str, crm: CrmAdapter, config: EngineConfig) -> tuple[FleetSink, AsyncStore]:
    """The sink of a fleet's only worker (every outbox partition its own), started."""
    store = AsyncStore(lambda: PostgresStore(postgres_url))
    keeper = LeaseKeeper(store, WorkerInfo("w0", "h", 0, ""), LEASE)
    await keeper.join()
    keeper.set_names([])
    await keeper.tick()
    assert len(keeper.sinks) == PostgresStore.outbox_partitions
    sink = FleetSink(store, crm, config, keeper)
    await sink.start()
    return sink, store


async def _commit_pages(store: PostgresStore, pages: int, size: int, pace: float) -> None:
    """``pages`` pages of ``size`` message operations, one every ``pace`` seconds (a source's pages)."""
    for page in range(pages):
        ops = [
            CrmOperation(object=CrmObject.message, external_key=f"scrm:p{page}m{i}", fields={"v": i})
            for i in range(size)
        ]
        store.commit_page(PageCommit("demo", str(page), ops=ops))
        await asyncio.sleep(pace)  # the pace of a source's pages: the sink claims between them


def test_a_fleet_sink_sends_full_batches_while_more_is_coming(postgres_url: str) -> None:
    """Rows committed a page at a time while the sink runs go out in full batches (a partial
    one only once its oldest record has waited ``batch_window_ms``), as the single-process
    sink sends them: the number of CRM calls depends on the records, not on how often the
    sink happened to claim. Before, each claim round flushed whatever it held, partial or not."""
    setup = PostgresStore(postgres_url)
    setup.migrate()
    calls: list[int] = []

    async def main() -> None:
        sink, store = await _lone_sink(postgres_url, _CountingCrm(calls), EngineConfig(batch_window_ms=60_000))
        task = asyncio.create_task(sink.run())
        await _commit_pages(setup, 12, 20, 0.05)  # 240 records: 4 full batches of 50 and 40 left
        deadline = time.monotonic() + 30
        while sum(calls) < 200:
            assert time.monotonic() < deadline, calls
            await asyncio.sleep(0.05)  # polling interval, not a wait for the outcome
        assert calls == [50, 50, 50, 50]  # only full batches while the window runs
        sink.finish()
        await task
        assert calls == [50, 50, 50, 50, 40]  # the rest once the input ends
        assert await store.call(StateStore.outbox_depth) == 0
        await store.close()

    asyncio.run(main())
    setup.close()


def test_under_the_rate_budget_a_fleet_sink_spends_each_call_on_a_full_batch(postgres_url: str) -> None:
    """Once a call has had to wait for the CRM's rate budget, each call is worth a full batch:
    a partial one waits for more records than ``batch_window_ms`` would let it, so a trickle
    of rows (a fleet's sink sees rows become ready a few at a time, as their parents in other
    partitions are written) does not spend the budget on small calls."""
    setup = PostgresStore(postgres_url)
    setup.migrate()
    calls: list[int] = []

    async def main() -> None:
        crm = _CountingCrm(calls, requests_per_second=10.0)  # 10 calls a second, no burst
        sink, store = await _lone_sink(postgres_url, crm, EngineConfig(batch_window_ms=50))
        task = asyncio.create_task(sink.run())
        await _commit_pages(setup, 24, 10, 0.04)  # 240 records, 250 a second
        sink.finish()
        await task
        assert sum(calls) == 240
        await store.close()

    asyncio.run(main())
    setup.close()
    # Full batches of 50 once the budget pressed (a few small calls before it did): at most 8.
    assert len(calls) <= 8, calls


def test_every_workers_ingest_pauses_on_the_fleets_outbox_not_its_own_pool(postgres_url: str) -> None:
    """``engine.outbox_high_water`` bounds the shared outbox: a worker whose sink holds none of
    the rows waiting (another worker's partitions, that worker's CRM calls failing) still
    has no room for ingest, and has it again once the outbox drains. Before, a fleet sink's
    room was its own pool: the fleet read its sources on into the outbox while the CRM was down."""
    parts = PostgresStore.outbox_partitions
    theirs = [k for k in (f"scrm:m{i}" for i in range(1000)) if partition_of(k, parts) >= parts // 2][:150]
    setup = PostgresStore(postgres_url)
    setup.migrate()
    calls: list[int] = []

    async def main() -> None:
        stores, keepers = await _two_halves(postgres_url)
        config = EngineConfig(batch_window_ms=0, outbox_high_water=100)
        mine = FleetSink(stores[0], _CountingCrm([]), config, keepers[0])
        await mine.start()
        running = asyncio.create_task(mine.run())
        assert mine.has_room()
        ops = [CrmOperation(object=CrmObject.message, external_key=k, fields={"v": 1}) for k in theirs]
        setup.commit_page(PageCommit("demo", "1", ops=ops))  # another worker's commit, for w1's sink
        deadline = time.monotonic() + 10
        while mine.has_room():
            assert time.monotonic() < deadline, "ingest still has room with 150 operations waiting"
            await asyncio.sleep(0.02)  # polling interval, not a wait for the outcome
        assert len(mine.pool) == 0  # none of them is this sink's
        theirs_sink = FleetSink(stores[1], _CountingCrm(calls), config, keepers[1])  # w1's CRM answers again
        await theirs_sink.start()
        draining = asyncio.create_task(theirs_sink.run())
        await asyncio.wait_for(mine.wait_for_room(), timeout=10)
        assert sum(calls) >= 50  # room came back as w1's sink wrote the rows out
        # This worker's own commits count at once, before the next look at the outbox.
        mine.notify(list(range(101)), [])
        assert not mine.has_room()
        for sink in (mine, theirs_sink):
            sink.finish()
        await asyncio.gather(running, draining)
        for store in stores:
            await store.close()

    asyncio.run(main())
    setup.close()
    assert sum(calls) == len(theirs)
