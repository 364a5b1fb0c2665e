"""A real Redis for the whole session (Debian's redis-server on 127.0.0.1, a free port)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from scrm_redis.testing import RedisServer, require_redis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer.start(require_redis()) as server:
        yield server
