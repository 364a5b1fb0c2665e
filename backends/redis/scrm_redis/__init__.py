"""scrm's fleet coordination on Redis (redis-py): ``[state] coordination_url = "redis://..."``.

One CRM rate budget for the whole fleet: every worker's sink takes its token from one
bucket in Redis (:class:`RedisBucket`, one Lua script: atomic, timed by the Redis server's
clock, so workers on machines whose clocks differ agree), and the signals any worker's
CRM adapter reads (a 429's wait, a window's lower rate, the few calls left) reshape that
bucket for all of them. Installed at engine start by the ``scrm_startup`` hook on the CRM
adapter's :class:`~scrm_core.ratelimit.RateBudget` (its ``shared`` bucket), so adapters
keep feeding the budget they always fed.

Streamed sources (``stream = true``) publish their pages to Redis Streams, consumed by every
worker (:class:`~scrm_redis.streams.RedisPageStream`, installed as the engine's ``page_stream``).

Why redis-py: the Redis project's own client, with asyncio support and server-side
scripts (``register_script``: EVALSHA, loaded again if the server restarted).
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

from scrm_core import hookimpl
from scrm_core.errors import RetryableError
from scrm_core.ratelimit import SharedSignals

__all__ = ["RedisBucket", "scrm_startup"]

log = logging.getLogger("scrm.redis")

#: The bucket each running engine uses (closed when it stops).
_buckets: weakref.WeakKeyDictionary[Any, RedisBucket] = weakref.WeakKeyDictionary()

# KEYS[1]: the bucket's hash. ARGV: rate (tokens/s, -1 unlimited), capacity, pause (ms, 0
# none), tokens the service says are left (-1: not said), a rate the service imposed
# (-1: none; kept for 60 s as the fleet's rate). Returns the wait in ms (0: token taken).
_TAKE = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local pause_ms = tonumber(ARGV[3])
local left = tonumber(ARGV[4])
local imposed = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', key, 'tokens', 'stamp', 'paused_until', 'imposed', 'imposed_at')
local tokens = tonumber(h[1]) or cap
local stamp = tonumber(h[2]) or now
local paused = tonumber(h[3]) or 0
local shared_rate = tonumber(h[4]) or -1
local shared_at = tonumber(h[5]) or 0
if imposed >= 0 then shared_rate = imposed; shared_at = now end
if shared_rate >= 0 and now - shared_at < 60000 and (rate < 0 or shared_rate < rate) then rate = shared_rate end
if rate >= 0 then tokens = math.min(cap, tokens + (now - stamp) * rate / 1000) end
if pause_ms > 0 and now + pause_ms > paused then paused = now + pause_ms; tokens = math.min(tokens, 0) end
if left >= 0 then tokens = math.min(tokens, left) end
local wait = 0
if paused > now then wait = paused - now end
if rate == 0 then wait = math.max(wait, 1000) end
if rate > 0 and tokens < 1 then wait = math.max(wait, math.ceil((1 - tokens) * 1000 / rate)) end
if wait == 0 and rate >= 0 then tokens = tokens - 1 end
redis.call('HSET', key, 'tokens', tostring(tokens), 'stamp', now, 'paused_until', paused,
           'imposed', shared_rate, 'imposed_at', shared_at)
redis.call('PEXPIRE', key, 86400000)
return wait
"""


class RedisBucket:
    """The fleet's one token bucket for a CRM account, in Redis (see the module docstring)."""

    def __init__(self, url: str, key: str) -> None:
        from redis import asyncio as aioredis  # the driver: loaded by a fleet worker, not by every `scrm` command

        self.key = key
        self._redis = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._take = self._redis.register_script(_TAKE)

    async def take(self, signals: SharedSignals) -> float:
        from redis.exceptions import RedisError

        args = [
            -1 if signals.rate is None else signals.rate,
            signals.capacity,
            int(signals.pause_seconds * 1000),
            -1 if signals.tokens_left is None else max(0.0, signals.tokens_left),
            -1 if signals.signal_rate is None else signals.signal_rate,
        ]
        try:
            wait_ms = await self._take(keys=[self.key], args=args)
        except RedisError as exc:
            raise RetryableError(f"the fleet's shared rate budget (Redis) cannot be reached: {exc}") from exc
        return float(wait_ms) / 1000

    async def close(self) -> None:
        await self._redis.aclose()


@hookimpl
async def scrm_startup(app: Any) -> None:
    url = app.config.state.coordination_url
    if not url or not str(url).lower().startswith(("redis://", "rediss://", "unix://")):
        return
    if any(source.enabled and source.stream for source in app.config.sources):
        from .streams import RedisPageStream

        app.page_stream = RedisPageStream(url)
    crm = app.crm
    bucket = RedisBucket(url, f"scrm:budget:{crm.name}")
    crm.budget.shared = bucket
    _buckets[app] = bucket
    log.info("CRM %s: the rate budget is shared by the fleet through Redis", crm.name)


@hookimpl
async def scrm_shutdown(app: Any) -> None:
    bucket = _buckets.pop(app, None)
    if bucket is not None:
        await bucket.close()
    stream = getattr(app, "page_stream", None)
    if stream is not None:
        await stream.close()
