"""The fleet's stream of pages on Redis Streams (:class:`scrm.engine.page_stream.PageStream`).

One stream per streamed source, ``scrm:pages:<source>``, and one consumer group, ``scrm``,
whose consumers are the fleet's workers (by worker id). A page's entry id is its sequence
(``<seq>-0``), so Redis itself refuses a sequence published twice; a Lua script publishes
only for the newest reader lease token seen (``scrm:pages:<source>:reader``), so a deposed
reader's late page is refused too. No ``MAXLEN`` on ``XADD``: trimming by length would drop
pages nobody committed; the reader waits for room instead (:meth:`backlog`), and a page is
trimmed (``XTRIM MINID``) once the page after it is committed, the last one kept as the
place a new reader goes on from. ``XAUTOCLAIM`` hands a dead consumer's pages to another;
``BLPOP`` on ``scrm:pages:<source>:turn:<seq>`` wakes the consumer whose page's turn came.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from scrm_core.errors import RetryableError
from scrm_core.store import LeaseLost
from scrm_core.streams import StreamPage

__all__ = ["RedisPageStream"]

GROUP = "scrm"

# KEYS[1] the stream, KEYS[2] the newest reader token. ARGV: token, then (to publish) entry
# id, seq, cursor (JSON), page. Returns 1 (published, or the token recorded), 0 (a reader
# with a newer token started since), -1 (this sequence or a later one was published already).
_PUBLISH = """
local held = tonumber(redis.call('GET', KEYS[2]) or '0')
local token = tonumber(ARGV[1])
if token < held then return 0 end
if token > held then redis.call('SET', KEYS[2], ARGV[1]) end
if #ARGV == 1 then return 1 end
local added = redis.pcall('XADD', KEYS[1], ARGV[2], 'seq', ARGV[3], 'cursor', ARGV[4], 'page', ARGV[5])
if type(added) == 'table' and added.err then return -1 end
return 1
"""


def _key(source: str) -> str:
    return f"scrm:pages:{source}"


def _turn(source: str, seq: int) -> str:
    return f"scrm:pages:{source}:turn:{seq}"


def _seq(entry: bytes | str) -> int:
    text = entry.decode() if isinstance(entry, bytes) else entry
    return int(text.partition("-")[0])


def _page(source: str, entry: Any, fields: dict[bytes, bytes]) -> StreamPage:
    text = entry.decode() if isinstance(entry, bytes) else str(entry)
    return StreamPage(source, int(fields[b"seq"]), fields[b"page"], json.loads(fields[b"cursor"]), text)


class RedisPageStream:
    """Pages of the streamed sources in Redis (see the module docstring)."""

    def __init__(self, url: str) -> None:
        from redis import asyncio as aioredis  # the driver: loaded by a fleet worker, not by every `scrm` command

        self._redis = aioredis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self._publish = self._redis.register_script(_PUBLISH)
        self._grouped: set[str] = set()

    async def _call(self, what: str, call: Any) -> Any:
        from redis.exceptions import RedisError

        try:
            return await call
        except RedisError as exc:
            raise RetryableError(f"the fleet's stream of pages (Redis) failed to {what}: {exc}") from exc

    async def _group(self, sources: Sequence[str]) -> None:
        from redis.exceptions import ResponseError

        for source in sources:
            if source in self._grouped:
                continue
            try:
                await self._redis.xgroup_create(_key(source), GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._grouped.add(source)

    async def fence(self, source: str, token: int) -> None:
        outcome = await self._call(
            "record the reader", self._publish(keys=[_key(source), f"{_key(source)}:reader"], args=[token])
        )
        if int(outcome) != 1:
            raise LeaseLost(source)

    async def tail(self, source: str) -> tuple[int, StreamPage | None]:
        from redis.exceptions import ResponseError

        try:
            info = await self._redis.xinfo_stream(_key(source))
        except ResponseError:  # no such stream yet
            return 0, None
        highest = _seq(info["last-generated-id"])
        last = await self._call("read its last page", self._redis.xrevrange(_key(source), count=1))
        return highest, (_page(source, *last[0]) if last else None)

    async def reset(self, source: str) -> None:
        await self._call("drop stale pages", self._redis.xtrim(_key(source), maxlen=0, approximate=False))
        self._grouped.discard(source)
        await self._call("create the consumer group", self._group([source]))

    async def publish(self, page: StreamPage, token: int) -> None:
        args: list[str | int | bytes] = [token, f"{page.seq}-0", page.seq, json.dumps(page.cursor), page.data]
        outcome = await self._call(
            "publish a page", self._publish(keys=[_key(page.source), f"{_key(page.source)}:reader"], args=args)
        )
        if int(outcome) != 1:
            raise LeaseLost(page.source)

    async def backlog(self, source: str) -> int:
        return int(await self._call("count pages", self._redis.xlen(_key(source))))

    async def take(self, consumer: str, sources: Sequence[str], count: int, block: float) -> list[StreamPage]:
        from redis.exceptions import RedisError, ResponseError

        await self._call("create the consumer group", self._group(sources))
        streams: dict[Any, Any] = {_key(source): ">" for source in sources}
        try:
            found: Any = await self._redis.xreadgroup(GROUP, consumer, streams, count=count, block=int(block * 1000))
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise RetryableError(f"the fleet's stream of pages (Redis) failed to deliver: {exc}") from exc
            self._grouped.clear()  # the stream was deleted meanwhile: create it again next time
            return []
        except RedisError as exc:
            raise RetryableError(f"the fleet's stream of pages (Redis) failed to deliver: {exc}") from exc
        by_key = {_key(source): source for source in sources}
        return [
            _page(by_key[key.decode()], entry, fields)
            for key, entries in found or []
            for entry, fields in entries
            if fields  # an entry trimmed after delivery: nothing to do
        ]

    async def claim(self, consumer: str, sources: Sequence[str], idle: float, count: int) -> list[StreamPage]:
        pages: list[StreamPage] = []
        for source in sources:
            reply = await self._call(
                "claim pages",
                self._redis.xautoclaim(_key(source), GROUP, consumer, int(idle * 1000), "0-0", count=count),
            )
            pages += [_page(source, entry, fields) for entry, fields in reply[1] if fields]
        return pages

    async def keep(self, consumer: str, pages: Sequence[StreamPage]) -> None:
        by_source: dict[str, list[Any]] = {}
        for page in pages:
            by_source.setdefault(page.source, []).append(page.entry)
        for source, entries in by_source.items():
            await self._call("keep pages", self._redis.xclaim(_key(source), GROUP, consumer, 0, entries, justid=True))

    async def done(self, page: StreamPage) -> None:
        key = _key(page.source)
        turn = _turn(page.source, page.seq + 1)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xack(key, GROUP, page.entry)
            pipe.xtrim(key, minid=f"{page.seq}-0", approximate=False)
            pipe.rpush(turn, 1)
            pipe.expire(turn, 300)
            await self._call("acknowledge a page", pipe.execute())

    async def wait_turn(self, turns: Sequence[tuple[str, int]], seconds: float) -> tuple[str, int] | None:
        keys = {_turn(source, seq): (source, seq) for source, seq in turns}
        found = await self._call("wait for a page's turn", self._redis.blpop(list(keys), timeout=seconds))
        if not found:
            return None
        return keys[found[0].decode()]

    async def close(self) -> None:
        await self._redis.aclose()
