"""Two real ``scrm run`` workers on one PostgreSQL: the sources are spread over both; one is
killed with SIGKILL; the other takes its sources and the outbox over within the lease time,
and every message is in the CRM exactly once (the embedded CRM, read directly)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest
from scrm_postgres import PostgresStore
from scrm_replay.demo import generate_demo

from scrm_core.testing.fleet import eventually
from tests.e2e import LOG_ALL_RULES, crm_state, expected_messages, expected_profiles

pytestmark = pytest.mark.slow

T = TypeVar("T")
LEASE = 3.0  # [state] lease_seconds of the test fleet
SINKS = {f"outbox#{p}" for p in range(PostgresStore.outbox_partitions)}  # the outbox's partition leases


def until(check: Callable[[], T | None], what: str, within: float = 120.0) -> T:
    return eventually(check, what, within, every=0.1)  # each check reads the state


def _split(full: Path, folder: Path) -> tuple[list[Path], list[list[bytes]]]:
    """Each recording's first half written where the sources read; its second half returned."""
    files, rest = [], []
    for path in sorted(full.glob("*.ndjson")):
        lines = path.read_bytes().splitlines(keepends=True)
        half = len(lines) // 2
        target = folder / path.name
        target.write_bytes(b"".join(lines[:half]))
        files.append(target)
        rest.append(lines[half:])
    return files, rest


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def _leases(url: str) -> dict[str, tuple[str | None, float]]:
    """name -> (holder, seconds since it was taken), by the database's clock."""
    with psycopg.connect(url) as conn:
        try:
            rows = conn.execute(
                "SELECT name, holder, EXTRACT(EPOCH FROM now() - acquired_at) FROM leases WHERE expires_at > now()"
            ).fetchall()
        except psycopg.errors.UndefinedTable:  # the workers have not migrated the schema yet
            return {}
    return {name: (holder, float(age or 0)) for name, holder, age in rows}


