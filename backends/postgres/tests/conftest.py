"""A real PostgreSQL for the whole session (Debian's package, on 127.0.0.1, a free port,
removed afterwards); each test gets its own database. No PostgreSQL installed: the tests
skip saying why, or fail when ``SCRM_REQUIRE_POSTGRES=1`` (CI)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from scrm_postgres.testing import PostgresServer, require_postgres

_names = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    folder = require_postgres()
    with PostgresServer.start(bin_folder=folder) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of a new, empty database."""
    return postgres_server.create_database(f"t{next(_names)}")
