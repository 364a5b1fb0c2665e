"""A full disk, a read-only state or a missing permission: a message naming the file and what
to do, never a traceback, and nothing already stored lost."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from scrm.config import load_config
from scrm.engine import Engine
from scrm.plugins import PluginHost
from scrm.receiver import ReceiverCounts, build_receiver
from scrm.store import AsyncStore, PageCommit, SqliteStore, StorageError, open_store

from scrm_core import AdapterContext
from scrm_core.testing.fakes import FakeServer
from tests import testnet
from tests.e2e import write_config
from tests.serving import SCRM

LINE = (
    '{"kind": "message.created", "message": {"network": "demo", "id": "%d", "text": "%s", '
    '"created_at": "2026-01-01T00:00:00Z", "author": {"network": "demo", "account_id": "a%d"}}}\n'
)


def _fill(store: SqliteStore) -> None:
    """Make the store's file unable to grow: what a full disk looks like to SQLite."""
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages}")


def test_a_full_disk_names_the_file_and_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    store = SqliteStore(db)
    store.migrate()
    store.commit_page(PageCommit("src", "1", event_keys=["kept"]))
    _fill(store)
    with pytest.raises(StorageError) as caught:
        store.commit_page(PageCommit("src", "2", event_keys=[f"k{i}" * 50 for i in range(5000)]))
    message = caught.value.operator_message
    assert str(db) in message and "full" in message and "Free some space" in message, message
    assert "rolled back" in message and caught.value.path == str(db)
    store.close()
    again = SqliteStore(db)
    assert again.checkpoint("src") == "1" and again.unseen(["kept"]) == set()  # nothing lost
    again.close()


def test_a_full_disk_stops_the_run_with_that_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "events.ndjson"
    data.write_text("".join(LINE % (i, "x" * 2000, i) for i in range(300)))
    host = PluginHost(env={}).load()
    config = load_config(write_config(tmp_path, [data]), env={}, networks=host.networks, crms=host.crms)

    def full_store(url: str, base_dir: Path, backends: object = None) -> SqliteStore:
        store = open_store(url, base_dir)
        assert isinstance(store, SqliteStore)
        store.migrate()
        _fill(store)
        return store

    monkeypatch.setattr("scrm.engine.runner.open_store", full_store)
    with pytest.raises(StorageError, match="is full"):
        asyncio.run(Engine(config, host).run(follow=False, handle_signals=False))


def test_the_receiver_answers_503_when_the_store_cannot_write(tmp_path: Path) -> None:
    holder: list[SqliteStore] = []

    def factory() -> SqliteStore:
        store = SqliteStore(tmp_path / "state.db")
        store.migrate()
        _fill(store)
        holder.append(store)
        return store

    store = AsyncStore(factory)
    adapter = testnet.LoopbackNetAdapter(testnet.Settings(network_id="full"), AdapterContext(name="loop"))
    counts = ReceiverCounts()
    app = build_receiver(store, {"loop": adapter}, max_body_bytes=2_000_000, counts=counts)
    with FakeServer(app) as server:
        headers, body = testnet.signed({"id": 1, "text": "x" * 1_000_000})
        answer = httpx.post(f"{server.url}/webhooks/loop", content=body, headers=headers, timeout=30)
    assert answer.status_code == 503 and answer.json() == {"error": "store_unavailable"}
    assert answer.headers["retry-after"] == "30" and counts.errors == 1


# ---------------------------------------------------------------- permissions, as an ordinary user


def _as_nobody() -> tuple[Callable[[], None] | None, int]:
    """Run a subprocess as an unprivileged user (root writes through any permission bits)."""
    if os.getuid() != 0:
        return None, os.getuid()
    nobody = pwd.getpwnam("nobody")

    def drop() -> None:
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)

    return drop, nobody.pw_uid


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder an unprivileged user can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="scrm-perm-"))
    path.chmod(0o777)
    yield path
    for p in path.rglob("*"):
        if p.is_dir():
            p.chmod(0o777)
    shutil.rmtree(path, ignore_errors=True)


def _scrm_as(user: Callable[[], None] | None, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(folder)}
    return subprocess.run(
        [SCRM, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=300, preexec_fn=user
    )


@pytest.mark.slow
def test_a_read_only_state_names_the_file_and_the_fix(folder: Path) -> None:
    user, uid = _as_nobody()
    data = folder / "events.ndjson"
    data.write_text("".join(LINE % (i, "hello", i) for i in range(3)))
    config = write_config(folder, [data])
    (folder / "state").mkdir()
    config.write_text(config.read_text().replace("sqlite:///state.db", "sqlite:///state/state.db"))
    first = _scrm_as(None, folder, "run", "--once", "-c", str(config))  # made by root: nobody's is read-only
    assert first.returncode == 0, first.stderr
    for path in folder.rglob("*"):
        if path.is_file() and path.parent.name != "state":
            path.chmod(0o666)
    db = folder / "state" / "state.db"
    with sqlite3.connect(db) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    for leftover in ("state.db-wal", "state.db-shm"):
        (folder / "state" / leftover).unlink(missing_ok=True)
    (folder / "state" / "state.db.lock").chmod(0o666)
    db.chmod(0o444)  # the file read-only, its folder writable

    run = _scrm_as(user, folder, "run", "--once", "-c", str(config))
    err = " ".join(run.stderr.split())
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"the state store {db} is read-only for user id {uid}" in err, err
    assert "Fix the permissions of the file and of its folder" in err

    (folder / "state").chmod(0o555)  # now the folder too: the lock file can still be written
    check = _scrm_as(user, folder, "config", "check", "-c", str(config))
    err = " ".join(check.stderr.split())
    assert check.returncode == 2, check.stdout + check.stderr
    assert f"state.url: the state store {db}: cannot write in its folder {db.parent}" in err, err
    assert f"state.url: the state store {db} is not writable" in err, err

    (folder / "state").chmod(0o777)
    db.chmod(0o666)
    (folder / "state" / "state.db.lock").chmod(0o444)  # only the writer lock is out of reach
    locked = _scrm_as(user, folder, "run", "--once", "-c", str(config))
    err = " ".join(locked.stderr.split())
    assert locked.returncode == 1 and "Traceback" not in locked.stderr
    assert f"state store {db}.lock: Permission denied" in err, err


def test_storage_errors_keep_other_errors_as_they_are() -> None:
    from scrm.sqlite.errors import storage_error

    assert storage_error("x.db", sqlite3.IntegrityError("UNIQUE constraint failed")) is None
    assert storage_error("x.db", ValueError("no")) is None
    found: Any = storage_error("x.db", sqlite3.OperationalError("database or disk is full"))
    assert isinstance(found, StorageError) and "x.db" in found.operator_message
