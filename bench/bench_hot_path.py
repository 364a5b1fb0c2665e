#!/usr/bin/env python3
"""CPU per message of each part of the hot path, one part at a time, in one thread; prints JSON.

``bench_pipeline.py`` measures the whole engine, whose three threads (the event loop, the
state store's, the CRM's) share one CPU: a profiler there charges a part for the other
threads' work that ran meanwhile. Here each part runs by itself, in the order the engine
runs them, on the same demo stream, timed with ``thread_time``:

* ``parse``: the replay adapter's lines -> events (pydantic ``validate_json``, the edge);
* ``ingest``: :meth:`Ingestor.process` per page (understanding, conversation, routing,
  mapping): the state store is called in this thread (``AsyncStore.run`` without the hop);
* ``store_commit``: ``commit_page`` of each page's :class:`PageCommit` (the state store);
* ``pool``: the sink's pool (every operation added, taken in batches, parents first);
* ``crm_apply``: localcrm's ``Writer.apply`` of those batches.

Understanding off (replay, localcrm, intent) or on (+ sentiment, language, influence,
listening), the plugin sets of ``bench_pipeline.py``; plugins are warmed up first.
Run it with another tree's interpreter and ``--tree`` to compare, e.g. main's::

    .venv/bin/python bench/bench_hot_path.py --messages 30000 --repeat 3
    /work/main/.venv/bin/python bench/bench_hot_path.py --tree /work/main --messages 30000
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _setup(tree: Path) -> Any:
    sys.path.insert(0, str(tree / "bench"))
    return importlib.import_module("bench_pipeline")


class _InlineStore:
    """An AsyncStore whose calls run right here (no thread hop): ingest's own CPU only."""

    def __init__(self, store: Any) -> None:
        self.store = store

    async def call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return getattr(self.store, method.__name__)(*args, **kwargs)

    async def run(self, fn: Callable[[Any], Any]) -> Any:
        return fn(self.store)


def measure(folder: Path, plugins: str, bp: Any) -> dict[str, float]:
    from scrm.config import load_config
    from scrm.engine.ingest import Ingestor
    from scrm.engine.pool import Pool
    from scrm.plugins import PluginHost
    from scrm.store import OutboxItem, open_store
    from scrm_localcrm.adapter import LocalCrm
    from scrm_replay.format import parse_line

    from scrm_core import AdapterContext
    from scrm_core.models import CRM_OBJECT_ORDER, EventPage

    for leftover in folder.glob("*.db*"):
        leftover.unlink()
    host = PluginHost(env={"SCRM_LOAD_PLUGINS": bp.PLUGIN_SETS[plugins]}).load()
    config = load_config(folder / "scrm.toml", env={}, networks=host.networks, crms=host.crms)
    bp.warm_up(host, config)
    from scrm.engine import tune_gc_for_throughput

    tune_gc_for_throughput()  # as `scrm run` does
    clock = time.thread_time
    spent: dict[str, float] = {}

    lines = [line for path in sorted((folder / "data").glob("*.ndjson")) for line in path.read_bytes().splitlines()]
    started = clock()
    events = [parse_line(line) for line in lines]
    spent["parse"] = clock() - started

    store = open_store("sqlite:///state.db", folder)
    store.migrate()
    ingestor = Ingestor(_InlineStore(store), host.hooks_for(config), config)  # type: ignore[arg-type]
    page_size = 500
    spent["ingest"] = spent["store_commit"] = 0.0
    all_ops: list[Any] = []

    async def ingest() -> None:
        for i in range(0, len(events), page_size):
            page = EventPage.model_construct(events=events[i : i + page_size], cursor=str(i), rejects=[])
            t0 = clock()
            commit = await ingestor.process("demo", page)
            t1 = clock()
            store.commit_page(commit)
            t2 = clock()
            spent["ingest"] += t1 - t0
            spent["store_commit"] += t2 - t1
            all_ops.extend(commit.ops)

    asyncio.run(ingest())
    store.close()

    crm = LocalCrm(LocalCrm.Settings(path=str(folder / "crm.db")), AdapterContext(name="crm", base_dir=folder))
    writer = crm._open()  # what the adapter's worker thread holds
    pool = Pool(crm.stored_on)
    batches: list[list[Any]] = []
    t0 = clock()
    now = 0.0
    for seq, op in enumerate(all_ops, 1):
        pool.add(OutboxItem(seq, op), now)
        if seq % 5000 == 0 or seq == len(all_ops):
            partial = seq == len(all_ops)
            while True:
                took = False
                for obj in CRM_OBJECT_ORDER:
                    size = crm.limits.batch_size(obj)
                    while units := pool.take(obj, size, partial=partial):
                        batches.append([g.op for unit in units for g in unit])
                        took = True
                if not took or not partial:
                    break
    spent["pool"] = clock() - t0
    t0 = clock()
    for batch in batches:
        writer.apply(batch)
    spent["crm_apply"] = clock() - t0
    writer.close()
    messages = ingestor.counts.messages + ingestor.counts.ignored
    result = {part: round(seconds / messages * 1e6, 2) for part, seconds in spent.items()}
    result["total"] = round(sum(spent.values()) / messages * 1e6, 2)
    result["messages"] = messages
    result["ops"] = len(all_ops)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each set; the median of each part")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent, help="the scrm checkout")
    parser.add_argument("--folder", type=Path, help="a prepared folder (bench_pipeline's layout) to reuse")
    args = parser.parse_args()
    bp = _setup(args.tree)
    bp.pin_to_one_cpu()
    with tempfile.TemporaryDirectory(prefix="scrm-hot-") as tmp:
        folder = args.folder or Path(tmp)
        if not (folder / "scrm.toml").exists():
            bp.prepare(folder, args.messages, args.seed)
        report: dict[str, Any] = {"benchmark": "hot_path", "tree": str(args.tree), "clock": "thread_time, one thread"}
        for plugins in ("core", "understanding"):
            runs = [measure(folder, plugins, bp) for _ in range(args.repeat)]
            report["understanding_off" if plugins == "core" else "understanding_on"] = {
                part: statistics.median(float(r[part]) for r in runs) for part in runs[0]
            }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
