"""Synchronous access to a localcrm database: opening it, reading it back, and the reply helpers.

The adapter writes through :mod:`scrm_localcrm.writer` in its own worker thread; this
module is for tests, the ``scrm localcrm`` commands and anyone poking at the CRM by hand.
Other processes may use it while the adapter runs: WAL lets readers and one writer work
side by side, and ``busy_timeout`` makes a second writer wait instead of failing.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from scrm_core import CrmObject
from scrm_core.sqlite import use_wal

from .schema import LABEL_CORRECTIONS, OUTBOUND_REPLIES, SPECS, Kind, TableSpec

__all__ = [
    "TABLES",
    "LocalCrmReader",
    "add_label_correction",
    "add_reply",
    "connect",
    "mark_reply_failed",
    "mark_reply_sent",
    "utc_now",
]

#: Every table a person might want to look at, in the order a sink fills them.
TABLES: tuple[str, ...] = (*(spec.table for spec in SPECS.values()), OUTBOUND_REPLIES, LABEL_CORRECTIONS)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def connect(path: str | Path, *, create: bool) -> sqlite3.Connection:
    """Open the database with the pragmas every localcrm connection uses.

    Autocommit mode (``isolation_level=None``): callers open transactions explicitly, so
    a batch is one ``BEGIN IMMEDIATE ... COMMIT`` and nothing is left open by accident.
    Without ``create`` a missing file is an error instead of a new empty database.
    """
    path = Path(path)
    if not create and not path.exists():
        raise FileNotFoundError(f"no localcrm database at {path}")
    uri = f"{path.resolve().as_uri()}?mode={'rwc' if create else 'rw'}"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, cached_statements=512)
    conn.execute("PRAGMA busy_timeout = 5000")
    use_wal(conn)  # the engine's workers and the localcrm commands may open it at once
    # NORMAL in WAL mode: a power cut may lose the last commits but never corrupts the file.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    # Checkpoint every ~40 MB of WAL instead of 4 MB: each checkpoint syncs the file, and
    # at batch speed the default made that a third of the write time. The cache holds the
    # hot part of the external-key indexes.
    conn.execute("PRAGMA wal_autocheckpoint = 10000")
    conn.execute("PRAGMA journal_size_limit = 67108864")
    conn.execute("PRAGMA cache_size = -32768")
    return conn


def _decode(spec: TableSpec, row: sqlite3.Row) -> dict[str, Any]:
    """A row as the fields the engine wrote: typed columns decoded, extra merged in."""
    keys = row.keys()
    out: dict[str, Any] = {}
    for name, kind in spec.columns.items():
        value = row[name]
        if value is not None:
            if kind is Kind.bool:
                value = bool(value)
            elif kind is Kind.json:
                value = orjson.loads(value)
        out[name] = value
    if "extra" in keys and row["extra"]:
        for name, value in orjson.loads(row["extra"]).items():
            out.setdefault(name, value)
    return out


class LocalCrmReader:
    """Read a localcrm database. ``with LocalCrmReader(path) as crm: crm.counts()``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = connect(self.path, create=False)
        self._conn.row_factory = sqlite3.Row

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> LocalCrmReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def counts(self) -> dict[str, int]:
        """Rows per table (``outbound_replies`` included)."""
        return {t: int(self._conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}

    def rows(self, table: str, limit: int = 20) -> list[dict[str, Any]]:
        """The last ``limit`` rows of a table, newest first, every column as stored."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
        cur = self._conn.execute(f"SELECT * FROM {table} ORDER BY id DESC LIMIT ?", (limit,))
        return [dict(row) for row in cur]

    def record(self, obj: CrmObject | str, external_key: str) -> dict[str, Any] | None:
        """One record's fields as the CRM holds them, or None.

        Refs come back under ``"_refs"`` as external keys (``{"contact": "scrm:..."}``),
        the CRM id under ``"_id"``.
        """
        spec = SPECS[CrmObject(obj)]
        row = self._conn.execute(f"SELECT * FROM {spec.table} WHERE external_key = ?", (external_key,)).fetchone()
        if row is None:
            return None
        out = _decode(spec, row)
        refs: dict[str, str] = {}
        for ref, target in spec.refs.items():
            ref_id = row[f"{ref}_id"]
            if ref_id is not None:
                hit = self._conn.execute(f"SELECT external_key FROM {target} WHERE id = ?", (ref_id,)).fetchone()
                if hit is not None:
                    refs[ref] = hit[0]
        out["_refs"] = refs
        out["_id"] = row["id"]
        return out

    def message(self, external_key: str) -> dict[str, Any] | None:
        return self.record(CrmObject.message, external_key)

    def contact(self, external_key: str) -> dict[str, Any] | None:
        return self.record(CrmObject.contact, external_key)

    def count(self, table: str) -> int:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
        return int(self._conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    def recent_cases(self, limit: int = 5) -> list[dict[str, Any]]:
        """Newest cases first, with how many messages each holds."""
        cases = [
            dict(row)
            for row in self._conn.execute("SELECT * FROM cases ORDER BY crm_updated_at DESC, id DESC LIMIT ?", (limit,))
        ]
        # One pass over messages for all of them (messages.case_id has no index).
        counts = dict(
            self._conn.execute(
                "SELECT case_id, count(*) FROM messages WHERE case_id IN (SELECT value FROM json_each(?))"
                " GROUP BY case_id",
                (orjson.dumps([c["id"] for c in cases]).decode(),),
            ).fetchall()
        )
        for case in cases:
            case["message_count"] = counts.get(case["id"], 0)
        return cases

    def recent_messages(self, limit: int = 5) -> list[dict[str, Any]]:
        """The messages most recently added to the CRM, with the author's handle.

        By id, not by ``created_at``: that column has no index (see schema.py), and a scan
        of a million messages to sort them takes seconds.
        """
        cur = self._conn.execute(
            "SELECT m.*, p.handle AS author FROM messages m LEFT JOIN profiles p ON p.id = m.profile_id"
            " ORDER BY m.id DESC LIMIT ?",
            (limit,),
        )
        return [dict(row) for row in cur]


def _find_conversation(conn: sqlite3.Connection, key: str) -> tuple[str, int | None]:
    """(conversation key, case id) for a case external key, case id or conversation key."""
    row = conn.execute("SELECT conversation_key, id FROM cases WHERE external_key = ?", (key,)).fetchone()
    if row is None and key.isdigit():
        row = conn.execute("SELECT conversation_key, id FROM cases WHERE id = ?", (int(key),)).fetchone()
    if row is not None:
        if not row[0]:
            raise LookupError(f"case {key} has no conversation_key, so there is nothing to reply to")
        return str(row[0]), int(row[1])
    # A conversation key, or "scrm:" + conversation key (how the default mapping keys cases).
    conversation_key = key.removeprefix("scrm:")
    case = conn.execute(
        "SELECT id FROM cases WHERE conversation_key = ? ORDER BY id DESC LIMIT 1", (conversation_key,)
    ).fetchone()
    return conversation_key, (int(case[0]) if case else None)


def add_reply(path: str | Path, key: str, text: str, *, in_reply_to: str | None = None) -> int:
    """Queue a reply as an agent would write it in the CRM; returns its id.

    ``key`` is a conversation key (``<network>:<root id>``) or a case (external key or id).
    Without ``in_reply_to`` the reply answers the conversation's latest inbound message.
    """
    if not text.strip():
        raise ValueError("a reply needs some text")
    conn = connect(path, create=False)
    try:
        conversation_key, case_id = _find_conversation(conn, key)
        if in_reply_to is None:
            row = conn.execute(
                "SELECT message_id FROM messages WHERE conversation_key = ? AND direction = 'inbound'"
                " AND coalesce(deleted, 0) = 0 ORDER BY created_at DESC, id DESC LIMIT 1",
                (conversation_key,),
            ).fetchone()
            if row is None:
                raise LookupError(
                    f"no inbound message in conversation {conversation_key!r}; pass a case key, a case id"
                    " or a conversation key that has messages (or give in_reply_to)"
                )
            in_reply_to = str(row[0])
        now = utc_now()
        cur = conn.execute(
            f"INSERT INTO {OUTBOUND_REPLIES} (conversation_key, in_reply_to, text, case_id, crm_created_at,"
            " crm_updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            (conversation_key, in_reply_to, text, case_id, now, now),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid
    finally:
        conn.close()


_LABEL = re.compile(r"[a-z0-9][a-z0-9_.-]*(?::[a-z0-9][a-z0-9_.-]*)?")


def _find_record(conn: sqlite3.Connection, key: str) -> tuple[str, str, int]:
    """(object, external key, row id) of the message or case ``key`` names: a message by its
    external key (``scrm:<network>:<id>``) or its ``<network>:<id>``; else a case by external
    key, conversation key or case id."""
    bare = key.removeprefix("scrm:")
    row = conn.execute("SELECT external_key, id FROM messages WHERE external_key = ?", ("scrm:" + bare,)).fetchone()
    if row is not None:
        return "message", str(row[0]), int(row[1])
    row = conn.execute(
        "SELECT external_key, id FROM cases WHERE external_key = ? OR conversation_key = ? ORDER BY id DESC LIMIT 1",
        ("scrm:" + bare, bare),
    ).fetchone()
    if row is None and key.isdigit():
        row = conn.execute("SELECT external_key, id FROM cases WHERE id = ?", (int(key),)).fetchone()
    if row is None:
        raise LookupError(
            f"no message or case {key!r}: give a message key (scrm:<network>:<id>), a case key, a case id "
            "or a conversation key"
        )
    return "case", str(row[0]), int(row[1])


def add_label_correction(path: str | Path, key: str, label: str, *, by: str | None = None) -> int:
    """Correct a message's or a case's label as an agent would; returns the correction's id.

    ``label`` is ``complaint``, ``question``, ``purchase``, ``praise``, ``spam``, ``none`` (no
    intent), or any label of your own (``intent:cancellation``, ``topic:billing``). The record's
    ``labels`` show the correction at once: the other labels of the same namespace make way.
    """
    label = label.strip().lower()
    if not _LABEL.fullmatch(label):
        raise ValueError(
            f"not a label: {label!r}; use a word such as complaint or none, or namespace:word (intent:cancellation)"
        )
    full = label if ":" in label else f"intent:{label}"
    namespace = full.partition(":")[0]
    conn = connect(path, create=False)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            obj, external_key, row_id = _find_record(conn, key)
            table = "messages" if obj == "message" else "cases"
            current = conn.execute(f"SELECT labels FROM {table} WHERE id = ?", (row_id,)).fetchone()[0]
            labels = [x for x in orjson.loads(current or "[]") if not str(x).startswith(namespace + ":")]
            if not full.endswith(":none"):
                labels.append(full)
            now = utc_now()
            conn.execute(
                f"UPDATE {table} SET labels = ?, crm_updated_at = ? WHERE id = ?",
                (orjson.dumps(labels).decode(), now, row_id),
            )
            cur = conn.execute(
                f"INSERT INTO {LABEL_CORRECTIONS} (object, external_key, label, corrected_by, crm_created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (obj, external_key, full, by, now),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        assert cur.lastrowid is not None
        return cur.lastrowid
    finally:
        conn.close()


def _set_reply_status(conn: sqlite3.Connection, reply_id: int, status: str, **columns: str | None) -> None:
    sets = "".join(f", {name} = :{name}" for name in columns)
    cur = conn.execute(
        f"UPDATE {OUTBOUND_REPLIES} SET status = :status, crm_updated_at = :now{sets} WHERE id = :id",
        {"status": status, "now": utc_now(), "id": reply_id, **columns},
    )
    if cur.rowcount == 0:
        raise LookupError(f"no outbound reply with id {reply_id}")


def mark_reply_sent(
    path_or_conn: str | Path | sqlite3.Connection, reply_id: int, *, network_message_id: str | None = None
) -> None:
    """Record that a reply went out (and the network's id of the posted message)."""
    _with_conn(path_or_conn, lambda c: _set_reply_status(c, reply_id, "sent", network_message_id=network_message_id))


def mark_reply_failed(path_or_conn: str | Path | sqlite3.Connection, reply_id: int, *, error: str) -> None:
    """Record that a reply could not be sent, with the reason an agent should read."""
    _with_conn(path_or_conn, lambda c: _set_reply_status(c, reply_id, "failed", error=error))


def _with_conn(path_or_conn: str | Path | sqlite3.Connection, fn: Callable[[sqlite3.Connection], None]) -> None:
    if isinstance(path_or_conn, sqlite3.Connection):
        fn(path_or_conn)
        return
    conn = connect(path_or_conn, create=False)
    try:
        fn(conn)
    finally:
        conn.close()
