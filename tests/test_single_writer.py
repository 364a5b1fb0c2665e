"""One process writes a state store: a second ``scrm run`` is refused at once, naming the first,
and the CRM ends exactly as after one run. ``scrm serve`` (receiver + engine) is one process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from scrm.sqlite.lock import WriterLock, lock_path
from scrm.store import SqliteStore, StoreInUse
from scrm_replay.demo import generate_demo

from tests.e2e import crm_state, expected_messages, write_config
from tests.serving import SCRM, scrm, wait_until


def _owner(db: Path) -> dict[str, object] | None:
    try:
        text = lock_path(db).read_text()
    except FileNotFoundError:
        return None
    return json.loads(text) if text.strip() else None


def test_the_lock_is_shared_within_a_process_and_refused_across_processes(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    first, second = SqliteStore(db), SqliteStore(db)
    first.claim_writer()
    second.claim_writer()  # the same process: serve's receiver and engine, or two engines in a test
    owner = _owner(db)
    assert owner is not None and owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
    code = (
        "import sys\n"
        "from scrm.store import SqliteStore, StoreInUse\n"
        f"store = SqliteStore({str(db)!r})\n"
        "try:\n    store.claim_writer()\nexcept StoreInUse as exc:\n    print(exc.operator_message); sys.exit(3)\n"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert other.returncode == 3, other.stderr
    assert f"pid {os.getpid()} on host {socket.gethostname()}" in other.stdout and "since" in other.stdout
    first.close()
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60).returncode == 3  # still held
    second.close()
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60).returncode == 0


def test_a_killed_writer_leaves_no_stale_lock(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from scrm.store import SqliteStore\nSqliteStore({str(db)!r}).claim_writer()\n"
            "print('held', flush=True)\nimport time\ntime.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    with pytest.raises(StoreInUse, match=f"pid {holder.pid} on host"):
        WriterLock(db).acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    lock = WriterLock(db)
    lock.acquire()  # the operating system dropped the dead process's lock
    lock.release()


@pytest.mark.slow
def test_a_second_run_on_the_same_state_is_refused_and_the_crm_ends_as_after_one_run(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate_demo(data, messages=3000, seed=41)
    files = sorted(data.glob("*.ndjson"))
    config = write_config(tmp_path, files)
    expected = expected_messages(files)
    # The first run follows (it never ends by itself), so the second surely starts while it runs.
    first = subprocess.Popen(
        [SCRM, "run", "-c", str(config)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        owner = wait_until(lambda: _owner(tmp_path / "state.db"), what="the first run to take the state")
        assert owner["pid"] == first.pid
        second = scrm("run", "--once", "-c", str(config), cwd=tmp_path)
        assert first.poll() is None, "the first run ended before the second started: the test proved nothing"
        wait_until(lambda: crm_state(tmp_path / "crm.db").messages == expected, timeout=300, what="the first sync")
    finally:
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err.decode()
    assert second.returncode == 1, second.stdout + second.stderr
    message = " ".join(second.stderr.split())
    assert f"in use by another scrm process: pid {first.pid} on host {socket.gethostname()}" in message
    assert "since" in message and "(scrm run -c" in message
    assert "Traceback" not in second.stderr
    # exactly what one run gives: every message once, with its final text, and no spurious dead letter
    state = crm_state(tmp_path / "crm.db")
    assert state.messages == expected
    assert state.message_rows == len(expected)
    assert _dead_letters(tmp_path / "state.db") == []
    # and a run after it finds nothing left to do
    after = scrm("run", "--once", "-c", str(config), cwd=tmp_path)
    assert after.returncode == 0 and crm_state(tmp_path / "crm.db") == state


@pytest.mark.slow
def test_serve_holds_the_state_so_a_run_beside_it_is_refused(tmp_path: Path) -> None:
    from tests.serving import start_serve

    data = tmp_path / "data.ndjson"
    data.write_text("")
    config = write_config(tmp_path, [data])
    served = start_serve(config)
    try:
        refused = scrm("run", "--once", "-c", str(config), cwd=tmp_path)
        assert refused.returncode == 1 and f"pid {served.proc.pid}" in " ".join(refused.stderr.split())
        erase = scrm("erase", "replay:someone", "--yes", "-c", str(config), cwd=tmp_path)
        assert erase.returncode == 1 and "in use by another scrm process" in " ".join(erase.stderr.split())
    finally:
        assert served.stop() == 0, served.output()
    assert scrm("run", "--once", "-c", str(config), cwd=tmp_path).returncode == 0


def _dead_letters(db: Path) -> list[str]:
    from tests.serving import query

    return [reason for (reason,) in query(db, "SELECT reason FROM dead_letters")]
