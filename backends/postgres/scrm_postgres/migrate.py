"""``scrm state migrate --to postgresql://...``: copy an SQLite state store into PostgreSQL.

Every table, row for row (dead letters, the webhook inbox, the outbox, replies, adapter
state, learning, the audit log included), with each value converted to PostgreSQL's type
(ISO text to timestamps, 0/1 to booleans, keys with NUL encoded as the store encodes them)
and each id kept, so nothing is lost and nothing is repeated: the next ``scrm run`` on
PostgreSQL goes on from the same checkpoints, and what the outbox held is sent once.

Safe to interrupt: each table is copied in ONE transaction that also records it in
``state_import``; running again with ``resume=True`` copies the tables not recorded yet.
A target that holds state this command did not write is refused. While copying, the
SQLite store's writer lock is held (no ``scrm run`` can change it meanwhile) and so is the
PostgreSQL store's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from scrm.sqlite import MIGRATIONS as SQLITE_MIGRATIONS
from scrm.store import SqliteStore

from scrm_core.errors import FatalError
from scrm_core.store import AuditEntry
from scrm_core.store.base import partition_of

from .db import _ESC, esc
from .store import PostgresStore

__all__ = ["SQLITE_SCHEMA_VERSION", "TABLES", "MigrationReport", "migrate_state"]

#: The SQLite schema version this copier knows; another is refused (its columns may differ).
SQLITE_SCHEMA_VERSION = 7

#: Every table of the state, parents before children (identity links refer to profiles),
#: with the columns whose text the PostgreSQL store keeps NUL-encoded (:func:`~.db.esc`).
TABLES: dict[str, frozenset[str]] = {
    "checkpoints": frozenset(),
    "seen_events": frozenset({"key"}),
    "profiles": frozenset({"key", "person_key"}),
    "conversations": frozenset({"key", "started_by"}),
    "messages": frozenset({"key", "conversation_key", "author_key"}),
    "outbox": frozenset({"external_key"}),
    "crm_ids": frozenset({"external_key"}),
    "dead_letters": frozenset({"locator", "payload"}),
    "audit_log": frozenset({"subject"}),
    "identity_links": frozenset({"profile_key", "person_key", "previous_person_key"}),
    "webhook_inbox": frozenset({"headers"}),
    "replies": frozenset(),
    "label_examples": frozenset({"message_key"}),
    "classifier_models": frozenset(),
    "pending_links": frozenset({"child_key", "parent_key"}),
    "adapter_state": frozenset({"key", "value"}),
}
#: Sequences PostgreSQL hands numbers from, per table: set past SQLite's highest, so a
#: number SQLite gave (an outbox seq a sink may have recorded) is never given again.
_SEQUENCES = {
    "outbox": ("seq", "outbox_seq"),
    "label_examples": ("seq", "label_examples_seq"),
    **{t: ("id", None) for t in ("dead_letters", "audit_log", "identity_links", "webhook_inbox", "replies")},
    "classifier_models": ("id", None),
}
_BATCH = 5000
#: Rows of a SQLite table that are not copied: settled outbox rows waiting to leave with the
#: settled prefix (SQLite's ``outbox_done``; PostgreSQL deletes settled rows at once).
_ONLY = {"outbox": " WHERE seq NOT IN (SELECT seq FROM outbox_done)"}
#: SQLite's own tables, not copied: what they say is applied by the ``_ONLY`` filters.
SQLITE_ONLY = frozenset({"outbox_done"})

#: (table, rows copied so far, rows in the table): called as a copy goes on.
Progress = Callable[[str, int, int], None]


@dataclass
class MigrationReport:
    copied: dict[str, int] = field(default_factory=dict)  # table -> rows copied by this call
    skipped: list[str] = field(default_factory=list)  # tables an earlier, interrupted call copied
    already_done: bool = False


def migrate_state(
    source: Path, target_url: str, *, resume: bool = False, progress: Progress | None = None
) -> MigrationReport:
    """Copy the SQLite state at ``source`` into the (empty) PostgreSQL database at ``target_url``."""
    if not source.exists():
        raise FatalError(f"there is no SQLite state store at {source}: nothing to migrate")
    lite = SqliteStore(source)
    try:
        lite.claim_writer()  # no scrm run changes the source while it is copied
        lite.migrate()  # the current schema, as scrm run would make it
        pg = PostgresStore(target_url)
        try:
            pg.claim_writer()
            pg.migrate()
            return _copy(source, pg, resume, progress or (lambda *_: None))
        finally:
            pg.close()
    finally:
        lite.close()


def _copy(source: Path, pg: PostgresStore, resume: bool, progress: Progress) -> MigrationReport:
    report = MigrationReport()
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        (version,) = src.execute("SELECT MAX(version) FROM schema_version").fetchone()
        if version != SQLITE_SCHEMA_VERSION or len(SQLITE_MIGRATIONS) != SQLITE_SCHEMA_VERSION:
            raise FatalError(
                f"{source} has SQLite schema version {version}; this scrm-postgres copies version "
                f"{SQLITE_SCHEMA_VERSION}: install the scrm-postgres that matches this scrm"
            )
        done = {tbl: src_name for tbl, src_name in pg._rows("SELECT tbl, source FROM state_import")}
        _check_target(pg, done, str(source), resume)
        if set(done) >= set(TABLES) | {"(sequences)"}:
            report.already_done = True
            return report
        for table, escaped in TABLES.items():
            if table in done:
                report.skipped.append(table)
                continue
            report.copied[table] = _copy_table(src, pg, table, escaped, str(source), progress)
        _advance_sequences(src, pg, str(source))
    finally:
        src.close()
    pg.audit([AuditEntry("state.migrated", "state", " ".join(f"{t}={n}" for t, n in report.copied.items()))])
    return report


def _check_target(pg: PostgresStore, done: dict[str, str], source: str, resume: bool) -> None:
    if done:
        others = {s for s in done.values() if s != source}
        if others:
            raise FatalError(
                f"the target database holds a copy of another state store ({sorted(others)[0]}), not of {source}: "
                "use an empty database"
            )
        if not resume and not set(done) >= set(TABLES) | {"(sequences)"}:
            raise FatalError(
                f"a copy of {source} into this database was interrupted after {len(done)} of {len(TABLES)} "
                "tables: run the same command with --resume to copy the rest"
            )
        return
    holding = [t for t in TABLES if pg._one(f"SELECT EXISTS (SELECT 1 FROM {t})")[0]]
    if holding:
        raise FatalError(
            f"the target database already holds scrm state (tables {', '.join(holding[:4])}...) that this "
            "command did not copy: refusing to mix two states. Use an empty database"
        )


def _target_types(pg: PostgresStore, table: str) -> dict[str, str]:
    rows = pg._rows(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = %s",
        (table,),
    )
    return dict(rows)


def _converter(table: str, column: str, pg_type: str, escaped: bool) -> Callable[[Any, Any], Any]:
    def text(value: Any, row_id: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bytes):  # SQLite keeps some JSON as BLOBs
            value = value.decode("utf-8", "surrogateescape")
        value = str(value)
        if escaped:
            return esc(value)
        if "\x00" in value or _ESC in value:
            raise FatalError(f"{table}.{column} of row {row_id!r} holds a NUL character, which PostgreSQL cannot store")
        return value

    if pg_type == "timestamp with time zone":
        return lambda v, row_id: None if v is None else datetime.fromisoformat(str(v))
    if pg_type == "boolean":
        return lambda v, row_id: None if v is None else bool(v)
    if pg_type == "bytea":
        return lambda v, row_id: None if v is None else (v.encode() if isinstance(v, str) else bytes(v))
    if pg_type in ("bigint", "integer", "smallint"):
        return lambda v, row_id: None if v is None else int(v)
    return text


def _rows(src: sqlite3.Connection, table: str, columns: list[str]) -> Iterator[tuple[Any, ...]]:
    cur = src.execute(f"SELECT {', '.join(columns)} FROM {table}{_ONLY.get(table, '')}")
    while batch := cur.fetchmany(_BATCH):
        yield from batch


def _copy_table(
    src: sqlite3.Connection, pg: PostgresStore, table: str, escaped: frozenset[str], source: str, progress: Progress
) -> int:
    """One table in one transaction, recorded in ``state_import`` by the same transaction."""
    sqlite_columns = [row[1] for row in src.execute(f"PRAGMA table_info({table})")]
    types = _target_types(pg, table)
    missing = [c for c in sqlite_columns if c not in types]
    if missing:
        raise FatalError(f"the PostgreSQL schema has no column {table}.{missing[0]}: upgrade scrm-postgres")
    converters = [_converter(table, c, types[c], c in escaped) for c in sqlite_columns]
    target_columns = list(sqlite_columns)
    # The outbox's partition (the fleet's sinks drain by partition) follows the record's key.
    key_at = sqlite_columns.index("external_key") if table == "outbox" else None
    if key_at is not None:
        target_columns.append("part")
    (total,) = src.execute(f"SELECT COUNT(*) FROM {table}{_ONLY.get(table, '')}").fetchone()
    progress(table, 0, total)
    copied = 0
    with pg._tx() as cur:
        with cur.copy(f"COPY {table} ({', '.join(target_columns)}) FROM STDIN") as copy:
            for row in _rows(src, table, sqlite_columns):
                values = [convert(value, row[0]) for convert, value in zip(converters, row, strict=True)]
                if key_at is not None:
                    values.append(partition_of(str(row[key_at]), pg.outbox_partitions))
                copy.write_row(values)
                copied += 1
                if copied % _BATCH == 0:
                    progress(table, copied, total)
        cur.execute(
            "INSERT INTO state_import (tbl, source, rows, done_at) VALUES (%s, %s, %s, now())", (table, source, copied)
        )
    progress(table, copied, total)
    return copied


def _advance_sequences(src: sqlite3.Connection, pg: PostgresStore, source: str) -> None:
    given = dict(src.execute("SELECT name, seq FROM sqlite_sequence").fetchall())
    with pg._tx() as cur:
        for table, (column, sequence) in _SEQUENCES.items():
            (highest,) = src.execute(f"SELECT COALESCE(MAX({column}), 0) FROM {table}").fetchone()
            last = max(int(highest), int(given.get(table, 0)))
            if last == 0:
                continue
            if sequence is None:
                cur.execute("SELECT pg_get_serial_sequence(%s, %s)", (table, column))
                row = cur.fetchone()
                assert row is not None
                sequence = row[0]
            cur.execute("SELECT setval(%s, %s)", (sequence, last))
        cur.execute(
            "INSERT INTO state_import (tbl, source, rows, done_at) VALUES ('(sequences)', %s, 0, now())", (source,)
        )
