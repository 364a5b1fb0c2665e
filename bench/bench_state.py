#!/usr/bin/env python3
"""The state store's cost: the same demo stream through ``scrm run --once`` into the embedded
CRM, with the state on SQLite (the embedded default, the baseline) and on PostgreSQL (a
real server from Debian's package, started for the run on 127.0.0.1), one worker each.

Prints one JSON object. Headline figures are CPU seconds (the scrm process; the PostgreSQL
server's, from its processes' accounting), not wall-clock rates: the machine is shared.
Each back end runs ``--repeat`` times in alternation, each run from an empty state and CRM,
in a fresh child process; the figures are the medians.

    .venv/bin/python bench/bench_state.py                 # 10,000 messages, 3 runs each
    .venv/bin/python bench/bench_state.py --messages 2000 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PLUGINS = "replay,localcrm,intent,postgres"


def child(folder: Path, url: str) -> dict[str, object]:
    import asyncio

    from scrm.config import load_config
    from scrm.engine import Engine, tune_gc_for_throughput
    from scrm.plugins import PluginHost

    for leftover in folder.glob("*.db*"):
        leftover.unlink()
    text = (folder / "scrm.toml.in").read_text().replace("@STATE_URL@", url)
    (folder / "scrm.toml").write_text(text)
    host = PluginHost(env={"SCRM_LOAD_PLUGINS": PLUGINS}).load()
    config = load_config(folder / "scrm.toml", env={}, networks=host.networks, crms=host.crms)
    tune_gc_for_throughput()
    started, cpu = time.perf_counter(), time.process_time()
    stats = asyncio.run(Engine(config, host).run(follow=False, handle_signals=False))
    return {
        "messages": stats.ingest.messages + stats.ingest.ignored,
        "events": stats.ingest.events,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "crm_records_written": stats.sink.applied,
    }


def server_cpu(pid: int) -> float:
    """CPU seconds of the PostgreSQL server: the postmaster and every process it has reaped."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime, stime, cutime, cstime
    live = 0
    for child_pid in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with open(f"/proc/{child_pid}/stat") as fh:  # backends still running
            f = fh.read().rpartition(")")[2].split()
        live += int(f[11]) + int(f[12])
    return (ticks + live) / os.sysconf("SC_CLK_TCK")


def run_child(folder: Path, url: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(folder), url], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("FOLDER", "URL"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.child[0]), args.child[1])))
        return

    from scrm_postgres.testing import PostgresServer
    from scrm_replay.demo import generate_demo

    with tempfile.TemporaryDirectory() as tmp, PostgresServer.start() as server:
        folder = Path(tmp)
        generate_demo(folder / "data", messages=args.messages, seed=7)
        files = sorted((folder / "data").glob("*.ndjson"))
        sources = "".join(
            f'\n[[sources]]\nname = "src-{i}"\nadapter = "replay"\nsettings = {{ paths = ["{p}"] }}\n'
            for i, p in enumerate(files)
        )
        (folder / "scrm.toml.in").write_text(
            f'[state]\nurl = "@STATE_URL@"\n\n[crm]\nadapter = "localcrm"\nsettings = {{ path = "crm.db" }}\n{sources}'
        )
        assert server.process is not None
        runs: dict[str, list[dict[str, float]]] = {"sqlite": [], "postgresql": []}
        for i in range(args.repeat):
            runs["sqlite"].append(run_child(folder, "sqlite:///state.db"))
            url = server.create_database(f"bench{i}")
            before = server_cpu(server.process.pid)
            result = run_child(folder, url)
            server.drop_database(f"bench{i}")  # its backends have ended: their CPU is accounted
            result["server_cpu_seconds"] = server_cpu(server.process.pid) - before
            runs["postgresql"].append(result)

    def median(backend: str, key: str) -> float:
        return round(statistics.median(r.get(key, 0.0) for r in runs[backend]), 3)

    report: dict[str, object] = {
        "benchmark": "state store: sqlite vs postgresql, one worker",
        "python": platform.python_version(),
        "messages": int(median("sqlite", "messages")),
        "repeat": args.repeat,
    }
    for backend in runs:
        report[backend] = {
            "cpu_seconds_scrm": median(backend, "cpu_seconds"),
            "cpu_seconds_server": median(backend, "server_cpu_seconds"),
            "seconds": median(backend, "seconds"),
            "crm_records_written": int(median(backend, "crm_records_written")),
        }
    sq, pg = report["sqlite"], report["postgresql"]
    assert isinstance(sq, dict) and isinstance(pg, dict)
    report["ratio_cpu_scrm_pg_over_sqlite"] = round(pg["cpu_seconds_scrm"] / sq["cpu_seconds_scrm"], 2)
    report["ratio_cpu_total_pg_over_sqlite"] = round(
        (pg["cpu_seconds_scrm"] + pg["cpu_seconds_server"]) / sq["cpu_seconds_scrm"], 2
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
