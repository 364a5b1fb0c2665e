"""What every part of the SQLite store shares: the connection, the transaction helper, the
encodings of stored values, and the few writes several parts make (audit entries, outbox
rows, checkpoints) inside their own transactions.

Each public method of a part is one transaction. Writes use ``BEGIN IMMEDIATE`` so a
second process waits on ``busy_timeout`` at the start instead of failing half-way with
SQLITE_BUSY. The connection is used from one thread only (see
:class:`scrm_core.store.AsyncStore`).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from scrm_core.errors import FatalError
from scrm_core.models import Conversation, CrmObject, CrmOperation, SocialProfile
from scrm_core.redaction import redact
from scrm_core.store.records import AuditEntry

__all__ = ["SqliteBase"]

T = TypeVar("T")

# Keys per ``IN (...)`` query: far below SQLite's bound-variable limit on every build.
CHUNK = 500

INSERT_OUTBOX_HEAD = "INSERT INTO outbox (object, external_key, fields, refs, created_at)"
INSERT_OUTBOX = INSERT_OUTBOX_HEAD + " VALUES (?, ?, ?, ?, ?)"
INSERT_AUDIT = "INSERT INTO audit_log (at, action, subject, detail) VALUES (?, ?, ?, ?)"
UPSERT_CHECKPOINT = """
    INSERT INTO checkpoints (source, cursor, updated_at, events) VALUES (?, ?, ?, ?)
    ON CONFLICT (source) DO UPDATE SET
        cursor = excluded.cursor, updated_at = excluded.updated_at, events = events + excluded.events
