"""A real Redis for the whole session (Debian's redis-server on 127.0.0.1, a free port), and a
real PostgreSQL for the fleet's state."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from scrm_postgres.testing import PostgresServer, require_postgres
from scrm_redis.testing import RedisServer, require_redis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer.start(require_redis()) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL (the fleet's state) for the streamed-source tests."""
    folder = require_postgres()
    with PostgresServer.start(bin_folder=folder) as server:
        yield server


_databases = itertools.count(1)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a new, empty database."""
    return postgres_server.create_database(f"s{next(_databases)}")
