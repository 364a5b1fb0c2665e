"""The PostgreSQL state store passes the same conformance suite as SQLite, plus what is its
own: registration by URL scheme, the single-writer claim, errors that never show the password."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest
from scrm.plugins import PluginHost
from scrm.store import NewReply, StateStore, StorageError, StoreInUse, WorkerInfo, open_store
from scrm_postgres import PostgresBackend, PostgresStore, safe_url
from scrm_postgres.testing import PostgresServer

from scrm_core.errors import FatalError
from scrm_core.testing.fleet import FleetStoreConformance
from scrm_core.testing.store import StateStoreConformance, person_page

T = TypeVar("T")


class TestPostgresStore(StateStoreConformance):
    server: PostgresServer

    @pytest.fixture(autouse=True)
    def _server(self, postgres_server: PostgresServer) -> None:
        self.server = postgres_server

    def _url(self, tmp_path: Path) -> str:
        """One database per test folder: reopening the folder reopens the database."""
        name = "c" + hashlib.sha1(str(tmp_path).encode()).hexdigest()[:20]
        if name not in self.server.databases:
            self.server.create_database(name)
        return self.server.url(name)

    def make_store(self, tmp_path: Path) -> StateStore:
        return PostgresStore(self._url(tmp_path))

    def cells(self, tmp_path: Path) -> Iterable[tuple[str, str, str]]:
        return postgres_cells(self._url(tmp_path))


def postgres_cells(url: str) -> Iterator[tuple[str, str, str]]:
    """(table, column, value as text) of every cell of every table of the database."""
    with psycopg.connect(url) as conn:
        tables = [t for (t,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        for table in tables:
            cur = conn.execute(f'SELECT * FROM "{table}"')
            columns = [d.name for d in cur.description or ()]
            for row in cur:
                for column, value in zip(columns, row, strict=True):
                    text = bytes(value).decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                    yield table, column, text


def test_the_plugin_registers_postgresql_urls(postgres_url: str, tmp_path: Path) -> None:
    host = PluginHost()
    host.load()
    for scheme in ("postgresql", "postgres"):
        assert isinstance(host.stores.backend(f"{scheme}://x/y"), PostgresBackend)
    store = open_store(postgres_url, tmp_path, host.stores)
    try:
        assert store.migrate() >= 1
        store.commit_page(person_page("alice", "c1"))
        assert store.checkpoint("demo") == "c1"
    finally:
        store.close()


def test_one_writer_at_a_time_and_a_dead_writers_claim_ends_with_its_connection(postgres_url: str) -> None:
    first, second = PostgresStore(postgres_url), PostgresStore(postgres_url)
    first.migrate()
    first.claim_writer()
    first.claim_writer()  # again, by the same store: still its own
    with pytest.raises(StoreInUse, match="in use by another scrm process: scrm pid"):
        second.claim_writer()
    first.close()
    second.claim_writer()
    second.close()


def test_errors_name_the_database_never_the_password(postgres_server: PostgresServer) -> None:
    url = f"postgresql://scrm:hunter2secret@127.0.0.1:{postgres_server.port}/no_such_database"
    assert safe_url(url) == f"postgresql://scrm:***@127.0.0.1:{postgres_server.port}/no_such_database"
    with pytest.raises(StorageError) as caught:
        PostgresStore(url)
    assert "no_such_database" in str(caught.value) and "hunter2secret" not in str(caught.value)


def test_a_store_written_by_a_newer_version_is_refused(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    version = store.migrate()
    store._conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (%s, now())", (version + 1,))
    with pytest.raises(FatalError, match="newer"):
        store.migrate()
    store.close()


def test_config_check_flags_a_url_without_database_and_a_password_in_it(tmp_path: Path) -> None:
    backend = PostgresBackend()
    assert backend.local_problems("postgresql://h", tmp_path)[0]
    problems, warnings = backend.local_problems("postgresql://u:pw@h/db", tmp_path)
    assert problems == [] and "PGPASSWORD" in warnings[0]


class TestPostgresFleet(FleetStoreConformance):
    server: PostgresServer

    @pytest.fixture(autouse=True)
    def _server(self, postgres_server: PostgresServer) -> None:
        self.server = postgres_server

    def make_store(self, tmp_path: Path) -> StateStore:
        return PostgresStore(TestPostgresStore._url(self, tmp_path))  # type: ignore[arg-type]


def test_a_single_writer_and_fleet_workers_exclude_each_other(postgres_url: str) -> None:
    worker, single = PostgresStore(postgres_url), PostgresStore(postgres_url)
    worker.migrate()
    worker.join_fleet(WorkerInfo("w1", "host", 1))
    with pytest.raises(StoreInUse):
        single.claim_writer()  # `scrm run --once` while a fleet runs
    worker.close()  # the worker's connection ends (a stop or a kill): the shared lock goes with it
    single.claim_writer()
    other = PostgresStore(postgres_url)
    with pytest.raises(StoreInUse, match="single writer"):
        other.join_fleet(WorkerInfo("w2", "host", 2))
    other.close()
    single.close()


def _at_once(calls: list[Callable[[], T]]) -> list[T]:
    """Run each call in its own thread, released together; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[T | None] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results  # type: ignore[return-value]


