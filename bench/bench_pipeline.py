#!/usr/bin/env python3
"""End-to-end throughput and peak memory: replayed demo stream -> engine -> embedded CRM.

Prints one JSON object. Every figure comes with a baseline measured in the same run, on
the same data, pinned to the same single CPU, because these machines are noisy:

* ``pipeline``: ``scrm run --once`` equivalent (ingest, understand, route, outbox, sink)
  into localcrm, with the first-party plugins minus understanding: sentiment off.
* ``pipeline_with_understanding``: the same with sentiment (VADER), language detection,
  influence and listening plugins on (the budget: >= 5,000 messages/s).
* ``baseline_parse_only``: only reading and validating the NDJSON events (the ceiling
  for anything that consumes this input).
* ``baseline_per_message``: a straightforward script writing each message to the same
  CRM adapter one record per call (contact, profile, message), no batching, no state.
* ``memory``: peak RSS of the pipeline at two sizes; flat means the ratio stays near 1.

    .venv/bin/python bench/bench_pipeline.py                       # 100k messages, 1M for memory
    .venv/bin/python bench/bench_pipeline.py --messages 20000 --memory-messages 0
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


def child_pipeline(folder: Path, plugins: str = "core") -> dict[str, object]:
    from scrm_core.config import load_config
    from scrm_core.engine import Engine, tune_gc_for_throughput
    from scrm_core.plugins import PluginHost

    for leftover in folder.glob("*.db*"):  # each run starts from an empty state store and CRM
        leftover.unlink()
    host = PluginHost(env={"SCRM_LOAD_PLUGINS": PLUGIN_SETS[plugins]}).load()
    config = load_config(folder / "scrm.toml", env={}, networks=host.networks, crms=host.crms)
    tune_gc_for_throughput()  # as `scrm run` does
    started, cpu = time.perf_counter(), time.process_time()
    stats = asyncio.run(Engine(config, host).run(follow=False, handle_signals=False))
    seconds = time.perf_counter() - started
    return {
        "events": stats.ingest.events,
        "messages": stats.ingest.messages + stats.ingest.ignored,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(time.process_time() - cpu, 3),
        "messages_per_s": round((stats.ingest.messages + stats.ingest.ignored) / seconds),
        "events_per_s": round(stats.ingest.events / seconds),
        "crm_records_written": stats.sink.applied,
        "crm_calls": stats.sink.calls,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "plugins": sorted(name for name, info in host.plugins.items() if not info.builtin and not info.error),
    }


def child_parse_only(folder: Path) -> dict[str, object]:
    from pydantic import TypeAdapter

    from scrm_core.models import Event

    adapter: TypeAdapter[object] = TypeAdapter(Event)
    started, count = time.perf_counter(), 0
    for path in sorted((folder / "data").glob("*.ndjson")):
        with path.open("rb") as fh:
            for line in fh:
                adapter.validate_json(line)
                count += 1
    seconds = time.perf_counter() - started
    return {"events": count, "seconds": round(seconds, 3), "events_per_s": round(count / seconds)}


def child_per_message(folder: Path, limit: int) -> dict[str, object]:
    from pydantic import TypeAdapter
    from scrm_localcrm.adapter import LocalCrm

    from scrm_core import AdapterContext, MessageCreated
    from scrm_core.engine.mapping import message_op, profile_ops
    from scrm_core.models import Event

    events: TypeAdapter[object] = TypeAdapter(Event)
    crm = LocalCrm(
        LocalCrm.Settings(path=str(folder / "per-message-crm.db")), AdapterContext(name="crm", base_dir=folder)
    )

    async def run() -> tuple[int, int, float]:
        await crm.start()
        calls = done = 0
        started = time.perf_counter()
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
                        return done, calls, time.perf_counter() - started
        return done, calls, time.perf_counter() - started

    try:
        done, calls, seconds = asyncio.run(run())
    finally:
        asyncio.run(crm.close())
    return {
        "messages": done,
        "seconds": round(seconds, 3),
        "messages_per_s": round(done / seconds),
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


def in_child(mode: str, folder: Path, *extra: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(folder), *extra], capture_output=True, text=True, check=False
    )
    if out.returncode:
        raise SystemExit(f"{mode} failed:\n{out.stderr}")
    result: dict[str, object] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--memory-messages", type=int, default=1_000_000, help="0 skips the memory run")
    parser.add_argument("--per-message-limit", type=int, default=5_000, help="messages for the per-message baseline")
    parser.add_argument("--seed", type=int, default=7)
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
    }
    with tempfile.TemporaryDirectory(prefix="scrm-bench-") as tmp:
        folder = Path(tmp) / "throughput"
        report["generate_seconds"] = round(prepare(folder, args.messages, args.seed), 2)
        report["pipeline"] = pipeline = in_child("pipeline", folder)
        report["pipeline_with_understanding"] = understood = in_child("pipeline", folder, "understanding")
        report["baseline_parse_only"] = parse = in_child("parse", folder)
        report["baseline_per_message"] = per = in_child("per-message", folder, str(args.per_message_limit))
        report["ratios"] = {
            "understanding_vs_off_speed": round(
                float(understood["messages_per_s"]) / float(pipeline["messages_per_s"]),  # type: ignore[arg-type]
                3,
            ),
            "pipeline_vs_parse_only_speed": round(float(pipeline["events_per_s"]) / float(parse["events_per_s"]), 3),  # type: ignore[arg-type]
            "pipeline_vs_per_message_speed": round(
                float(pipeline["messages_per_s"]) / float(per["messages_per_s"]),  # type: ignore[arg-type]
                2,
            ),
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
            report["memory"] = {
                "small": {k: small_run[k] for k in ("messages", "peak_rss_mb", "seconds", "messages_per_s")},
                "big": {k: big_run[k] for k in ("messages", "peak_rss_mb", "seconds", "messages_per_s")},
                "peak_rss_ratio_big_vs_small": round(
                    float(big_run["peak_rss_mb"]) / float(small_run["peak_rss_mb"]), 3
                ),  # type: ignore[arg-type]
            }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