"""

# Binding values: sqlite3 binds int, float, str and bytearray directly, but looks for an
# adapter first for anything else (None, bool, bytes), which costs ~0.4 us per value. So
# bools go in as ints and JSON as bytearray (stored as a BLOB, exactly as bytes are).
#
# ``op.object.value`` goes through the enum's property machinery; a dict lookup is 3x faster.
OBJECT_VALUE: dict[CrmObject, str] = {obj: obj.value for obj in CrmObject}
VALUE_OBJECT: dict[str, CrmObject] = {obj.value: obj for obj in CrmObject}
dump_conversation = Conversation.__pydantic_serializer__.to_json  # what model_dump_json calls
dump_profile = SocialProfile.__pydantic_serializer__.to_json
# What model_validate_json calls, without its Python wrapper.
validate_profile = SocialProfile.__pydantic_validator__.validate_json
validate_conversation = Conversation.__pydantic_validator__.validate_json
DECODE_ERRORS = (ValueError, TypeError, KeyError)


def now() -> str:
    return datetime.now(UTC).isoformat()


def op_json(op: CrmOperation) -> bytes:
    return orjson.dumps(
        {"object": op.object.value, "external_key": op.external_key, "fields": op.fields, "refs": op.refs}
    )


def op_from_json(raw: str | bytes) -> CrmOperation:
    d = orjson.loads(raw)
    return make_op(d["object"], d["external_key"], d["fields"], d["refs"])


def op_from_row(obj: str, key: str, fields: str, refs: str) -> CrmOperation:
    return make_op(obj, key, orjson.loads(fields), orjson.loads(refs))


def make_op(obj: str, key: str, fields: Any, refs: Any) -> CrmOperation:
    # model_construct skips validation: these values were written by this store.
    return CrmOperation.model_construct(object=CrmObject(obj), external_key=key, fields=fields, refs=refs)


def damaged(table: str, key: object, exc: Exception) -> FatalError:
    return FatalError(
        f"state store: row {key!r} of table {table!r} cannot be read ({type(exc).__name__}); "
        "the database is damaged: restore a backup or delete that row",
        detail=str(exc),
    )


def decode(table: str, key: object, parse: Callable[..., T], *raw: Any) -> T:
    """``parse(*raw)`` for data stored in a row; a failure names the damaged row."""
    try:
        return parse(*raw)
    except DECODE_ERRORS as exc:
        raise damaged(table, key, exc) from exc


def json_keys(keys: Sequence[str]) -> str | None:
    """``keys`` as a JSON array for json_each, or None if they must be bound one by one:
    SQLite's JSON functions cut a string at NUL, and orjson refuses lone surrogates
    (binding them raises the error callers have always seen)."""
    try:
        payload = orjson.dumps(keys)
    except TypeError:  # not a list or tuple, or a str that is not valid UTF-8
        return None
    return None if b"\\u0000" in payload else payload.decode()


@functools.cache
def multi_row_inserts(head: str, width: int) -> tuple[tuple[int, str], ...]:
    """(rows, SQL) of multi-row INSERTs for ``head VALUES ...``, largest first: 128, 64, ...,
    1 rows, each with at most 999 bound variables (the smallest limit any SQLite build has)."""
    row = "(" + ", ".join("?" * width) + ")"
    return tuple(
        (k, f"{head} VALUES {', '.join([row] * k)}") for k in (128, 64, 32, 16, 8, 4, 2, 1) if k * width <= 999
    )


_BY_KEY: dict[tuple[str, str], str] = {}  # SQL of SqliteBase._by_key per (table, columns)


class SqliteBase:
    """The connection and helpers every part of :class:`~scrm.sqlite.SqliteStore` uses."""

    path: str
    _conn: sqlite3.Connection

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:  # some errors already rolled back
                self._conn.execute("ROLLBACK")
            raise

    def _insert_rows(self, head: str, width: int, flat: list[Any]) -> None:
        """``head VALUES (?, ...), (?, ...), ...`` for rows of ``width`` values laid end to end
        in ``flat``: a few statements of 128, 64, ... rows rather than one per row. Rows go
        in in order; AUTOINCREMENT updates sqlite_sequence once per statement, not per row."""
        n, i = len(flat) // width, 0
        for k, sql in multi_row_inserts(head, width):
            while n - i >= k:
                self._conn.execute(sql, flat[i * width : (i + k) * width])
                i += k

    def _by_key(self, table: str, columns: str, keys: Sequence[str]) -> Iterator[Any]:
        """``columns`` of the rows of ``table`` whose ``key`` is in ``keys`` (in no set order).

        The keys go in as ONE JSON array that json_each walks, each looked up by primary
        key: a third cheaper per key than ``IN (?, ?, ...)``, which binds every key and
        sorts them into a temporary index first."""
        if not keys:
            return iter(())
        payload = json_keys(keys)
        if payload is None:
            return self._select_in(f"SELECT {columns} FROM {table} WHERE key IN ({{marks}})", keys)
        sql = _BY_KEY.get((table, columns))
        if sql is None:
            t_columns = ", ".join(f"t.{c.strip()}" for c in columns.split(","))
            sql = _BY_KEY[table, columns] = (
                f"SELECT {t_columns} FROM json_each(?) AS j CROSS JOIN {table} AS t ON t.key = j.value"
            )
        return self._conn.execute(sql, (payload,))

    def _select_in(self, sql: str, keys: Sequence[Any], *params: Any) -> Iterator[Any]:
        """Rows of ``sql`` (whose ``{marks}`` becomes ``?, ?, ...``) for ``keys``, in chunks."""
        for i in range(0, len(keys), CHUNK):
            chunk = keys[i : i + CHUNK]
            yield from self._conn.execute(sql.format(marks=",".join("?" * len(chunk))), (*params, *chunk))

    # -- writes several parts make inside their own transactions

    def _insert_audit(self, entries: Sequence[AuditEntry], at: str) -> None:
        self._conn.executemany(INSERT_AUDIT, [(at, e.action, e.subject, redact(e.detail)) for e in entries])

    def _queue(self, ops: Sequence[CrmOperation], at: str) -> None:
        """Append ``ops`` to the outbox."""
        dumps = orjson.dumps
        self._conn.executemany(
            INSERT_OUTBOX,
            [(OBJECT_VALUE[op.object], op.external_key, dumps(op.fields), dumps(op.refs), at) for op in ops],
        )

    def _crm_ids(self, obj: CrmObject, external_keys: Sequence[str]) -> dict[str, str]:
        sql = "SELECT external_key, crm_id FROM crm_ids WHERE object = ? AND external_key IN ({marks})"
        return dict(self._select_in(sql, external_keys, obj.value))

    def _save_checkpoint(self, source: str, cursor: str | None, events: int, at: str) -> None:
        self._conn.execute(UPSERT_CHECKPOINT, (source, cursor, at, events))