def test_receivers_on_several_machines_keep_one_copy_of_a_delivery(postgres_url: str) -> None:
    replicas = [PostgresStore(postgres_url) for _ in range(4)]
    replicas[0].migrate()
    ids = _at_once([lambda s=s: s.store_webhook("hooks", "same-digest", {}, b"{}") for s in replicas])
    assert len([i for i in ids if i is not None]) == 1  # the others see it is already kept
    assert len(replicas[1].stored_webhooks("hooks", 0, 10)) == 1
    for s in replicas:
        s.close()


def test_workers_claiming_one_reply_at_once_send_it_once(postgres_url: str) -> None:
    workers = [PostgresStore(postgres_url) for _ in range(4)]
    workers[0].migrate()
    (reply,) = workers[0].enqueue_replies([NewReply("k1", "cli", "demo:c1", "m1", "thanks")])
    claims = _at_once([lambda s=s: s.claim_reply(reply.id, 60) for s in workers])
    assert len([c for c in claims if c is not None]) == 1
    for s in workers:
        s.close()


def test_the_migration_to_creations_in_the_index_keeps_every_seen_key(postgres_url: str) -> None:
    """A state written before ``messages.created``: its creations' seen keys move into the
    index rows they belong to; the others (no index row, other kinds) stay in seen_events."""
    from scrm_postgres.schema import MIGRATIONS

    before = next(i for i, m in enumerate(MIGRATIONS) if "ADD COLUMN created" in m)
    seen = ["c:demo:a", "c:demo:failed", "e:demo:a:v2", "d:demo:b", "p:demo:alice:1"]
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # the older schema, rows as it wrote them
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ)")
        for version, script in enumerate(MIGRATIONS[:before], 1):
            conn.execute(script)  # type: ignore[arg-type]
            conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (%s, now())", (version,))
        conn.execute("INSERT INTO seen_events (key) SELECT unnest(%s::text[])", (seen,))
        conn.execute(
            "INSERT INTO messages (key, conversation_key, author_key, deleted, in_crm, version) VALUES"
            " ('demo:a', 'demo:a', 'demo:alice', false, true, 'v2'),"
            " ('demo:b', 'demo:a', 'demo:bob', true, true, NULL)"  # its deletion came, its creation never did
        )
    store = PostgresStore(postgres_url)
    try:
        assert store.migrate() == len(MIGRATIONS)
        creations = ["c:demo:a", "c:demo:failed", "c:demo:b", "c:demo:new"]
        assert store.unseen([*creations, *seen[2:], "e:demo:a:v3"]) == {"c:demo:b", "c:demo:new", "e:demo:a:v3"}
        assert store.counts()["seen_events"] == len(seen)
        assert store.messages(["demo:a", "demo:b"])["demo:b"].deleted
    finally:
        store.close()
    with psycopg.connect(postgres_url) as conn:
        left = {k for (k,) in conn.execute("SELECT key FROM seen_events")}
    assert left == {"c:demo:failed", "e:demo:a:v2", "d:demo:b", "p:demo:alice:1"}, "moved, not copied"
