"""One CRM rate budget for the fleet, in a real Redis: two workers' budgets spend from one
bucket, and what one worker's CRM said (a 429's wait, a lower rate) holds the other too."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from scrm_redis import RedisBucket
from scrm_redis.testing import RedisServer
from scrm_replay.demo import generate_demo

from scrm_core.ratelimit import RateBudget, SharedSignals
from tests.e2e import write_config

_keys = itertools.count()


@pytest.fixture
def key() -> Iterator[str]:
    yield f"scrm:budget:test-{next(_keys)}"


def _worker(server: RedisServer, key: str, rate: float, burst: int) -> tuple[RateBudget, RedisBucket]:
    budget = RateBudget(rate, burst)
    bucket = RedisBucket(server.url, key)
    budget.shared = bucket
    return budget, bucket


def test_two_workers_share_one_burst(redis_server: RedisServer, key: str) -> None:
    async def main() -> list[float]:
        a, bucket_a = _worker(redis_server, key, rate=0.01, burst=4)  # a refill takes 100 s
        b, bucket_b = _worker(redis_server, key, rate=0.01, burst=4)
        waits = []
        for budget, bucket in [(a, bucket_a), (b, bucket_b)] * 3:
            waits.append(await bucket.take(SharedSignals(budget.rate, budget.capacity)))
        await bucket_a.close()
        await bucket_b.close()
        return waits

    waits = asyncio.run(main())
    assert waits[:4] == [0.0, 0.0, 0.0, 0.0]  # the burst of 4, spent by both workers together
    assert all(w > 50 for w in waits[4:]), waits  # then the next token is ~100 s away, for both


def test_a_429_seen_by_one_worker_pauses_the_other(redis_server: RedisServer, key: str) -> None:
    async def main() -> tuple[float, float]:
        a, bucket_a = _worker(redis_server, key, rate=1000, burst=100)
        b, bucket_b = _worker(redis_server, key, rate=1000, burst=100)
        await a.acquire()
        await b.acquire()
        a.pause(30, reason="rate limit reached")  # what the adapter does on a 429
        own = await bucket_a.take(a.shared_signals())  # a's next call tells the bucket
        other = await bucket_b.take(b.shared_signals())  # b saw no 429 itself
        await bucket_a.close()
        await bucket_b.close()
        return own, other

    own, other = asyncio.run(main())
    assert 28 < own <= 30 and 28 < other <= 30


def test_a_lower_rate_one_worker_was_told_slows_every_worker(redis_server: RedisServer, key: str) -> None:
    async def main() -> tuple[float, float]:
        a, bucket_a = _worker(redis_server, key, rate=1000, burst=1)
        b, bucket_b = _worker(redis_server, key, rate=1000, burst=1)
        before = await bucket_b.take(b.shared_signals())
        a.observe_window(limit=10, remaining=0, window_seconds=100)  # the CRM told a: 10 per 100 s, none left
        await bucket_a.take(a.shared_signals())
        after = await bucket_b.take(b.shared_signals())  # b saw nothing itself
        await bucket_a.close()
        await bucket_b.close()
        return before, after

    before, after = asyncio.run(main())
    assert before == 0.0
    assert after > 5, after  # ~11 s per call at 9 calls per 100 s (the window less the margin), not 1 ms


def test_scrm_run_takes_its_crm_calls_from_the_shared_bucket(redis_server: RedisServer, tmp_path: Path) -> None:
    generate_demo(tmp_path / "data", messages=60, seed=2)
    files = sorted((tmp_path / "data").glob("*.ndjson"))
    config = write_config(tmp_path, files)
    config.write_text(config.read_text().replace("[state]\n", f'[state]\ncoordination_url = "{redis_server.url}"\n'))
    done = subprocess.run(
        [sys.executable, "-m", "scrm", "run", "--once", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    client = redis.Redis.from_url(redis_server.url)
    bucket = client.hgetall("scrm:budget:localcrm")
    client.close()
    assert bucket and int(bucket[b"stamp"]) > 0  # the sink's calls went through the shared bucket
