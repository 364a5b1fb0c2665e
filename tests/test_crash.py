"""Kill the sync with SIGKILL at random points, restart it, and compare the CRM with the expectation.

This is the proof of the delivery promise: events, CRM operations and the cursor are
committed together, and every CRM write is an upsert by external key, so no kill point
can lose a message or write one twice. Kill points are chosen by progress (a random
number of committed events, read from the state store), not by wall-clock time, so the
test probes the whole sync on a fast machine and a slow one alike.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from scrm_replay.demo import generate_demo

from tests.e2e import crm_state, expected_messages, expected_profiles, write_config

pytestmark = pytest.mark.slow

KILLS = 6
TIMEOUT = 120.0  # a safety net for a hung child; the test never waits on time otherwise


def _committed_events(state_db: Path) -> int:
    if not state_db.exists():
        return -1
    try:
        with sqlite3.connect(f"file:{state_db}?mode=ro", uri=True, timeout=0.1) as con:
            row = con.execute("SELECT coalesce(sum(events), 0) FROM checkpoints").fetchone()
            return int(row[0])
    except sqlite3.OperationalError:
        return -1  # schema not created yet


def _start(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "scrm", "run", "--once", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill_when(proc: subprocess.Popen[bytes], state_db: Path, threshold: int) -> bool:
    """SIGKILL once ``threshold`` events are committed; False if the run ended first."""
    deadline = time.monotonic() + TIMEOUT
    while proc.poll() is None:
        if _committed_events(state_db) >= threshold:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the sync did not progress")
        time.sleep(0.002)  # polling interval, not a wait for an outcome
    return False


def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate_demo(data, messages=12_000, seed=23)
    files = sorted(data.glob("*.ndjson"))
    total_lines = sum(f.read_bytes().count(b"\n") for f in files)
    config = write_config(tmp_path, files)
    state_db = tmp_path / "state.db"
    rng = random.Random(2026)
    thresholds = sorted(rng.randrange(0, total_lines) for _ in range(KILLS))
    killed = 0
    written_at_kills: list[int] = []  # messages the CRM held at each kill: proof of where it landed
    for threshold in thresholds:
        proc = _start(config)
        if _kill_when(proc, state_db, threshold):
            killed += 1
            crm_db = tmp_path / "crm.db"
            written_at_kills.append(crm_state(crm_db).message_rows if crm_db.exists() else 0)
        else:
            assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else ""
    assert killed >= KILLS // 2, "too few kills landed mid-sync to prove anything"
    inside = [n for n in written_at_kills if 0 < n < 12_000]
    assert len(inside) >= KILLS // 2, f"too few kills landed inside the CRM write phase: {written_at_kills}"
    final = _start(config)
    assert final.wait(timeout=TIMEOUT) == 0, final.stderr.read().decode() if final.stderr else ""

    state = crm_state(tmp_path / "crm.db")
    expected = expected_messages(files)
    assert state.message_rows == len(expected)
    assert state.messages == expected
    assert state.profile_rows == len(expected_profiles(files))
    with sqlite3.connect(state_db) as con:
        assert con.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 0


def test_sigterm_stops_cleanly_and_the_next_run_finishes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate_demo(data, messages=12_000, seed=29)
    files = sorted(data.glob("*.ndjson"))
    config = write_config(tmp_path, files)
    state_db = tmp_path / "state.db"
    proc = _start(config)
    deadline = time.monotonic() + TIMEOUT
    while _committed_events(state_db) < 2_000 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=TIMEOUT) == 0
    with sqlite3.connect(state_db) as con:
        assert con.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0  # flushed before exit
    assert _start(config).wait(timeout=TIMEOUT) == 0
    assert crm_state(tmp_path / "crm.db").messages == expected_messages(files)


def test_continuous_run_follows_new_lines_until_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "live.ndjson"
    data.write_bytes(_posts(0, 50))
    config = write_config(tmp_path, [data], engine="")
    config.write_text(config.read_text().replace("page_size = 200", "page_size = 200, poll_seconds = 0.05"))
    state_db = tmp_path / "state.db"
    proc = subprocess.Popen([sys.executable, "-m", "scrm", "run", "-c", str(config)], stderr=subprocess.PIPE)
    try:
        _wait_until(lambda: _committed_events(state_db) >= 50, proc)
        with data.open("ab") as fh:
            fh.write(_posts(50, 80))  # the network keeps talking
        _wait_until(lambda: _committed_events(state_db) >= 80, proc)
        _wait_until(lambda: len(crm_state(tmp_path / "crm.db").messages) == 80, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=TIMEOUT) == 0, proc.stderr.read().decode() if proc.stderr else ""
    assert set(crm_state(tmp_path / "crm.db").messages) == {f"scrm:t:{n}" for n in range(80)}


def _posts(start: int, end: int) -> bytes:
    lines = []
    for n in range(start, end):
        author = {"network": "t", "account_id": f"a{n % 7}"}
        message = {
            "network": "t",
            "id": str(n),
            "author": author,
            "text": f"post {n}",
            "created_at": "2026-01-01T00:00:00Z",
        }
        lines.append(orjson.dumps({"kind": "message.created", "message": message}) + b"\n")
    return b"".join(lines)


def _wait_until(condition: Callable[[], bool], proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"scrm run exited early: {proc.stderr.read().decode() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for the sync")
        time.sleep(0.01)  # polling interval, not a wait for an outcome
