#!/usr/bin/env python3
"""Does a sync cost more as the state grows? CPU of one incremental sync of 10,000 new
messages into states holding 0, 1M and 5M messages; prints JSON.

    .venv/bin/python bench/bench_growth.py                                  # 0, 1M, 5M (~15 min, ~10 GB disk)
    .venv/bin/python bench/bench_growth.py --sizes 0,100000 --chunks 2      # a quick look
    .venv/bin/python bench/bench_growth.py --state-url 'postgresql://localhost/growth_{size}'  # another back end

How:

1. **The syncs** are the demo stream (``scrm_replay.demo``, seed 7): ``--chunks`` runs of
   10,000 ``message.created`` events (with the edits, deletions and profile changes between
   them), each replayed by the real engine (``scrm run --once``: replay, localcrm, intent; no
   sentiment) in its own process pinned to one CPU. The figure is that process's CPU time
   from the engine's start to its end (start-up and plugin loading excluded, the same for
   every state). Every state size gets the same chunks, in the same order.
2. **The states** are built fast, without the engine: a history of N messages (the demo
   generator again, another seed, every message and account id given the suffix ``h`` so
   that the history shares no key with the syncs but has the same shapes and sorts among
   them) is written **through the state store's own interface, the calls the engine
   makes**: per page of 2,000 messages, ``commit_page`` (seen events, profiles,
   conversations, message index, CRM operations built by the engine's own mapping, the
   cursor), the CRM writes (localcrm's writer, batches of 500, parents first), then
   ``outbox_settle`` with the CRM ids, as the sink does. No understanding or routing
   plugin runs: a fifth of the threads get a case, the rest are logged. That is the
   :func:`seed` helper below, owned by this bench: when the store's interface changes,
   it changes with it.
3. ``--state-url`` names the store for every size (``{size}`` is replaced by the size,
   so each gets its own, empty, database); by default a SQLite file per size in a temporary
   folder. The embedded CRM is always a localcrm file beside it.

Reported per size: the CPU seconds of each chunk's sync, their median, the ratio of the
median to the empty state's (the target: <= 1.2 at 5M), and how long building the state
took. The ratios are the headline: CPU time moves with the machine's load, ratios of runs
made minutes apart less so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHUNK = 10_000
PAGE = 2_000
CASE_EVERY = 5  # one thread in five gets a case


def pin_to_one_cpu() -> int:
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


# ---------------------------------------------------------------- the syncs


def write_chunks(folder: Path, chunks: int, seed: int) -> list[Path]:
    """The demo stream cut into files of CHUNK message.created events each (other events
    stay where the stream has them)."""
    from scrm_replay.demo import generate_demo

    raw = folder / "stream"
    generate_demo(raw, messages=chunks * CHUNK, seed=seed)
    lines: list[bytes] = []
    for path in sorted(raw.glob("*.ndjson")):
        lines += path.read_bytes().splitlines(keepends=True)
    # One stream in time order, as a reader of all three networks would see it.
    import orjson

    lines.sort(key=lambda line: _event_time(orjson.loads(line)))
    out, current, created = [], [], 0
    for line in lines:
        current.append(line)
        created += b'"kind":"message.created"' in line
        if created == CHUNK:
            out.append(current)
            current, created = [], 0
    if current and len(out) < chunks:
        out.append(current)
    paths = []
    for i, chunk in enumerate(out, 1):
        path = folder / f"chunk-{i}.ndjson"
        path.write_bytes(b"".join(chunk))
        paths.append(path)
    shutil.rmtree(raw)
    return paths


def _event_time(event: dict[str, Any]) -> str:
    message = event.get("message")
    if isinstance(message, dict):
        return str(message.get("edited_at") or message.get("created_at") or "")
    return str(event.get("deleted_at") or event.get("version") or "")


def child_sync(folder: Path, chunk: Path, state_url: str) -> dict[str, object]:
    """One `scrm run --once` over one chunk into the state at ``state_url``; CPU of the run."""
    from scrm.config import load_config
    from scrm.engine import Engine, tune_gc_for_throughput
    from scrm.plugins import PluginHost

    config_path = folder / f"sync-{chunk.stem}.toml"
    config_path.write_text(
        f'[state]\nurl = "{state_url}"\n[crm]\nadapter = "localcrm"\nsettings = {{ path = "crm.db" }}\n'
        f'[[sources]]\nname = "{chunk.stem}"\nadapter = "replay"\nsettings = {{ paths = ["{chunk}"] }}\n'
    )
    host = PluginHost(env={"SCRM_LOAD_PLUGINS": "replay,localcrm,intent"}).load()
    config = load_config(config_path, env={}, networks=host.networks, crms=host.crms)
    tune_gc_for_throughput()
    started, cpu = time.perf_counter(), time.process_time()
    stats = asyncio.run(Engine(config, host).run(follow=False, handle_signals=False))
    return {
        "cpu_seconds": round(time.process_time() - cpu, 3),
        "seconds": round(time.perf_counter() - started, 3),
        "messages": stats.ingest.messages + stats.ingest.ignored,
        "events": stats.ingest.events,
        "crm_records_written": stats.sink.applied,
    }


# ---------------------------------------------------------------- the states


def history(folder: Path, n: int, seed: int) -> Iterator[Any]:
    """N message.created events of the demo generator, ids suffixed so none is a sync's."""
    import orjson
    from pydantic import TypeAdapter
    from scrm_replay.demo import generate_demo

    from scrm_core.models import Event, MessageCreated

    events: TypeAdapter[Any] = TypeAdapter(Event)
    raw = folder / "history"
    generate_demo(raw, messages=n, seed=seed)
    try:
        for path in sorted(raw.glob("*.ndjson")):
            with path.open("rb") as fh:
                for line in fh:
                    event = orjson.loads(line)
                    if event.get("kind") != "message.created":
                        continue
                    m = event["message"]
                    for name in ("id", "thread_root_id", "parent_id"):
                        if m.get(name):
                            m[name] += "h"
                    m["author"]["account_id"] += "h"
                    created = events.validate_python(event)
                    assert isinstance(created, MessageCreated)
                    yield created
    finally:
        shutil.rmtree(raw)


