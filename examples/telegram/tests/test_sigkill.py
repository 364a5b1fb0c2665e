"""The engine reading Telegram, killed with SIGKILL at random points: no update is lost, none doubled.

``getUpdates`` forgets every update below the offset it is called with, and the engine reads
up to ``pages_in_flight`` pages ahead of what it has committed. The adapter acknowledges only
what the engine says is committed (``committed``), so wherever the process dies, the next run
reads again from the last commit. Kill points are chosen by progress (committed events in the
state store), not by time.

The engine is set up so that the reader does run ahead: a sink that waits 200 ms to fill a
batch keeps the outbox above its high-water mark, so ingest pauses while the reader fills
``pages_in_flight``. Checked by hand: the same adapter acknowledging on read
(``destructive_reads = False``) loses 800 of the 2,000 updates in this test.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from scrm_telegram.testing import GROUP, TOKEN, FakeTelegram

from scrm_core import Event, Message, MessageCreated, SocialProfile
from scrm_core.testing import FakeServer

pytestmark = pytest.mark.slow

MESSAGES = 2000
KILLS = 4
TIMEOUT = 120.0  # a safety net for a hung child; the test never waits on time otherwise


def _scenario() -> list[Event]:
    t0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    people = [SocialProfile(network="telegram", account_id=str(2000 + i), handle=f"user{i}") for i in range(20)]
    return [
        MessageCreated(
            message=Message(
                network="telegram",
                id=str(i),
                author=people[i % 20],
                text=f"message {i}",
                created_at=t0 + timedelta(seconds=i),
            )
        )
        for i in range(1, MESSAGES + 1)
    ]


def _committed(state_db: Path) -> int:
    if not state_db.exists():
        return -1
    try:
        with sqlite3.connect(f"file:{state_db}?mode=ro", uri=True, timeout=0.1) as con:
            return int(con.execute("SELECT coalesce(sum(events), 0) FROM checkpoints").fetchone()[0])
    except sqlite3.OperationalError:
        return -1


def _run(config: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "scrm", "run", "--once", "-c", str(config)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_at_random_points_loses_no_update(tmp_path: Path) -> None:
    fake = FakeTelegram(_scenario())
    with FakeServer(fake.app) as server:
        settings = f'{{ base_url = "{server.url}", token = "{TOKEN}", page_size = 100 }}'
        config = tmp_path / "scrm.toml"
        config.write_text(
            '[state]\nurl = "sqlite:///state.db"\n[crm]\nadapter = "localcrm"\nsettings = { path = "crm.db" }\n'
            f'[[sources]]\nname = "tg"\nadapter = "telegram"\nsettings = {settings}\n'
            "[engine]\nbatch_window_ms = 200\noutbox_high_water = 100\nretry_max_seconds = 0.01\npages_in_flight = 4\n"
        )
        state_db = tmp_path / "state.db"
        rng = random.Random(2027)
        killed = 0
        for threshold in sorted(rng.randrange(100, MESSAGES - 300) for _ in range(KILLS)):
            proc = _run(config)
            deadline = time.monotonic() + TIMEOUT
            while proc.poll() is None and _committed(state_db) < threshold:
                assert time.monotonic() < deadline, "the sync did not progress"
                time.sleep(0.002)  # polling interval, not a wait for an outcome
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed += 1
        assert killed >= KILLS // 2, "too few kills landed mid-sync to prove anything"
        final = _run(config)
        assert final.wait(timeout=TIMEOUT) == 0, final.stderr.read().decode() if final.stderr else ""

    with sqlite3.connect(tmp_path / "crm.db") as con:
        rows = con.execute("SELECT external_key, text FROM messages").fetchall()
    expected = {f"scrm:telegram:{GROUP}:{i}": f"message {i}" for i in range(1, MESSAGES + 1)}
    assert len(rows) == MESSAGES and dict(rows) == expected  # every update once
    assert not fake.updates or fake.updates[0]["update_id"] > MESSAGES - 100  # read to the end, confirmed
