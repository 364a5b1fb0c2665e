#!/usr/bin/env python3
"""A fleet on one heavy source: 1 worker against 2 workers, with understanding on.

One firehose source (``stream = true``: its pages go through Redis and every worker runs
understanding and ingest on them, committing in order) carrying the seeded demo stream,
sentiment and language detection on, into the HubSpot fake (its documented rolling limit,
100 requests / 10 s, answered with 429 beyond), in one run on the same machine:

* ``sqlite_1_worker``: the embedded default, ``scrm run`` on SQLite (no fleet, no stream);
* ``postgres_1_worker``: one fleet worker on PostgreSQL + Redis;
* ``postgres_2_workers``: two fleet workers on the same PostgreSQL + Redis.

Each scenario starts its workers (real ``scrm run`` processes) on an empty state and a new
fake, waits until they are idle (plugins loaded), then drops the whole recording in at once.
``ingest`` is the time until every page is committed (messages/s: the figure a second worker
should raise); ``synced`` until the outbox is empty (bounded by the CRM's limit, the same for
any number of workers). CPU seconds are per process (each worker, PostgreSQL's server and
its backends, redis-server, this process, which serves the fake) until every page is
committed. ``crm_429`` is the fake's count of refused requests: the shared rate budget keeps
the fleet at the limit. ``ratio_2_to_1`` is the headline (the issue's target: >= 1.7); with ``--repeat N`` the 1- and
2-worker runs alternate N times and ``scenarios`` holds the median round's.

    .venv/bin/python bench/bench_fleet.py                        # 6,000 messages, ~2 min
    .venv/bin/python bench/bench_fleet.py --repeat 3             # 1 and 2 workers 3 times each, alternated
    .venv/bin/python bench/bench_fleet.py --messages 300 --page-size 50   # a quick look (tests/test_benches_run.py)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: What each scenario loads besides the source, the CRM and the fleet's back ends: "full" is
#: what bench_pipeline.py calls understanding on (the intent model, sentiment, language,
#: influence, listening with its five brand queries); "sentiment-language" is the lighter
#: set this bench used before 2026-12-07 21:00.
UNDERSTANDING = {
    "full": ["intent", "sentiment", "language", "influence", "listening"],
    "sentiment-language": ["sentiment", "language"],
}
SOURCE = "firehose"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int, children: bool = False) -> float:
    """CPU seconds of a process (and, with ``children``, of the children it reaped and those still running)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except FileNotFoundError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            ticks += round(cpu_of(int(child)) * TICK)
    return ticks / TICK


def until(check: Callable[[], Any], what: str, within: float = 900.0) -> Any:
    deadline = time.monotonic() + within
    while not (found := check()):
        if time.monotonic() > deadline:
            raise SystemExit(f"bench_fleet: not within {within:.0f} s: {what}")
        time.sleep(0.05)  # polling interval
    return found