def _fingerprint(profile: Any) -> str:
    # What the engine stores to tell whether a profile's CRM copy is current (ingest._fingerprint).
    return format(zlib.crc32(profile.model_dump_json().encode()), "08x")


def seed(store: Any, writer: Any, events: Iterator[Any], case_every: int = CASE_EVERY) -> int:
    """Write what the engine and its sink would have written for ``events``, page by page,
    through the store's interface and the CRM's writer; one thread in ``case_every`` gets a
    case (0: none, as without a routing plugin). Returns the messages written."""
    from scrm.engine import mapping
    from scrm.store import MessageRecord, PageCommit, ProfileRecord, Settlement
    from scrm_localcrm import LocalCrm

    from scrm_core.adapters import CrmCapability
    from scrm_core.models import Action, ActionKind, Conversation, CrmObject, Direction

    keep_ids = CrmCapability.ids_follow_keys not in LocalCrm.capabilities  # as the sink decides

    case = [Action(kind=ActionKind.case, rule="bench-growth")]
    log = [Action(kind=ActionKind.log, rule="bench-growth")]
    order = list(CrmObject)  # contact, profile, case, lead, message: parents first, as the sink sends them
    batch = writer.limits.max_batch
    written = 0
    page: list[Any] = []

    def flush() -> None:
        nonlocal written
        messages = [e.message for e in page]
        profiles = store.profiles(list({m.author.key for m in messages}))
        conversations = store.conversations(list({m.conversation_key for m in messages}))
        changed_profiles: dict[str, Any] = {}
        changed_conversations: dict[str, Any] = {}
        records, ops = [], []
        for m in messages:
            profile_ops = []
            if m.author.key not in profiles:
                record = ProfileRecord(profile=m.author, person_key=m.author.key, fingerprint=_fingerprint(m.author))
                profiles[m.author.key] = changed_profiles[m.author.key] = record
                profile_ops = mapping.profile_ops(m.author, m.author.key)
            conversation = conversations.get(m.conversation_key)
            opened = conversation is None
            if conversation is None:
                conversation = Conversation(
                    network=m.network,
                    root_id=m.thread_root_id or m.id,
                    started_by=m.author.key,
                    subject=" ".join(m.text.split())[:120],
                    subject_from=m.id,
                    first_at=m.created_at,
                )
                conversations[m.conversation_key] = conversation
            conversation.message_count += 1
            conversation.last_at = max(conversation.last_at or m.created_at, m.created_at)
            if m.direction is Direction.inbound:
                conversation.last_inbound_id = m.id
            changed_conversations[m.conversation_key] = conversation
            with_case = opened and case_every > 0 and zlib.crc32(m.conversation_key.encode()) % case_every == 0
            if with_case:
                conversation.needs_case = True
            actions = case if with_case else log
            ops += profile_ops
            ops += mapping.default_ops(m, conversation, actions, m.author.key, with_case)
            records.append(MessageRecord(m.key, m.conversation_key, m.author.key, version=""))
        seqs = store.commit_page(
            PageCommit(
                source="history",
                cursor=str(written + len(messages)),
                event_keys=[e.key for e in page],
                profiles=list(changed_profiles.values()),
                conversations=list(changed_conversations.values()),
                messages=records,
                ops=ops,
            )
        )
        # The sink: one object type per call, parents first, the same key once per call.
        latest: dict[tuple[Any, str], Any] = {}
        for op in ops:
            found = latest.get((op.object, op.external_key))
            latest[op.object, op.external_key] = op if found is None else found.merged_with(op)
        crm_ids = []
        for obj in order:
            same = [op for (o, _), op in latest.items() if o is obj]
            for start in range(0, len(same), batch):
                results = writer.apply(same[start : start + batch])
                bad = [r.error for r in results if not r.ok]
                if bad:
                    raise SystemExit(f"the CRM refused seeded records: {bad[:3]}")
                crm_ids += [(obj, r.external_key, r.crm_id) for r in results]
        store.outbox_settle(Settlement(done=seqs, crm_ids=crm_ids, keep_ids=keep_ids))
        written += len(messages)
        page.clear()

    for event in events:
        page.append(event)
        if len(page) == PAGE:
            flush()
    if page:
        flush()
    return written


