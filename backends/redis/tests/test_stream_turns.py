"""Two workers racing for a streamed source's turn: the worker holding a later page never
takes the source's commit lease before the page ahead of it is committed.

Taking the lease for a page whose turn has not come holds up the worker whose page is next:
that one finds the lease busy, and (its turn's signal already spent) looks again later. A
worker used to do so each time a wait for its turn timed out; the hand-overs then cost up
to 0.6 s each. The leases taken are read from the store itself (every ``acquire_leases``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import cast

from scrm.engine.fleet import LeaseKeeper
from scrm.engine.page_stream import PreparedIngestor, StreamedSources, page_turn_lease
from scrm.store import AsyncStore, Lease, PageCommit, StateStore, WorkerInfo
from scrm_postgres import PostgresStore
from scrm_redis.streams import RedisPageStream
from scrm_redis.testing import RedisServer

from scrm_core.models import CrmOperation, EventPage
from scrm_core.streams import StreamPage, split_checkpoint, stream_checkpoint

LEASE = 30.0
SOURCE = "turns"
TURN = page_turn_lease(SOURCE)


class _Recorded(PostgresStore):
    """The store as every worker sees it, noting each time a worker got the commit lease."""

    taken: list[tuple[float, str]] = []  # (monotonic time, worker id)

    def acquire_leases(self, worker_id: str, names: Sequence[str], limit: int, lease_seconds: float) -> list[Lease]:
        got = super().acquire_leases(worker_id, names, limit, lease_seconds)
        if any(lease.name == TURN for lease in got):
            self.taken.append((time.monotonic(), worker_id))
        return got


class _Waits(RedisPageStream):
    """The stream, counting a worker's waits for its turn."""

    waits = 0

    async def wait_turn(self, turns: Sequence[tuple[str, int]], seconds: float) -> tuple[str, int] | None:
        _Waits.waits += 1
        return await super().wait_turn(turns, seconds)


def _page(seq: int) -> StreamPage:
    return StreamPage(SOURCE, seq, f'{{"events":[],"cursor":"c{seq}"}}'.encode(), f"c{seq}")


async def _understand_nothing(message: object) -> None:
    return None


def test_a_worker_takes_the_commit_lease_only_once_its_page_is_next(
    postgres_url: str, redis_server: RedisServer
) -> None:
    _Recorded.taken = []

    async def main() -> None:
        setup = _Recorded(postgres_url)
        setup.migrate()
        setup.commit_page(PageCommit(SOURCE, stream_checkpoint(0, None)))  # the reader started the stream
        stream = _Waits(redis_server.url)
        await stream.reset(SOURCE)
        await stream.fence(SOURCE, 1)
        for seq in (1, 2):
            await stream.publish(_page(seq), 1)
        # Worker B takes page 1 and is slow with it; worker A then takes page 2.
        (first,) = await stream.take("B", [SOURCE], 1, 0.1)
        store = AsyncStore(lambda: _Recorded(postgres_url))
        keeper = LeaseKeeper(store, WorkerInfo("A", "h", 1, ""), LEASE)
        await keeper.join()

        async def commit(
            source: str, page: EventPage, ingestor: object, lease: Lease
        ) -> tuple[list[int], list[CrmOperation]]:
            seqs = await store.call(StateStore.commit_page, PageCommit(source, page.cursor, lease=lease))
            return seqs, []

        ingestor = SimpleNamespace(understander=SimpleNamespace(understand=_understand_nothing), understood=set())
        a = StreamedSources(stream, store, keeper, [SOURCE], cast(PreparedIngestor, ingestor), commit, in_hand=2)
        consuming = asyncio.create_task(a.consume())
        deadline = time.monotonic() + 30
        while _Waits.waits < 3:  # A holds page 2 and has waited for its turn (and timed out) a few times
            assert time.monotonic() < deadline and not consuming.done(), _Waits.waits
            await asyncio.sleep(0.02)  # polling interval, not a wait for the outcome
        # B commits page 1 under the commit lease, gives it back and says page 2's turn came.
        (lease,) = setup.acquire_leases("B", [TURN], 1, LEASE)
        setup.commit_page(PageCommit(SOURCE, stream_checkpoint(1, "c1"), lease=lease))
        committed_first = time.monotonic()
        setup.release_leases("B", [TURN])
        await stream.done(first)
        while split_checkpoint(setup.checkpoint(SOURCE))[0] != 2:
            assert time.monotonic() < deadline and not consuming.done(), setup.checkpoint(SOURCE)
            await asyncio.sleep(0.02)  # polling interval, not a wait for the outcome
        consuming.cancel()
        await asyncio.gather(consuming, return_exceptions=True)
        await keeper.leave()
        await store.close()
        await stream.close()
        setup.close()
        early = [at for at, worker in _Recorded.taken if worker == "A" and at < committed_first]
        assert not early, f"A took the commit lease {len(early)} time(s) while page 1 was not committed"
        assert [w for _, w in _Recorded.taken] == ["B", "A"]

    asyncio.run(main())