class Scenario:
    def __init__(
        self, folder: Path, lines: bytes, state_url: str, redis_url: str | None, page_size: int, understanding: str
    ) -> None:
        from bench_pipeline import LISTENING_QUERIES
        from scrm_hubspot.testing import FakeHubSpot

        from scrm_core.testing.fakes import FakeServer

        self.folder, self.lines, self.url, self.understanding = folder, lines, state_url, understanding
        folder.mkdir()
        (folder / "data").mkdir()
        (folder / "data" / "0-empty.ndjson").write_bytes(b"")
        self.fake = FakeHubSpot(with_properties=True)
        self.server = FakeServer(self.fake.app)
        fleet = ""
        if redis_url:
            fleet = f'lease_seconds = 10\ncoordination_url = "{redis_url}"\n'
        (folder / "scrm.toml").write_text(
            f'[state]\nurl = "{state_url}"\n{fleet}\n'
            f'[crm]\nadapter = "hubspot"\nsettings = {{ base_url = "{self.server.url}", '
            f'access_token = "{FakeHubSpot.TOKEN}" }}\n\n'
            f'[[sources]]\nname = "{SOURCE}"\nadapter = "replay"\nstream = {"true" if redis_url else "false"}\n'
            f'settings = {{ paths = ["data/*.ndjson"], poll_seconds = 0.1, page_size = {page_size} }}\n'
            + (LISTENING_QUERIES if "listening" in UNDERSTANDING[understanding] else "")
            # What is measured is how fast the workers ingest: the CRM's limit (100 requests
            # per 10 s) paces the sync, not the ingest, which would otherwise pause once the
            # outbox holds 5,000 operations (the default mark; in a fleet since 2026-12-08).
            + "\n[engine]\noutbox_high_water = 1000000\n"
        )
        self.workers: list[subprocess.Popen[bytes]] = []
        self._pg: Any = None

    def start(self, n: int) -> None:
        plugins = ",".join(["replay", "hubspot", "postgres", "redis", *UNDERSTANDING[self.understanding]])
        env = {**os.environ, "SCRM_LOAD_PLUGINS": plugins, "COLUMNS": "300"}
        for i in range(n):
            self.workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "scrm", "run", "-v", "-c", str(self.folder / "scrm.toml")],
                    cwd=self.folder,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=open(self.folder / f"worker-{i}.log", "wb"),  # noqa: SIM115
                )
            )

    def idle(self) -> None:
        """Wait until every worker has started (plugins loaded, the source being read): their CPU stands still."""
        before = [cpu_of(w.pid) for w in self.workers]
        while True:
            time.sleep(0.3)  # sampling interval of the CPU counters
            for w in self.workers:
                if w.poll() is not None:
                    raise SystemExit(
                        f"bench_fleet: a worker exited: {(self.folder / 'worker-0.log').read_text()[-2000:]}"
                    )
            now = [cpu_of(w.pid) for w in self.workers]
            if all(b > 0.5 and n - b < 0.03 for b, n in zip(before, now, strict=True)) and self.started():
                return
            before = now

    def query(self, sql: str) -> Any:
        """One row; None before the schema exists. One connection for the whole scenario: a
        new PostgreSQL connection per look would cost the server a process each time."""
        if self.url.startswith("sqlite"):
            path = self.folder / self.url.removeprefix("sqlite:///")
            if not path.exists():
                return None
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
            try:
                return conn.execute(sql).fetchone()
            except sqlite3.OperationalError:
                return None
            finally:
                conn.close()
        import psycopg

        if self._pg is None:
            self._pg = psycopg.connect(self.url, autocommit=True)
        try:
            return self._pg.execute(sql).fetchone()
        except psycopg.errors.UndefinedTable:
            return None

    def started(self) -> bool:
        return self.query(f"SELECT cursor FROM checkpoints WHERE source = '{SOURCE}'") is not None or (
            self.url.startswith("sqlite") and self.query("SELECT COUNT(*) FROM messages") is not None
        )

    def messages(self) -> int:
        row = self.query("SELECT COUNT(*) FROM messages")
        return int(row[0]) if row else 0

    def outbox(self) -> int:
        row = self.query("SELECT COUNT(*) FROM outbox")
        return int(row[0]) if row else -1

    def run(self, workers: int, warm_up: tuple[bytes, int], expected: int, pids: dict[str, int]) -> dict[str, Any]:
        self.start(workers)
        self.idle()
        # A first part (other messages) loads what each worker loads at its first pages
        # (language word lists, the sentiment model, ~0.5 s each): not what is measured.
        (self.folder / "data" / "1-warm-up.ndjson").write_bytes(warm_up[0])
        until(lambda: self.messages() >= warm_up[1], "the warm-up committed")
        self.idle()
        expected += warm_up[1]
        cpu = {f"worker_{i}": cpu_of(w.pid) for i, w in enumerate(self.workers)}
        others = {name: cpu_of(pid, children=True) for name, pid in pids.items()}
        me = time.process_time()
        started = time.perf_counter()
        staged = self.folder / "firehose.tmp"
        staged.write_bytes(self.lines)
        staged.rename(self.folder / "data" / "2-firehose.ndjson")
        until(lambda: self.messages() >= expected, "every message committed")
        ingest = time.perf_counter() - started
        cpu = {name: round(cpu_of(w.pid) - cpu[name], 2) for name, w in zip(cpu, self.workers, strict=True)}
        for name, pid in pids.items():
            cpu[name] = round(cpu_of(pid, children=True) - others[name], 2)
        cpu["bench_and_crm_fake"] = round(time.process_time() - me, 2)
        until(lambda: self.outbox() == 0, "the outbox drained")
        synced = time.perf_counter() - started
        for w in self.workers:
            w.send_signal(signal.SIGTERM)
        codes = [w.wait(timeout=120) for w in self.workers]
        if self._pg is not None:
            self._pg.close()
        self.server.stop()
        return {
            "workers": workers,
            "messages": expected - warm_up[1],
            "ingest_seconds": round(ingest, 2),
            "messages_per_second": round((expected - warm_up[1]) / ingest, 1),
            "synced_seconds": round(synced, 2),
            "cpu_seconds": cpu,
            "worker_cpu_seconds_per_1000_messages": round(
                sum(v for k, v in cpu.items() if k.startswith("worker_")) * 1000 / (expected - warm_up[1]), 3
            ),
            "crm_requests": len(self.fake.requests),
            "crm_429": self.fake.statuses(429),
            "exit_codes": codes,
        }


#: Words appended to make every text distinct (the demo's texts repeat, a firehose's do not):
#: understanding's caches (language, sentiment) then miss as they do on real traffic.
_WORDS = [
    *("river", "morning", "window", "garden", "ticket", "station", "coffee", "paper", "market"),
    *("winter", "bridge", "engine", "letter", "island", "camera", "forest", "signal", "orange"),
    *("pocket", "summer", "lantern", "harbor", "meadow", "velvet", "canyon", "pepper", "quarter"),
    *("rocket", "silver", "thunder", "violin", "walnut", "yellow", "zipper", "anchor", "basket"),
]