def build_state(folder: Path, size: int, state_url: str, seed_value: int) -> dict[str, object]:
    from scrm.store import open_store
    from scrm_localcrm import LocalCrm, db
    from scrm_localcrm.schema import migrate
    from scrm_localcrm.writer import Writer

    started, cpu = time.perf_counter(), time.process_time()
    store = open_store(state_url, folder)
    store.migrate()
    conn = db.connect(folder / "crm.db", create=True)
    migrate(conn, db.utc_now())
    writer = Writer(conn, LocalCrm.limits)
    try:
        written = seed(store, writer, history(folder, size, seed_value)) if size else 0
    finally:
        writer.close()
        store.close()
    return {
        "messages": written,
        "build_seconds": round(time.perf_counter() - started, 1),
        "build_cpu_seconds": round(time.process_time() - cpu, 1),
    }


# ---------------------------------------------------------------- parent


def in_child(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"{args[0]} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def disk_mb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.glob("*.db*")) / 1e6, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="0,1000000,5000000", help="messages in the state before each sync")
    parser.add_argument("--chunks", type=int, default=3, help="syncs of 10,000 messages per size (median)")
    parser.add_argument(
        "--state-url",
        default="sqlite:///state.db",
        help="the state store, {size} replaced by the size; relative sqlite paths are in each size's folder",
    )
    parser.add_argument("--folder", type=Path, help="work folder (default: a temporary one, removed after)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        pin_to_one_cpu()
        mode, folder = args.child[0], Path(args.child[1])
        if mode == "build":
            result = build_state(folder, int(args.child[2]), args.child[3], int(args.child[4]))
        else:
            result = child_sync(folder, Path(args.child[2]), args.child[3])
        print(json.dumps(result))
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    root = args.folder or Path(tempfile.mkdtemp(prefix="scrm-bench-growth-"))
    root.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "benchmark": "growth",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "pinned_to_one_cpu": True,
        "chunk_messages": CHUNK,
        "state_url": args.state_url,
        "sizes": {},
    }
    try:
        chunks = write_chunks(root, args.chunks, args.seed)
        for size in sizes:
            folder = root / f"state-{size}"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            url = args.state_url.replace("{size}", str(size))
            built = in_child("build", str(folder), str(size), url, str(args.seed + 1000))
            syncs = [in_child("sync", str(folder), str(chunk), url) for chunk in chunks]
            report["sizes"][str(size)] = {
                "state": built,
                "syncs": syncs,
                "median_sync_cpu_seconds": statistics.median(s["cpu_seconds"] for s in syncs),
                "disk_mb_after": disk_mb(folder),
            }
            print(json.dumps({str(size): report["sizes"][str(size)]}), file=sys.stderr)
            if not args.folder:
                shutil.rmtree(folder)
        base = report["sizes"][str(sizes[0])]["median_sync_cpu_seconds"]
        report["ratio_to_smallest"] = {
            str(size): round(report["sizes"][str(size)]["median_sync_cpu_seconds"] / base, 3) for size in sizes
        }
        # Paired by chunk: chunk k into this state against chunk k into the smallest one.
        report["ratio_to_smallest_by_chunk"] = {
            str(size): [
                round(s["cpu_seconds"] / b["cpu_seconds"], 3)
                for s, b in zip(
                    report["sizes"][str(size)]["syncs"], report["sizes"][str(sizes[0])]["syncs"], strict=True
                )
            ]
            for size in sizes
        }
    finally:
        if not args.folder:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