def test_a_killed_workers_sources_are_taken_over_and_nothing_is_lost_or_doubled(
    postgres_url: str, tmp_path: Path, workers: list[subprocess.Popen[bytes]]
) -> None:
    generate_demo(tmp_path / "full", messages=900, seed=9)
    (tmp_path / "data").mkdir()
    files, second_halves = _split(tmp_path / "full", tmp_path / "data")
    sources = "".join(
        f'\n[[sources]]\nname = "src-{i}"\nadapter = "replay"\nsettings = {{ paths = ["{p}"], poll_seconds = 0.2 }}\n'
        for i, p in enumerate(files)
    )
    config = tmp_path / "scrm.toml"
    config.write_text(
        f'[state]\nurl = "{postgres_url}"\nlease_seconds = {LEASE}\n\n'
        f'[crm]\nadapter = "localcrm"\nsettings = {{ path = "crm.db" }}\n{sources}\n'
        "[engine]\nbatch_window_ms = 50\nretry_max_seconds = 0.5\n" + LOG_ALL_RULES
    )
    env = {**os.environ, "SCRM_RAISE_ERRORS": "1"}
    for _ in range(2):
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "scrm", "run", "-c", str(config)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=open(tmp_path / f"worker-{len(workers)}.log", "wb"),  # noqa: SIM115
            )
        )
    readers = {f"src-{i}" for i in range(len(files))}

    def spread() -> dict[str, tuple[str | None, float]] | None:
        held = _leases(postgres_url)
        holders = {held[n][0] for n in readers if n in held}
        sinks = {held[n][0] for n in SINKS if n in held}
        spread_out = len(holders) == 2 and len(sinks) == 2
        return held if readers | SINKS <= set(held) and spread_out else None

    held = until(spread, "both workers hold sources and outbox partitions")
    first_half = expected_messages(files)
    until(lambda: set(crm_state(tmp_path / "crm.db").messages) == set(first_half), "the first halves synced")

    # Kill a worker (it reads a source and drains outbox partitions: one per worker at least).
    victim_id = held["outbox#0"][0]
    assert victim_id is not None
    victim_pid = int(victim_id.split(":")[1])
    victim = next(p for p in workers if p.pid == victim_pid)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    for path, rest in zip(files, second_halves, strict=True):
        with path.open("ab") as out:
            out.write(b"".join(rest))

    def taken_over() -> dict[str, tuple[str | None, float]] | None:
        now_held = _leases(postgres_url)
        names = readers | SINKS
        return now_held if names <= set(now_held) and all(now_held[n][0] != victim_id for n in names) else None

    after = until(taken_over, "the survivor holds every source and the outbox")
    survivor = {after[n][0] for n in readers | SINKS}
    assert len(survivor) == 1 and victim_id not in survivor

    full = sorted((tmp_path / "full").glob("*.ndjson"))
    expected = expected_messages(full)
    until(lambda: crm_state(tmp_path / "crm.db").messages == expected, "every message synced with its final text")
    store = PostgresStore(postgres_url)
    until(lambda: store.outbox_depth() == 0, "the outbox drained")
    crm = crm_state(tmp_path / "crm.db")
    assert crm.message_rows == len(crm.messages) == len(expected)  # no message twice
    assert crm.profiles == expected_profiles(full) and crm.profile_rows == len(crm.profiles)
    assert store.dead_letter_count() == 0
    assert store.counts()["messages"] == len(expected)
    # The takeover happened within the lease time (and a heartbeat), by the database's clock.
    with psycopg.connect(postgres_url) as conn:
        (gap,) = conn.execute(
            "SELECT MAX(EXTRACT(EPOCH FROM l.acquired_at - w.heartbeat_at)) FROM leases l, workers w"
            " WHERE w.id = %s AND l.name = ANY(%s)",
            (victim_id, sorted(readers | SINKS)),
        ).fetchone()
    store.close()
    assert gap is not None and float(gap) <= LEASE + LEASE / 3 + 1.0, gap
    status = subprocess.run(
        [sys.executable, "-m", "scrm", "status", "-c", str(config), "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    fleet = json.loads(status.stdout)["fleet"]
    (alive,) = [w["id"] for w in fleet["workers"] if w["alive"]]
    assert alive in survivor and [w["alive"] for w in fleet["workers"] if w["id"] == victim_id] == [False]
    assert {x["name"] for x in fleet["leases"] if x["worker"] == alive} >= readers | SINKS
    assert all(x["worker"] != victim_id for x in fleet["leases"])
    assert fleet["outbox_depth"] == 0 and sum(s["events"] for s in fleet["sources"] if s["name"] in readers) > 0
    survivor_process = next(p for p in workers if p.pid != victim_pid)
    survivor_process.send_signal(signal.SIGTERM)
    assert survivor_process.wait(timeout=60) == 0


def _all_held(url: str, names: set[str], not_by: str | None = None) -> dict[str, tuple[str | None, float]] | None:
    """The live leases, once every one of ``names`` is held (and none by ``not_by``)."""
    held = _leases(url)
    if names <= set(held) and all(held[n][0] != not_by for n in names):
        return held
    return None


def test_chaos_three_workers_killed_and_restarted_in_turn_sync_everything_once(
    postgres_url: str, tmp_path: Path, workers: list[subprocess.Popen[bytes]]
) -> None:
    """Three workers; six times, the one draining outbox partition 0 (or reading a source) is
    SIGKILLed while data arrives, and started again once the others took its work over."""
    generate_demo(tmp_path / "full", messages=1200, seed=21)
    (tmp_path / "data").mkdir()
    full = sorted((tmp_path / "full").glob("*.ndjson"))
    chunks = [path.read_bytes().splitlines(keepends=True) for path in full]
    files = [tmp_path / "data" / path.name for path in full]
    for path in files:
        path.write_bytes(b"")
    sources = "".join(
        f'\n[[sources]]\nname = "src-{i}"\nadapter = "replay"\nsettings = {{ paths = ["{p}"], poll_seconds = 0.2 }}\n'
        for i, p in enumerate(files)
    )
    config = tmp_path / "scrm.toml"
    config.write_text(
        f'[state]\nurl = "{postgres_url}"\nlease_seconds = {LEASE}\n\n'
        f'[crm]\nadapter = "localcrm"\nsettings = {{ path = "crm.db" }}\n{sources}\n'
        "[engine]\nbatch_window_ms = 50\nretry_max_seconds = 0.5\n" + LOG_ALL_RULES
    )

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "scrm", "run", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / f"worker-{len(workers)}.log", "wb"),  # noqa: SIM115
        )
        workers.append(process)
        return process

    running = [start() for _ in range(3)]
    names = {f"src-{i}" for i in range(len(files))} | SINKS
    kills = 6
    for round_ in range(kills):
        for path, lines in zip(files, chunks, strict=True):  # the next slice of every stream arrives
            part = len(lines) * (round_ + 1) // kills
            done = len(lines) * round_ // kills
            with path.open("ab") as out:
                out.write(b"".join(lines[done:part]))
        held = until(lambda: _all_held(postgres_url, names), "every lease held")
        victim_id = held["outbox#0"][0] if round_ % 2 == 0 else held[f"src-{round_ % len(files)}"][0]
        assert victim_id is not None
        victim = next(p for p in running if p.pid == int(victim_id.split(":")[1]))
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        running.remove(victim)
        until(lambda v=victim_id: _all_held(postgres_url, names, not_by=v), "the dead worker's leases taken over")
        running.append(start())

    expected = expected_messages(full)
    until(lambda: crm_state(tmp_path / "crm.db").messages == expected, "every message synced with its final text")
    store = PostgresStore(postgres_url)
    until(lambda: store.outbox_depth() == 0, "the outbox drained")
    crm = crm_state(tmp_path / "crm.db")
    assert crm.message_rows == len(crm.messages) == len(expected)
    assert crm.profiles == expected_profiles(full) and crm.profile_rows == len(crm.profiles)
    assert store.dead_letter_count() == 0 and store.counts()["messages"] == len(expected)
    pids = {p.pid for p in running}
    until(lambda: {int(w.split(":")[1]) for w in store.live_workers(LEASE)} >= pids, "the restarted worker joined")
    store.close()
    for process in running:  # a clean stop of each (their signal handlers are in place once they joined)
        process.send_signal(signal.SIGTERM)
    assert [p.wait(timeout=60) for p in running] == [0, 0, 0]
