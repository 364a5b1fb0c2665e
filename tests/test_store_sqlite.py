"""The SQLite state store: the conformance suite every back end passes, and what is SQLite's own
(schema versions, WAL, damaged rows, URLs, the single connection's thread)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import scrm.sqlite.db as sqlite_db
import scrm.sqlite.outbox as sqlite_outbox
from scrm.sqlite import MIGRATIONS
from scrm.store import PageCommit, Settlement, SqliteStore, StateStore, StoreBackend, StoreBackends, open_store

from scrm_core.errors import FatalError
from scrm_core.models import CrmObject, CrmOperation
from scrm_core.testing.store import StateStoreConformance, person_page


class TestSqliteStore(StateStoreConformance):
    def make_store(self, tmp_path: Path) -> StateStore:
        return SqliteStore(tmp_path / "state" / "scrm.db")

    def cells(self, tmp_path: Path) -> Iterable[tuple[str, str, str]]:
        return sqlite_cells(tmp_path / "state" / "scrm.db")


def sqlite_cells(db: Path) -> Iterator[tuple[str, str, str]]:
    """(table, column, value as text) of every cell of every table of an SQLite file."""
    con = sqlite3.connect(db)
    try:
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = [c[1] for c in con.execute(f"PRAGMA table_info({table})")]
            for row in con.execute(f"SELECT * FROM {table}"):
                for column, value in zip(columns, row, strict=True):
                    text = bytes(value).decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                    yield table, column, text
    finally:
        con.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "scrm.db"


@pytest.fixture
def store(db: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(db)
    s.migrate()
    yield s
    s.close()


# -- schema


def test_migrate_is_idempotent_and_reports_the_version(db: Path) -> None:
    s = SqliteStore(db)
    assert s.migrate() == len(MIGRATIONS)
    assert s.migrate() == len(MIGRATIONS)
    s.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [
            (v,) for v in range(1, len(MIGRATIONS) + 1)
        ]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_newer_schema_is_refused(db: Path) -> None:
    SqliteStore(db).migrate()
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (len(MIGRATIONS) + 1,))
    conn.close()
    with pytest.raises(FatalError, match="Upgrade scrm"):
        SqliteStore(db).migrate()


def test_the_migration_to_creations_in_the_index_keeps_every_seen_key(db: Path) -> None:
    """A state written before ``messages.created``: its creations' seen keys move into the
    index rows they belong to; the others (no index row, other kinds) stay in seen_events."""
    before = next(i for i, m in enumerate(MIGRATIONS) if "ADD COLUMN created" in m)
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as conn:  # the older schema, its rows as its commit_page wrote them
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT)")
        for version, script in enumerate(MIGRATIONS[:before], 1):
            conn.executescript(script)
            conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, '')", (version,))
        seen = ["c:demo:a", "c:demo:nul\x00key", "c:demo:failed", "e:demo:a:v2", "d:demo:b", "p:demo:alice:1"]
        conn.executemany("INSERT INTO seen_events (key) VALUES (?)", [(k,) for k in seen])
        conn.executemany(
            "INSERT INTO messages (key, conversation_key, author_key, deleted, in_crm, version)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                ("demo:a", "demo:a", "demo:alice", 0, 1, "v2"),
                ("demo:nul\x00key", "demo:a", "demo:alice", 0, 0, None),
                ("demo:b", "demo:a", "demo:bob", 1, 1, None),  # its deletion came, its creation never did
            ],
        )
    conn.close()
    store = SqliteStore(db)
    try:
        assert store.migrate() == len(MIGRATIONS)
        creations = ["c:demo:a", "c:demo:nul\x00key", "c:demo:failed", "c:demo:b", "c:demo:new"]
        assert store.unseen([*creations, *seen[3:], "e:demo:a:v3"]) == {"c:demo:b", "c:demo:new", "e:demo:a:v3"}
        assert store.counts()["seen_events"] == len(seen)
        assert store.messages(["demo:a", "demo:b"])["demo:b"].deleted
        assert store.messages(["demo:nul\x00key"])["demo:nul\x00key"].in_crm is False
    finally:
        store.close()
    with sqlite3.connect(db) as conn:
        left = {k for (k,) in conn.execute("SELECT key FROM seen_events")}
        assert left == {"c:demo:failed", "e:demo:a:v2", "d:demo:b", "p:demo:alice:1"}, "moved, not copied"
    conn.close()


def test_settled_rows_leave_the_outbox_with_the_settled_prefix(
    store: SqliteStore, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def rows() -> tuple[int, int]:
        with sqlite3.connect(db) as conn:
            counts = conn.execute("SELECT (SELECT COUNT(*) FROM outbox), (SELECT COUNT(*) FROM outbox_done)").fetchone()
        conn.close()
        return counts

    ops = [CrmOperation(object=CrmObject.message, external_key=f"scrm:demo:{i}") for i in range(10)]
    seqs = store.commit_page(PageCommit("demo", "1", ops=ops))
    store.outbox_settle(Settlement(done=seqs[:3] + seqs[4:8]))  # seqs[3] waits: the rest stays noted
    assert rows() == (7, 4)
    assert [i.seq for i in store.outbox_take(100)] == [seqs[3], *seqs[8:]]
    assert store.outbox_depth() == 3 and store.counts()["outbox"] == 3
    store.outbox_settle(Settlement(done=[seqs[3], seqs[9]]))
    assert rows() == (2, 1)  # seqs[8] waits, seqs[9] settled
    assert [i.seq for i in store.outbox_take(100, after_seq=seqs[3])] == [seqs[8]]
    store.outbox_settle(Settlement(done=[seqs[8]]))
    assert rows() == (0, 0) and store.outbox_depth() == 0

    # Behind a row that waits long, settled rows go one by one past the limit.
    monkeypatch.setattr(sqlite_outbox, "DONE_LIMIT", 2)
    seqs = store.commit_page(PageCommit("demo", "2", ops=ops))
    store.outbox_settle(Settlement(done=seqs[1:3]))
    assert rows() == (10, 2)
    store.outbox_settle(Settlement(done=seqs[3:5]))
    assert rows() == (6, 0)
    assert [i.seq for i in store.outbox_take(100)] == [seqs[0], *seqs[5:]]


def test_an_erase_leaves_no_trace_of_the_person_in_the_file(store: SqliteStore, db: Path) -> None:
    """Deletes on the hot path zero only what they write anyway (secure_delete FAST); an
    erase zeroes everything it removes, freed pages included."""
    page = person_page("alice", "1")
    page.profiles[0].profile.display_name = "Zebediah Quartermaine"
    store.commit_page(page)
    store.outbox_settle(Settlement(done=[i.seq for i in store.outbox_take(10)]))
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert b"Zebediah Quartermaine" in db.read_bytes()
    store.erase_person("demo:alice")
    store._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert b"Zebediah Quartermaine" not in db.read_bytes()
    assert store._conn.execute("PRAGMA secure_delete").fetchone() == (2,), "back to FAST after the erase"


def test_memory_store_works() -> None:
    s = SqliteStore(":memory:")
    s.migrate()
    s.commit_page(person_page("a", "1"))
    assert s.counts()["messages"] == 1


def test_keys_sqlite_cannot_encode_fail_as_before(store: SqliteStore) -> None:
    with pytest.raises(UnicodeEncodeError):
        store.unseen(["broken \ud800"])
    with pytest.raises(UnicodeEncodeError):
        store.commit_page(PageCommit("demo", "1", event_keys=["broken \ud800"]))
    assert store.checkpoint("demo") is None


def test_failure_at_the_checkpoint_rolls_back_the_page(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_db, "UPSERT_CHECKPOINT", "INSERT INTO no_such_table VALUES (?, ?, ?, ?)")
    with pytest.raises(sqlite3.OperationalError):
        store.commit_page(person_page("alice", "cur-1"))
    assert set(store.counts().values()) == {0}
    assert store.audit_log() == []
    monkeypatch.undo()
    store.commit_page(person_page("alice", "cur-1"))  # the connection is still usable
    assert store.checkpoint("demo") == "cur-1"


def test_an_unserialisable_op_rolls_back_from_sqlite_too(store: SqliteStore, db: Path) -> None:
    bad = person_page("bob", "cur-2")
    bad.ops = [*bad.ops, CrmOperation(object=CrmObject.message, external_key="scrm:x", fields={"x": object()})]
    with pytest.raises(TypeError):
        store.commit_page(bad)
    with sqlite3.connect(db) as conn:  # seen from another connection: nothing of the page
        assert conn.execute("SELECT COUNT(*) FROM seen_events").fetchone() == (0,)
    conn.close()


def test_corrupt_json_names_table_and_key(store: SqliteStore, db: Path) -> None:
    store.commit_page(person_page("alice", "1"))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE profiles SET data = '{not json' WHERE key = 'demo:alice'")
        conn.execute("UPDATE outbox SET refs = '[' WHERE seq = (SELECT MIN(seq) FROM outbox)")
    conn.close()
    with pytest.raises(FatalError, match="'demo:alice' of table 'profiles'"):
        store.profiles(["demo:alice"])
    with pytest.raises(FatalError, match="table 'outbox'"):
        store.outbox_take(10)


def test_erase_removes_identity_links_written_outside_the_interface(store: SqliteStore, db: Path) -> None:
    store.commit_page(person_page("alice", "1"))
    store.commit_page(person_page("bob", "2"))
    with sqlite3.connect(db) as conn:  # rows an older scrm wrote, before links had a status
        conn.executemany(
            "INSERT INTO identity_links (profile_key, person_key, evidence, created_at) VALUES (?, ?, 'email', '')",
            [("demo:alice", "demo:alice"), ("demo:bob", "demo:bob")],
        )
    conn.close()
    store.erase_person("demo:alice")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT profile_key FROM identity_links").fetchall() == [("demo:bob",)]
    conn.close()


# -- open_store and the back-end registry


def test_open_store_urls(tmp_path: Path) -> None:
    rel = open_store("sqlite:///data/rel.db", tmp_path)
    absolute = open_store(f"sqlite:///{tmp_path / 'abs.db'}", Path("/nonexistent"))
    memory = open_store("sqlite:///:memory:", tmp_path)
    for s in (rel, absolute, memory):
        assert isinstance(s, SqliteStore)
        s.migrate()
        s.close()
    assert (tmp_path / "data" / "rel.db").exists()
    assert (tmp_path / "abs.db").exists()


@pytest.mark.parametrize("url", ["postgresql://scrm:s3cret@db/scrm", "mysql://x", "scrm.db", "sqlite://host/x.db"])
def test_open_store_rejects_other_urls(url: str, tmp_path: Path) -> None:
    with pytest.raises(FatalError) as err:
        open_store(url, tmp_path)
    assert "s3cret" not in str(err.value)
    if url.startswith("postgresql"):
        message = str(err.value)
        assert "'postgresql://'" in message and "installed: sqlite://" in message and "scrm-postgres" in message


class _MemoryOnly(StoreBackend):
    name = "memo"
    schemes = ("memo", "MEMO2")

    def __init__(self) -> None:
        self.opened: list[tuple[str, Path]] = []

    def open(self, url: str, base_dir: Path) -> StateStore:
        self.opened.append((url, base_dir))
        return SqliteStore(":memory:")


def test_a_registered_back_end_opens_its_scheme(tmp_path: Path) -> None:
    backends = StoreBackends()
    memo = _MemoryOnly()
    backends.register(memo)
    store = open_store("MEMO2://anything", tmp_path, backends)
    assert memo.opened == [("MEMO2://anything", tmp_path)] and store.migrate() == len(MIGRATIONS)
    store.close()
    assert backends.schemes == ["memo", "memo2"]
    with pytest.raises(FatalError, match="installed: memo://, memo2://"):
        open_store("sqlite:///x.db", tmp_path, backends)
    with pytest.raises(FatalError, match="cannot make a private copy"):
        memo.snapshot("memo://x", tmp_path, tmp_path)
    assert memo.local_problems("memo://x", tmp_path) == ([], [])


def test_registering_a_taken_scheme_or_something_else_is_refused() -> None:
    backends = StoreBackends()
    backends.register(_MemoryOnly())
    backends.register(_MemoryOnly())  # the same back end again (a second load) is harmless

    class Other(_MemoryOnly):
        pass

    with pytest.raises(ValueError, match="already taken"):
        backends.register(Other())
    with pytest.raises(TypeError, match="not a StoreBackend"):
        backends.register(object())  # type: ignore[arg-type]


def test_the_plugin_host_registers_sqlite_like_any_back_end() -> None:
    from scrm.plugins import PluginHost
    from scrm.store import SqliteBackend

    host = PluginHost(env={}).load(entry_points=False)
    assert isinstance(host.stores.backend("sqlite:///x.db"), SqliteBackend)
    assert host.plugins["scrm.sqlite"].stores == ["sqlite://"]
    without = PluginHost(env={"SCRM_DISABLE_PLUGINS": "scrm.sqlite"}).load(entry_points=False)
    with pytest.raises(FatalError, match="installed: none"):
        without.stores.backend("sqlite:///x.db")


def test_wal_mode_waits_for_a_process_opening_the_new_file_at_once(tmp_path: Path) -> None:
    """Converting a file to WAL needs it to itself: a process that opened the file a moment
    earlier made the other fail its open with "database is locked" (two fleet workers
    starting on one new localcrm file did); it now tries again until the file is free."""
    import sqlite3

    from scrm_core.sqlite import use_wal

    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("CREATE TABLE t (x)")
    other.execute("BEGIN")
    other.execute("SELECT * FROM t").fetchall()  # its shared lock: no conversion meanwhile
    mine = sqlite3.connect(path, isolation_level=None)
    mine.execute("PRAGMA busy_timeout = 50")  # the busy handler's wait, over
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        mine.execute("PRAGMA journal_mode = WAL")  # what the stores did: fail the open
    waits: list[float] = []

    def the_other_finishes(seconds: float) -> None:
        waits.append(seconds)
        if other.in_transaction:
            other.execute("COMMIT")

    use_wal(mine, wait=the_other_finishes)
    assert waits and mine.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    use_wal(other, wait=the_other_finishes)  # converted already: nothing to wait for
    assert len(waits) == 1
    other.close()
    mine.close()
