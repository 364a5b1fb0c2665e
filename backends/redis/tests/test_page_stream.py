"""The stream of pages on a real Redis: what the fleet's ordering and recovery rely on."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from scrm.store import LeaseLost
from scrm_redis.streams import RedisPageStream
from scrm_redis.testing import RedisServer

from scrm_core.streams import StreamPage, split_checkpoint, stream_checkpoint

_sources = itertools.count(1)


def page(source: str, seq: int) -> StreamPage:
    return StreamPage(source, seq, f'{{"events":[],"cursor":"c{seq}"}}'.encode(), f"c{seq}")


def run(redis_server: RedisServer, test: object) -> None:
    async def main() -> None:
        stream = RedisPageStream(redis_server.url)
        try:
            await test(stream, f"src{next(_sources)}")  # type: ignore[operator]
        finally:
            await stream.close()

    asyncio.run(main())


def test_a_checkpoint_carries_the_pages_sequence_and_any_cursor() -> None:
    for cursor in (None, "", "a:b", 'q"\\', "scrm-stream:[1,null]"):
        assert split_checkpoint(stream_checkpoint(7, cursor)) == (7, cursor)
    assert split_checkpoint("plain") == (None, "plain") and split_checkpoint(None) == (None, None)


def test_a_sequence_is_published_once_and_only_by_the_newest_reader(redis_server: RedisServer) -> None:
    async def test(stream: RedisPageStream, source: str) -> None:
        assert await stream.tail(source) == (0, None)
        await stream.fence(source, 1)
        await stream.publish(page(source, 1), 1)
        with pytest.raises(LeaseLost):
            await stream.publish(page(source, 1), 1)  # the same sequence again
        await stream.fence(source, 2)  # a new reader took the lease over
        with pytest.raises(LeaseLost):
            await stream.publish(page(source, 2), 1)  # the deposed reader's late page
        with pytest.raises(LeaseLost):
            await stream.fence(source, 1)
        await stream.publish(page(source, 2), 2)
        highest, last = await stream.tail(source)
        assert highest == 2 and last is not None and (last.seq, last.cursor) == (2, "c2")

    run(redis_server, test)


def test_pages_are_shared_claimed_from_the_dead_and_trimmed_once_done(redis_server: RedisServer) -> None:
    async def test(stream: RedisPageStream, source: str) -> None:
        await stream.reset(source)
        await stream.fence(source, 1)
        for seq in (1, 2, 3):
            await stream.publish(page(source, seq), 1)
        a = await stream.take("a", [source], 1, 0.1)
        b = await stream.take("b", [source], 1, 0.1)
        assert [p.seq for p in a] == [1] and [p.seq for p in b] == [2]
        await stream.keep("a", a)
        assert await stream.claim("c", [source], 0.5, 10) == []  # fresh: nobody takes them
        claimed = await stream.claim("c", [source], 0.0, 10)  # "b" presumed dead
        assert sorted(p.seq for p in claimed) == [1, 2]
        await stream.done(claimed[0])
        assert await stream.wait_turn([(source, 2)], 0.1) == (source, 2)
        assert await stream.wait_turn([(source, 3)], 0.1) is None
        assert await stream.backlog(source) == 3  # page 1 stays: a new reader goes on from it
        await stream.done(claimed[1])
        assert await stream.backlog(source) == 2
        highest, last = await stream.tail(source)
        assert highest == 3 and last is not None and last.seq == 3
        await stream.reset(source)
        assert await stream.tail(source) == (3, None)
        with pytest.raises(LeaseLost):
            await stream.publish(page(source, 3), 1)  # sequences keep growing after a reset

    run(redis_server, test)
