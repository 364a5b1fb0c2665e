"""CPU cost of LocalCrm's writer per record, beside SQLite's floor for the same rows; prints JSON.

    .venv/bin/python adapters/localcrm/bench/apply_throughput.py [--messages 100000]

Pinned to one CPU. Realistic shape: every default-mapping field set, authors spread over
5,000 profiles and messages over 20,000 conversations, batches of 500 (the adapter's
limit). Scenarios: new messages, partial updates (edits), redactions, full re-upserts of
existing messages, and the pipeline's mix (contacts, profiles and cases re-upserted
beside new messages, as the engine sends them).

For each batch, in the same run, in turns:

* ``apply``: ``Writer.apply`` (what ``LocalCrm.apply`` runs in its worker thread): checks,
  fitting, ref resolution, the upsert, per-record results;
* ``floor``: SQLite alone writing the very rows ``apply`` binds (recorded from the
  ``executemany`` calls of another copy of the writer, outside the timing) into a
  database of its own with the same schema and pragmas: ``BEGIN IMMEDIATE``, the same
  ``executemany`` calls, ``COMMIT``. Nothing can write those rows for less.

Figures are CPU µs per record (``process_time``; CPU time is the steady number on a
shared machine), medians over the batches; the ratio apply / floor and what apply costs
above the floor are medians of per-batch pairs (measured moments apart, so a busy moment
on the machine hits both).
``--baseline`` measures another copy of scrm_localcrm beside this one, batch by batch in
the same run (its own database, the same batches)::

    git archive 2bd7a8b adapters/localcrm | tar -x -C /tmp/old
    .venv/bin/python adapters/localcrm/bench/apply_throughput.py --baseline /tmp/old/adapters/localcrm/scrm_localcrm
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

BATCH = 500
PROFILES = 5_000
TEXT = "I love this product but the app keeps crashing whenever I open the settings page. #help "


class RecordingConnection(sqlite3.Connection):
    """Keeps what the writer hands to ``executemany`` (one Python call per batch, not per row)."""

    recorded: list[tuple[str, list[Any]]] | None = None

    def executemany(self, sql: str, rows: Iterable[Any], /) -> sqlite3.Cursor:
        if self.recorded is not None:
            rows = list(rows)
            self.recorded.append((sql, rows))
        return super().executemany(sql, rows)


def message(i: int, rng: random.Random) -> Any:
    from scrm_core import CrmObject, CrmOperation

    author = rng.randrange(PROFILES)
    mid = str(110_000_000_000 + i)
    return CrmOperation.model_construct(  # as the engine builds them
        object=CrmObject.message,
        external_key=f"scrm:mastodon:{mid}",
        fields={
            "network": "mastodon",
            "message_id": mid,
            "conversation_key": f"mastodon:{rng.randrange(20_000)}",
            "parent_id": None,
            "text": TEXT * 2,
            "created_at": "2024-05-01T12:00:00+00:00",
            "edited_at": None,
            "deleted": False,
            "deleted_at": None,
            "direction": "inbound",
            "visibility": "public",
            "url": f"https://mastodon.example/@u{author}/{mid}",
            "language": "en",
            "sentiment_score": -0.4,
            "sentiment_label": "negative",
            "labels": ["intent:complaint"],
            "matched_queries": ["brand"],
        },
        refs={"profile": f"scrm:mastodon:u{author}", "contact": f"scrm:person:u{author}"},
    )


def contact(i: int) -> Any:
    from scrm_core import CrmObject, CrmOperation

    return CrmOperation.model_construct(
        object=CrmObject.contact, external_key=f"scrm:person:u{i}", fields={"name": f"User {i}", "email": None}, refs={}
    )


def profile(i: int) -> Any:
    from scrm_core import CrmObject, CrmOperation

    return CrmOperation.model_construct(
        object=CrmObject.profile,
        external_key=f"scrm:mastodon:u{i}",
        fields={
            "network": "mastodon",
            "account_id": f"u{i}",
            "handle": f"u{i}",
            "display_name": f"User {i}",
            "url": f"https://mastodon.example/@u{i}",
            "followers": 40 + i % 900,
            "verified": False,
            "bio": None,
        },
        refs={"contact": f"scrm:person:u{i}"},
    )


def case(i: int, author: int) -> Any:
    from scrm_core import CrmObject, CrmOperation

    return CrmOperation.model_construct(
        object=CrmObject.case,
        external_key=f"scrm:mastodon:{i}",
        fields={
            "subject": TEXT[:80],
            "status": "open",
            "priority": "normal",
            "network": "mastodon",
            "conversation_key": f"mastodon:{i}",
            "labels": ["intent:complaint"],
        },
        refs={"contact": f"scrm:person:u{author}"},
    )


def load_writer(package: Path | None) -> Any:
    """The Writer class of the installed scrm_localcrm, or of another copy of the package
    (imported under another name, so both can run in one process)."""
    if package is None:
        from scrm_localcrm.writer import Writer

        return Writer
    name = f"baseline_localcrm_{abs(hash(str(package)))}"
    spec = importlib.util.spec_from_file_location(
        name, package / "__init__.py", submodule_search_locations=[str(package)]
    )
    if spec is None or spec.loader is None:
        raise SystemExit(f"{package}: not a scrm_localcrm package folder")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return importlib.import_module(f"{name}.writer").Writer


def open_db(path: Path, factory: type[sqlite3.Connection] = sqlite3.Connection) -> sqlite3.Connection:
    from scrm_localcrm import db
    from scrm_localcrm.schema import migrate

    conn = sqlite3.connect(str(path), isolation_level=None, cached_statements=512, factory=factory)
    for pragma in _pragmas():
        conn.execute(pragma)
    migrate(conn, db.utc_now())
    return conn


class Runs:
    """Writers under test, each on its own database, and SQLite alone on another, all fed
    the same batches; who goes first turns with each batch (so caches favour nobody). The
    rows the floor writes come from one more copy of the current writer, on a database of
    its own and outside the timing, so that the floor never runs right after the writer
    whose rows it replays."""

    def __init__(self, folder: Path, writers: dict[str, Any]) -> None:
        from scrm_localcrm import LocalCrm

        self.recorder = writers["current"](open_db(folder / "recorder.db", RecordingConnection), LocalCrm.limits)
        self.writers = {
            name: writer_class(open_db(folder / f"crm-{n}.db"), LocalCrm.limits)
            for n, (name, writer_class) in enumerate(writers.items())
        }
        self.floor = open_db(folder / "floor.db")
        self.cpu: dict[str, list[float]] = {name: [] for name in [*self.writers, "floor"]}
        self.records = self.turn = 0

    def run(self, batch: list[Any], measure: bool = True) -> None:
        recorded: list[tuple[str, list[Any]]] = []
        self.recorder.conn.recorded = recorded
        _check("recorder", self.recorder.apply(batch))
        self.recorder.conn.recorded = None
        names = [*self.writers, "floor"]
        self.turn += 1
        order = names[self.turn % len(names) :] + names[: self.turn % len(names)]
        for name in order:
            started = time.process_time()
            if name == "floor":
                self.floor.execute("BEGIN IMMEDIATE")
                for sql, rows in recorded:
                    self.floor.executemany(sql, rows)
                self.floor.execute("COMMIT")
                elapsed = time.process_time() - started
            else:
                results = self.writers[name].apply(batch)
                elapsed = time.process_time() - started
                _check(name, results)
            if measure:
                self.cpu[name].append(elapsed / len(batch))
        if measure:
            self.records += len(batch)

    def take(self) -> dict[str, object]:
        """Per writer: the median over batches of its CPU µs per record, and of its ratio to
        the floor measured on the same batch (paired, so a busy moment hits both)."""
        floor = self.cpu.pop("floor")
        out: dict[str, object] = {"records": self.records, "floor_us_per_record": _us(statistics.median(floor))}
        for name, times in self.cpu.items():
            out[name] = {
                "apply_us_per_record": _us(statistics.median(times)),
                "above_floor_us_per_record": _us(statistics.median(t - f for t, f in zip(times, floor, strict=True))),
                "ratio_to_floor": _ratio(times, floor),
            }
        if len(self.cpu) == 2:
            current, baseline = self.cpu.values()
            out["ratio_current_to_baseline"] = _ratio(current, baseline)
        self.cpu = {name: [] for name in [*self.writers, "floor"]}
        self.records = 0
        return out


def _check(name: str, results: list[Any]) -> None:
    bad = [r.error for r in results if not r.ok]
    if bad:
        raise SystemExit(f"{name}: apply refused records: {bad[:3]}")


def _us(seconds: float) -> float:
    return round(seconds * 1e6, 2)


def _ratio(a: list[float], b: list[float]) -> float:
    return round(statistics.median(x / y for x, y in zip(a, b, strict=True)), 3)


def _pragmas() -> list[str]:
    # The pragmas scrm_localcrm.db.connect sets, read from it so both databases match it.
    import inspect

    from scrm_localcrm import db

    source = inspect.getsource(db.connect)
    return [line.split('"')[1] for line in source.splitlines() if 'conn.execute("PRAGMA' in line]


def batches(n: int, make: Callable[[int], Any]) -> Iterator[list[Any]]:
    for start in range(0, n, BATCH):
        yield [make(i) for i in range(start, min(start + BATCH, n))]  # built outside the timing


def mix(n: int, rng: random.Random) -> Iterator[list[Any]]:
    """The pipeline's shape: per 500 new messages, their authors' contacts and profiles
    (re-upserts of existing records) and ~100 cases, each type its own batch."""
    for start in range(0, n, BATCH):
        msgs = [message(n * 4 + i, rng) for i in range(start, min(start + BATCH, n))]
        authors = sorted({int(op.refs["profile"].rsplit("u", 1)[1]) for op in msgs})[:BATCH]
        yield [contact(a) for a in authors]
        yield [profile(a) for a in authors]
        yield [case(n * 4 + start + k, authors[k % len(authors)]) for k in range(0, len(msgs), 5)]
        yield msgs


def main(n: int, folder: Path, writers: dict[str, Any]) -> dict[str, object]:
    rng = random.Random(7)
    pair = Runs(folder, writers)
    for b in batches(PROFILES, contact):
        pair.run(b, measure=False)
    for b in batches(PROFILES, profile):
        pair.run(b, measure=False)
    key = "scrm:mastodon:{}".format
    from scrm_core import CrmObject, CrmOperation

    def edit(i: int) -> Any:
        return CrmOperation.model_construct(
            object=CrmObject.message,
            external_key=key(110_000_000_000 + i),
            fields={"text": "edited: " + TEXT, "edited_at": "2024-05-01T13:00:00+00:00"},
            refs={},
        )

    def redaction(i: int) -> Any:
        return CrmOperation.model_construct(
            object=CrmObject.message,
            external_key=key(110_000_000_000 + i),
            fields={"text": "", "deleted": True, "deleted_at": "2024-05-01T14:00:00+00:00"},
            refs={},
        )

    out: dict[str, object] = {"messages": n, "batch": BATCH}
    scenarios: list[tuple[str, Iterable[list[Any]]]] = [
        ("insert", batches(n, lambda i: message(i, rng))),
        ("partial_update_edit", batches(n, edit)),
        ("partial_update_redaction", batches(n, redaction)),
        ("full_upsert_existing", batches(n, lambda i: message(i, rng))),
        ("pipeline_mix", mix(n, rng)),
    ]
    for name, source in scenarios:
        for b in source:
            pair.run(b)
        out[name] = pair.take()
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another scrm_localcrm package folder (e.g. an older commit's, from git archive) measured beside this one",
    )
    args = parser.parse_args()
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    writers = {"current": load_writer(None)}
    if args.baseline:
        writers["baseline"] = load_writer(args.baseline.resolve())
    with tempfile.TemporaryDirectory(prefix="scrm-localcrm-bench-") as tmp:
        report = main(args.messages, Path(tmp), writers)
    report["writers"] = {name: w.__module__ for name, w in writers.items()}
    report["baseline_path"] = str(args.baseline) if args.baseline else None
    report["cpu"] = cpu
    print(json.dumps(report, indent=2))