def distinct_texts(lines: bytes, seed: int = 7) -> bytes:
    import random

    from scrm_replay.format import dump_event, is_blank, parse_line

    from scrm_core.models import MessageCreated, MessageEdited

    rng = random.Random(seed)
    out = []
    for raw in lines.splitlines():
        event = None if is_blank(raw) else parse_line(raw)
        if isinstance(event, MessageCreated | MessageEdited):
            extra = " ".join(rng.choice(_WORDS) for _ in range(4))
            event.message.text = f"{event.message.text} {extra} {rng.randrange(10_000)}"
            out.append(dump_event(event).rstrip(b"\n"))
        else:
            out.append(raw)
    return b"\n".join(out) + b"\n"


def expected_messages(lines: bytes) -> int:
    from scrm_replay.format import is_blank, parse_line

    from scrm_core.models import MessageCreated, MessageDeleted, MessageEdited

    keys = set()
    for raw in lines.splitlines():
        if is_blank(raw):
            continue
        event = parse_line(raw)
        if isinstance(event, MessageCreated | MessageEdited):
            keys.add(event.message.key)
        elif isinstance(event, MessageDeleted):
            keys.add(event.message_key)
    return len(keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=6000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the 1- and 2-worker runs, alternated")
    parser.add_argument(
        "--understanding", choices=sorted(UNDERSTANDING), default="full", help="the understanding plugins loaded"
    )
    parser.add_argument("--keep", type=Path, help="keep each scenario's config and worker logs (-v) in this folder")
    args = parser.parse_args()

    import redis
    from scrm_postgres.testing import PostgresServer
    from scrm_redis.testing import RedisServer, find_redis
    from scrm_replay.demo import generate_demo

    load = os.getloadavg()
    binary, why = find_redis()
    if binary is None:
        raise SystemExit(f"bench_fleet: {why}")
    with tempfile.TemporaryDirectory() as tmp, PostgresServer.start() as pg, RedisServer.start(binary) as rs:
        folder = Path(tmp)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            folder = Path(tempfile.mkdtemp(dir=args.keep))
        generate_demo(folder / "demo", messages=args.messages, seed=7)
        lines = distinct_texts(b"".join(p.read_bytes() for p in sorted((folder / "demo").glob("*.ndjson"))))
        generate_demo(folder / "warm", messages=max(100, args.messages // 10), seed=8)
        warm = distinct_texts(b"".join(p.read_bytes() for p in sorted((folder / "warm").glob("*.ndjson"))), seed=8)
        warm_up = (warm, expected_messages(warm))
        expected = expected_messages(warm + lines) - warm_up[1]  # what the measured part adds
        assert pg.process is not None
        pids = {"postgres": pg.process.pid, "redis": rs.process.pid}
        results: dict[str, Any] = {}
        sqlite = Scenario(folder / "sqlite", lines, "sqlite:///state.db", None, args.page_size, args.understanding)
        results["sqlite_1_worker"] = sqlite.run(1, warm_up, expected, {})
        rounds: list[dict[str, Any]] = []
        for round_ in range(args.repeat):
            runs: dict[str, Any] = {}
            for workers in (1, 2) if round_ % 2 == 0 else (2, 1):  # alternated: neighbours change
                redis.Redis.from_url(rs.url).flushdb()
                url = pg.create_database(f"fleet{round_}w{workers}")
                name = f"postgres_{workers}_worker{'s' if workers > 1 else ''}"
                scenario = Scenario(folder / f"{name}-{round_}", lines, url, rs.url, args.page_size, args.understanding)
                runs[name] = scenario.run(workers, warm_up, expected, pids)
            runs["ratio_2_to_1"] = round(
                runs["postgres_2_workers"]["messages_per_second"] / runs["postgres_1_worker"]["messages_per_second"], 2
            )
            rounds.append(runs)
    median = sorted(rounds, key=lambda r: float(r["ratio_2_to_1"]))[len(rounds) // 2]  # the median round
    results.update({k: v for k, v in median.items() if k != "ratio_2_to_1"})
    print(
        json.dumps(
            {
                "bench": "fleet",
                "python": platform.python_version(),
                "cores": os.cpu_count(),
                "load_average_before": [round(x, 2) for x in load],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
                "messages": expected,
                "page_size": args.page_size,
                "understanding": UNDERSTANDING[args.understanding],
                "ratio_2_to_1": median["ratio_2_to_1"],
                "ratio_2_to_1_each_round": [r["ratio_2_to_1"] for r in rounds],
                "ratio_postgres_to_sqlite_1_worker": round(
                    results["postgres_1_worker"]["messages_per_second"]
                    / results["sqlite_1_worker"]["messages_per_second"],
                    2,
                ),
                "scenarios": results,
                "rounds": rounds if len(rounds) > 1 else [],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
