#!/usr/bin/env python3
"""Where the real engine's CPU goes, per thread and per part of the event loop's work; prints JSON.

``bench_pipeline.py``'s run (``scrm run --once`` of the demo stream into localcrm, pinned to
one CPU) with coarse ``thread_time`` wrappers around the parts of the event loop's thread
that run without awaiting (a page's parsing, each message's ingest, the sink's pool and
settlement) and the collector's time, plus each worker thread's total (the state store's,
the CRM's). CPU µs per message; a wrapper costs ~1 µs per call, so parts called once per
message read ~1 µs high. ``bench_hot_path.py`` measures the parts one at a time instead.

    .venv/bin/python bench/bench_engine_parts.py --messages 30000
    /work/main/.venv/bin/python bench/bench_engine_parts.py --tree /work/main --folder <the same folder>
"""

from __future__ import annotations

import argparse
import collections
import functools
import gc
import importlib
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

clock = time.thread_time
spent: collections.Counter[str] = collections.Counter()


def _timed(owner: Any, name: str, label: str) -> None:
    fn = getattr(owner, name)
    if hasattr(fn, "__code__") and fn.__code__.co_flags & 0x80:  # a coroutine function

        @functools.wraps(fn)
        async def waited(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            try:
                return await fn(*args, **kwargs)
            finally:
                spent[label] += clock() - started

        setattr(owner, name, waited)
        return

    @functools.wraps(fn)
    def called(*args: Any, **kwargs: Any) -> Any:
        started = clock()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[label] += clock() - started

    setattr(owner, name, called)


def _instrument() -> None:
    from scrm.engine import ingest, pool, runner, sink
    from scrm_replay import adapter as replay

    _timed(replay, "_fill", "loop: parse a page (replay)")
    _timed(ingest.Ingestor, "_created", "loop: ingest one new message")
    _timed(sink.Sink, "notify", "loop: sink.notify")
    _timed(pool.Pool, "take", "loop: pool.take")
    _timed(sink.Sink, "_settlement", "loop: sink._settlement")
    _timed(runner.Engine, "run", "loop thread: all of Engine.run")
    started: dict[str, float] = {}

    def collector(phase: str, info: dict[str, int]) -> None:
        if threading.current_thread() is threading.main_thread():
            if phase == "start":
                started["gc"] = clock()
            else:
                spent["loop: garbage collector"] += clock() - started["gc"]

    gc.callbacks.append(collector)
    run: Callable[[threading.Thread], None] = threading.Thread.run

    def thread_run(self: threading.Thread) -> None:
        try:
            run(self)
        finally:
            spent[f"thread: {self.name.rstrip('_0123456789')}"] += clock()

    threading.Thread.run = thread_run  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--plugins", choices=["core", "understanding"], default="core")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent, help="the scrm checkout")
    parser.add_argument("--folder", type=Path, help="a prepared folder (bench_pipeline's layout) to reuse")
    args = parser.parse_args()
    sys.path.insert(0, str(args.tree / "bench"))
    bp = importlib.import_module("bench_pipeline")
    bp.pin_to_one_cpu()
    with tempfile.TemporaryDirectory(prefix="scrm-parts-") as tmp:
        folder = args.folder or Path(tmp)
        if not (folder / "scrm.toml").exists():
            bp.prepare(folder, args.messages, args.seed)
        _instrument()
        result = bp.child_pipeline(folder, args.plugins)
    messages = int(result["messages"])
    report = {
        "benchmark": "engine_parts",
        "tree": str(args.tree),
        "plugins": args.plugins,
        "messages": messages,
        "cpu_us_per_message_all_threads": result["cpu_us_per_message"],
        "cpu_us_per_message": {
            label: round(seconds / messages * 1e6, 1) for label, seconds in sorted(spent.items(), key=lambda kv: -kv[1])
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
