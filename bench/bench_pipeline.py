#!/usr/bin/env python3
"""End-to-end cost and peak memory: replayed demo stream -> engine -> embedded CRM, in CPU time.

Prints one JSON object. Every run is its own process pinned to one CPU, and the headline is
**CPU time** (``process_time`` of the pipeline process: every thread of the engine, the
state store's and the CRM's included), because wall-clock rates on a shared machine say
more about the neighbours than about scrm. Wall-clock figures are kept in the details.

* ``pipeline``: ``scrm run --once`` (ingest, understand, route, outbox, sink) into
  localcrm with the first-party plugins minus understanding (replay, localcrm, intent).
* ``pipeline_with_understanding``: the same with sentiment, language detection, influence
  and listening (five brand queries) on.
* Both are measured in the same run, ``--repeat`` times each, alternating, and the
  headline takes the median of each: messages per CPU-second with understanding off and
  on, and the ratio on/off of those rates (targets: 20,000 and 5,000; ARCHITECTURE.md §9).
  The plugins' one-time loads (models, word lists) happen before the clock starts, on a
  few sample messages, and are reported apart as ``warm_up_cpu_seconds``.
* ``baseline_parse_only``: only reading and validating the NDJSON events (the ceiling for
  anything that consumes this input), in CPU time too.
* ``baseline_per_message``: a straightforward script writing each message to the same
  CRM adapter one record per call (contact, profile, message), no batching, no state.
* ``baseline`` (with ``--baseline <checkout>``): another checkout's pipeline (its own
  ``.venv`` and copy of this script, e.g. main's) on the same stream, run alternating with
  this one's, its headline figures, and ``speedup_over_baseline_cpu`` (its CPU per message
  over this one's, understanding off and on).
* ``memory``: peak RSS of a backfill at two sizes (default 100,000 and 1,000,000 messages,
  understanding off; the target for 1M is under 250 MB); flat means the ratio stays near 1,
  and the big run's resident memory at each tenth of its input
  (``rss_mb_by_messages_big``) stays level.

    .venv/bin/python bench/bench_pipeline.py                                    # 100k, then 1M for memory
    .venv/bin/python bench/bench_pipeline.py --messages 30000 --memory-messages 0 --repeat 3
    .venv/bin/python bench/bench_pipeline.py --messages 30000 --memory-messages 0 --repeat 3 --baseline ../main
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def pin_to_one_cpu() -> int:
    cpu = max(os.sched_getaffinity(0))  # the last CPU: other work on this machine tends to sit on the first
    os.sched_setaffinity(0, {cpu})
    return cpu


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- child modes (one process each)


# The plugin sets the two pipeline runs load (SCRM_LOAD_PLUGINS): the rest stay out even
# when installed, so the "off" figure is comparable from one release to the next.
PLUGIN_SETS = {
    "core": "replay,localcrm,intent",
    "understanding": "replay,localcrm,intent,sentiment,language,influence,listening",
}


# What the warm-up shows the plugins before the clock starts: short and long, English and
# not, so that every model and word list a plugin loads on first use is loaded.
WARM_UP_TEXTS = (
    "thanks!",
    "ok",
    "The kettle broke after two days and support never answered. I want a refund.",
    "¿Dónde está mi pedido? Llevo dos semanas esperando",
    "Wo finde ich die Rechnung?",
    "love it 😍 #acme",
)


def warm_up(host: object, config: object) -> float:
    """Run the understanding step on a few sample messages; returns the CPU seconds it took."""
    from datetime import UTC, datetime

    from scrm.engine.understand import Understander

    from scrm_core import Message, SocialProfile

    cpu = time.process_time()
    queries = {q.name: q.query for q in config.listening.queries}  # type: ignore[attr-defined]
    understander = Understander(host.hooks_for(config), queries)  # type: ignore[attr-defined]
    author = SocialProfile(network="bench", account_id="warm-up")
    now = datetime.now(UTC)

    async def run() -> None:
        for i, text in enumerate(WARM_UP_TEXTS):
            await understander.understand(Message(network="bench", id=str(i), author=author, text=text, created_at=now))

    asyncio.run(run())
    return time.process_time() - cpu


def rss_mb() -> float:
    """Resident memory now (not the peak): /proc/self/statm's resident pages."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def count_lines(path: Path) -> int:
    """A file's lines, read a megabyte at a time (reading it whole would be the run's peak)."""
    with path.open("rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def child_pipeline(folder: Path, plugins: str = "core") -> dict[str, object]:
    from scrm.config import load_config
    from scrm.engine import Engine, RunStats, tune_gc_for_throughput
    from scrm.plugins import PluginHost

    for leftover in folder.glob("*.db*"):  # each run starts from an empty state store and CRM
        leftover.unlink()
    host = PluginHost(env={"SCRM_LOAD_PLUGINS": PLUGIN_SETS[plugins]}).load()
    config = load_config(folder / "scrm.toml", env={}, networks=host.networks, crms=host.crms)
    warm = warm_up(host, config)
    tune_gc_for_throughput()  # as `scrm run` does
    # Resident memory as the run goes (flat is the point): at each 10% of the input's lines.
    lines = sum(count_lines(path) for path in (folder / "data").glob("*.ndjson"))
    curve: list[tuple[int, float]] = []

    def progress(stats: RunStats) -> None:
        messages = stats.ingest.messages + stats.ingest.ignored
        if messages >= (len(curve) + 1) * lines / 10:
            curve.append((messages, round(rss_mb(), 1)))

    started, cpu = time.perf_counter(), time.process_time()
    stats = asyncio.run(Engine(config, host, progress=progress).run(follow=False, handle_signals=False))
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu
    messages = stats.ingest.messages + stats.ingest.ignored
    return {
        "events": stats.ingest.events,
        "messages": messages,
        "cpu_seconds": round(cpu_seconds, 3),
        "messages_per_cpu_second": round(messages / cpu_seconds),
        "cpu_us_per_message": round(cpu_seconds / messages * 1e6, 1),
        "events_per_cpu_second": round(stats.ingest.events / cpu_seconds),
        "warm_up_cpu_seconds": round(warm, 3),
        "wall_seconds": round(seconds, 3),
        "messages_per_wall_second": round(messages / seconds),
        "crm_records_written": stats.sink.applied,
        "crm_calls": stats.sink.calls,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_mb_by_messages": curve,
        "plugins": sorted(name for name, info in host.plugins.items() if not info.builtin and not info.error),
    }


def child_parse_only(folder: Path) -> dict[str, object]:
    from pydantic import TypeAdapter

    from scrm_core.models import Event

    adapter: TypeAdapter[object] = TypeAdapter(Event)
    started, cpu, count = time.perf_counter(), time.process_time(), 0
    for path in sorted((folder / "data").glob("*.ndjson")):
        with path.open("rb") as fh:
            for line in fh:
                adapter.validate_json(line)
                count += 1
    cpu_seconds = time.process_time() - cpu
    return {
        "events": count,
        "cpu_seconds": round(cpu_seconds, 3),
        "events_per_cpu_second": round(count / cpu_seconds),
        "wall_seconds": round(time.perf_counter() - started, 3),
    }


def child_per_message(folder: Path, limit: int) -> dict[str, object]:
    from pydantic import TypeAdapter
    from scrm.engine.mapping import message_op, profile_ops
    from scrm_localcrm.adapter import LocalCrm

    from scrm_core import AdapterContext, MessageCreated
    from scrm_core.models import Event

    events: TypeAdapter[object] = TypeAdapter(Event)
    crm = LocalCrm(
        LocalCrm.Settings(path=str(folder / "per-message-crm.db")), AdapterContext(name="crm", base_dir=folder)
    )

    async def run() -> tuple[int, int, float]:
        await crm.start()
        calls = done = 0
        started = time.process_time()
        for path in sorted((folder / "data").glob("*.ndjson")):
            with path.open("rb") as fh:
                for line in fh:
                    event = events.validate_json(line)
                    if not isinstance(event, MessageCreated):
                        continue
                    m = event.message
                    for op in [*profile_ops(m.author, m.author.key), message_op(m, m.author.key, False)]:
                        await crm.apply([op])  # look up or create contact, profile, then the message
                        calls += 1
                    done += 1
                    if done >= limit:
                        return done, calls, time.process_time() - started
        return done, calls, time.process_time() - started

    try:
        done, calls, cpu_seconds = asyncio.run(run())
    finally:
        asyncio.run(crm.close())
    return {
        "messages": done,
        "cpu_seconds": round(cpu_seconds, 3),
        "messages_per_cpu_second": round(done / cpu_seconds),
        "crm_calls": calls,
        "crm_calls_per_1000_messages": round(calls * 1000 / done),
    }


# ---------------------------------------------------------------- parent


# A brand's everyday listening: its name and products, competitors, a campaign.
LISTENING_QUERIES = "".join(
    f"\n[[listening.queries]]\nname = \"{name}\"\nquery = '{query}'\n"
    for name, query in [
        ("brand", '"acme" OR @acme OR #acme'),
        ("orders", "(order OR parcel OR delivery) AND (late OR missing OR never)"),
        ("refunds", 'refund* OR "money back"'),
        ("competitor-globex", "globex OR #globex"),
        ("campaign", '#acmesummer OR "summer sale"'),
    ]
)


def prepare(folder: Path, messages: int, seed: int) -> float:
    from scrm_replay.demo import generate_demo

    started = time.perf_counter()
    generate_demo(folder / "data", messages=messages, seed=seed)
    sources = "".join(
        f'\n[[sources]]\nname = "{p.stem}"\nadapter = "replay"\nsettings = {{ paths = ["data/{p.name}"] }}\n'
        for p in sorted((folder / "data").glob("*.ndjson"))
    )
    (folder / "scrm.toml").write_text(
        f'[state]\nurl = "sqlite:///state.db"\n[crm]\nadapter = "localcrm"\nsettings = {{ path = "crm.db" }}\n{sources}'
        + LISTENING_QUERIES
    )
    return time.perf_counter() - started


def in_child(mode: str, folder: Path, *extra: str, tree: Path | None = None) -> dict[str, object]:
    """``mode`` in a child process: this checkout's, or with ``tree`` another one's (its own
    interpreter, ``<tree>/.venv/bin/python``, and its own copy of this script)."""
    python, script = (sys.executable, __file__) if tree is None else (tree / ".venv/bin/python", tree / BENCH_IN_TREE)
    out = subprocess.run(
        [str(python), str(script), "--child", mode, str(folder), *extra], capture_output=True, text=True, check=False
    )
    if out.returncode:
        raise SystemExit(f"{mode} failed:\n{out.stderr}")
    result: dict[str, object] = json.loads(out.stdout)
    return result


BENCH_IN_TREE = Path("bench/bench_pipeline.py")


def rates(off: dict[str, object], on: dict[str, object]) -> dict[str, object]:
    off_rate = float(off["messages_per_cpu_second"])  # type: ignore[arg-type]
    on_rate = float(on["messages_per_cpu_second"])  # type: ignore[arg-type]
    return {
        "messages_per_cpu_second": {"understanding_off": round(off_rate), "understanding_on": round(on_rate)},
        "cpu_us_per_message": {
            "understanding_off": off["cpu_us_per_message"],
            "understanding_on": on["cpu_us_per_message"],
        },
        "ratio_on_to_off": round(on_rate / off_rate, 3),
    }


def median_run(runs: list[dict[str, object]]) -> dict[str, object]:
    """The run with the median CPU time (all its figures, not a mix of runs), and every run's CPU."""
    ordered = sorted(runs, key=lambda r: float(r["cpu_seconds"]))  # type: ignore[arg-type]
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["cpu_seconds_of_each_run"] = [r["cpu_seconds"] for r in runs]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each pipeline (alternating); medians reported")
    parser.add_argument(
        "--memory-messages", type=int, default=1_000_000, help="the big backfill for peak memory; 0 skips it"
    )
    parser.add_argument("--per-message-limit", type=int, default=5_000, help="messages for the per-message baseline")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another scrm checkout with its own .venv (e.g. main's): its pipeline runs on the same stream, "
        "alternating with this one's, and the report shows both",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        pin_to_one_cpu()
        mode, folder = args.child[0], Path(args.child[1])
        if mode == "pipeline":
            result = child_pipeline(folder, *args.child[2:])
        elif mode == "parse":
            result = child_parse_only(folder)
        else:
            result = child_per_message(folder, int(args.child[2]))
        print(json.dumps(result))
        return

    report: dict[str, object] = {
        "benchmark": "pipeline",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus_available": len(os.sched_getaffinity(0)),
        "pinned_to_one_cpu": True,
        "clock": "process CPU time (all threads of the pipeline process); wall time in the details",
    }
    with tempfile.TemporaryDirectory(prefix="scrm-bench-") as tmp:
        folder = Path(tmp) / "throughput"
        report["generate_seconds"] = round(prepare(folder, args.messages, args.seed), 2)
        off_runs, on_runs = [], []
        base_off, base_on = [], []
        for _ in range(args.repeat):
            off_runs.append(in_child("pipeline", folder))
            if args.baseline:
                base_off.append(in_child("pipeline", folder, tree=args.baseline))
            on_runs.append(in_child("pipeline", folder, "understanding"))
            if args.baseline:
                base_on.append(in_child("pipeline", folder, "understanding", tree=args.baseline))
        pipeline, understood = median_run(off_runs), median_run(on_runs)
        parse = in_child("parse", folder)
        per = in_child("per-message", folder, str(args.per_message_limit))
        off_rate = float(pipeline["messages_per_cpu_second"])  # type: ignore[arg-type]
        on_rate = float(understood["messages_per_cpu_second"])  # type: ignore[arg-type]
        report["headline"] = {
            "messages": pipeline["messages"],
            "runs_each": args.repeat,
            "messages_per_cpu_second": {"understanding_off": round(off_rate), "understanding_on": round(on_rate)},
            "cpu_us_per_message": {
                "understanding_off": pipeline["cpu_us_per_message"],
                "understanding_on": understood["cpu_us_per_message"],
            },
            "ratio_on_to_off": round(on_rate / off_rate, 3),
            "targets_messages_per_cpu_second": {"understanding_off": 20_000, "understanding_on": 5_000},
        }
        if args.baseline:
            old_off, old_on = median_run(base_off), median_run(base_on)
            report["baseline"] = {
                "tree": str(args.baseline),
                **rates(old_off, old_on),
                "cpu_seconds_of_each_run": {
                    "understanding_off": old_off["cpu_seconds_of_each_run"],
                    "understanding_on": old_on["cpu_seconds_of_each_run"],
                },
                "crm_records_written": {
                    "understanding_off": old_off["crm_records_written"],
                    "understanding_on": old_on["crm_records_written"],
                },
            }
            report["speedup_over_baseline_cpu"] = {
                "understanding_off": round(
                    float(old_off["cpu_us_per_message"]) / float(pipeline["cpu_us_per_message"]),  # type: ignore[arg-type]
                    3,
                ),
                "understanding_on": round(
                    float(old_on["cpu_us_per_message"]) / float(understood["cpu_us_per_message"]),  # type: ignore[arg-type]
                    3,
                ),
            }
        report["pipeline"] = pipeline
        report["pipeline_with_understanding"] = understood
        report["baseline_parse_only"] = parse
        report["baseline_per_message"] = per
        report["ratios"] = {
            "understanding_on_to_off_cpu": round(on_rate / off_rate, 3),
            "pipeline_to_parse_only_cpu": round(
                float(pipeline["events_per_cpu_second"]) / float(parse["events_per_cpu_second"]),  # type: ignore[arg-type]
                3,
            ),
            "pipeline_to_per_message_cpu": round(off_rate / float(per["messages_per_cpu_second"]), 2),  # type: ignore[arg-type]
            "crm_calls_per_1000_messages": round(
                float(pipeline["crm_calls"]) * 1000 / float(pipeline["messages"]),  # type: ignore[arg-type]
                2,
            ),
            "per_message_calls_per_1000_messages": per["crm_calls_per_1000_messages"],
        }
        if args.memory_messages:
            small = Path(tmp) / "memory-small"
            big = Path(tmp) / "memory-big"
            prepare(small, max(args.memory_messages // 10, 1000), args.seed)
            prepare(big, args.memory_messages, args.seed)
            small_run, big_run = in_child("pipeline", small), in_child("pipeline", big)
            keep = ("messages", "peak_rss_mb", "cpu_seconds", "messages_per_cpu_second", "wall_seconds")
            report["memory"] = {
                "small": {k: small_run[k] for k in keep},
                "big": {k: big_run[k] for k in keep},
                "rss_mb_by_messages_big": big_run["rss_mb_by_messages"],
                "peak_rss_ratio_big_vs_small": round(
                    float(big_run["peak_rss_mb"]) / float(small_run["peak_rss_mb"]),  # type: ignore[arg-type]
                    3,
                ),
                "target_peak_rss_mb_for_1m": 250,
            }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
