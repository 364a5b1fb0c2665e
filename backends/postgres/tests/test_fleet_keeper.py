"""The lease keeper of a fleet worker on a real PostgreSQL: outbox partitions spread evenly
and given back when a worker joins, a page read under a lease since lost is never committed
under the next one, and a lease dropped here is given back rather than renewed for ever."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from scrm.engine.fleet import LeaseKeeper
from scrm.store import AsyncStore, FleetStore, WorkerInfo
from scrm_postgres import PostgresStore

from scrm_core.models import EventPage

LEASE = 30.0


def _migrated(url: str) -> str:
    store = PostgresStore(url)
    store.migrate()
    store.close()
    return url


def _keeper(url: str, name: str) -> LeaseKeeper:
    return LeaseKeeper(AsyncStore(lambda: PostgresStore(url)), WorkerInfo(name, "h", 1, ""), LEASE)


def test_partitions_spread_over_the_workers_and_are_given_back_when_one_joins(postgres_url: str) -> None:
    _migrated(postgres_url)

    async def main() -> None:
        a, b, c = (_keeper(postgres_url, n) for n in "abc")
        for keeper in (a, b):
            await keeper.join()
            keeper.set_names([])
        await a.tick()
        await b.tick()
        parts = PostgresStore.outbox_partitions
        assert len(a.sinks) == len(b.sinks) == parts // 2 and not set(a.sinks) & set(b.sinks)
        await c.join()
        c.set_names([])
        await a.tick()  # three live workers now: a's share is ceil(16 / 3) = 6
        share = -(-parts // 3)
        assert len(a.giving_back) == parts // 2 - share and a.giving_back <= set(a.sinks)
        await a.give_back(sorted(a.giving_back))  # what the sink does between two batches
        await b.tick()
        await b.give_back(sorted(b.giving_back))
        await c.tick()
        held = [set(k.sinks) for k in (a, b, c)]
        assert [len(h) for h in held] == [share, share, parts - 2 * share]
        assert set().union(*held) == {f"outbox#{p}" for p in range(parts)}
        for keeper in (a, b, c):
            await keeper.store.close()

    asyncio.run(main())


def test_a_page_read_under_a_lost_lease_is_not_committed_under_the_next_one(postgres_url: str) -> None:
    _migrated(postgres_url)

    async def main() -> None:
        a = _keeper(postgres_url, "a")
        await a.join()
        a.set_names(["src"])
        started, _ = await a.tick()
        assert started == ["src"]
        first = a.readers["src"]

        async def pages(cursor: str | None) -> AsyncIterator[EventPage]:
            for n in range(2):
                yield EventPage(events=[], cursor=str(n))

        reading = a.reading("src", pages)
        old = [page async for page in reading(None)]
        assert a.page_lease("src", old[0]) == first  # still the lease it was read under
        # The lease is lost (a refused commit) and the same worker takes it again at once.
        a.lost("src")
        started, _ = await a.tick()
        assert started == ["src"] and a.readers["src"].token > first.token
        assert a.page_lease("src", old[1]) is None  # read under the old lease: dropped
        (fresh,) = [page async for page in a.reading("src", pages)(None)][:1]
        assert a.page_lease("src", fresh) == a.readers["src"]
        # A lease dropped here that the worker does not take again is given back in the store,
        # not renewed by every heartbeat with nobody reading the source.
        a.lost("src")
        a.set_names([])
        await a.tick()
        view = await a.store.fleet(FleetStore.fleet, LEASE)
        assert [x.holder for x in view.leases if x.name == "src"] == [None]
        await a.store.close()

    asyncio.run(main())
