"""What every part of the PostgreSQL store shares: the connection, the transaction helper,
the key encoding, and the few writes several parts make inside their own transactions.

One connection per store, in autocommit mode: a read is one statement; a write is one
``with self._tx():`` block (BEGIN ... COMMIT, ROLLBACK on any error). The store is used
from one thread only (:class:`scrm_core.store.AsyncStore`), so the connection is never
shared. Statements are prepared by the server after their first uses (psycopg's
``prepare_threshold``), and the writes of a page go out in one pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg

from scrm_core.errors import FatalError
from scrm_core.models import Conversation, CrmObject, CrmOperation, SocialProfile
from scrm_core.redaction import redact
from scrm_core.store import AuditEntry, Lease, LeaseLost
from scrm_core.store.base import partition_of

__all__ = ["PgBase", "esc", "unesc"]

# PostgreSQL's text cannot hold NUL, which a network's ids may contain. Keys are stored
# with NUL written as U+FFFF "0" and U+FFFF itself as U+FFFF "1": a one-to-one encoding
# that keeps prefixes (a key's prefix query stays a prefix query) and leaves every key
# without either character (all of them, in practice) as it is.
_ESC = "\uffff"


def esc(key: str) -> str:
    if "\x00" not in key and _ESC not in key:
        return key
    return key.replace(_ESC, _ESC + "1").replace("\x00", _ESC + "0")


def unesc(key: str) -> str:
    if _ESC not in key:
        return key
    return key.replace(_ESC + "0", "\x00").replace(_ESC + "1", _ESC)


OBJECT_VALUE: dict[CrmObject, str] = {obj: obj.value for obj in CrmObject}
VALUE_OBJECT: dict[str, CrmObject] = {obj.value: obj for obj in CrmObject}
dump_conversation = Conversation.__pydantic_serializer__.to_json
dump_profile = SocialProfile.__pydantic_serializer__.to_json
validate_profile = SocialProfile.__pydantic_validator__.validate_json
validate_conversation = Conversation.__pydantic_validator__.validate_json
DECODE_ERRORS = (ValueError, TypeError, KeyError)


def utcnow() -> datetime:
    return datetime.now(UTC)


def op_json(op: CrmOperation) -> str:
    return orjson.dumps(
        {"object": op.object.value, "external_key": op.external_key, "fields": op.fields, "refs": op.refs}
    ).decode()


def op_from_json(raw: str) -> CrmOperation:
    d = orjson.loads(raw)
    return make_op(d["object"], d["external_key"], d["fields"], d["refs"])


def make_op(obj: str, key: str, fields: Any, refs: Any) -> CrmOperation:
    # model_construct skips validation: these values were written by this store.
    return CrmOperation.model_construct(object=CrmObject(obj), external_key=key, fields=fields, refs=refs)


def op_from_row(obj: str, key: str, fields: str, refs: str) -> CrmOperation:
    return make_op(obj, unesc(key), orjson.loads(fields), orjson.loads(refs))


def damaged(table: str, key: object, exc: Exception) -> FatalError:
    return FatalError(
        f"state store: row {key!r} of table {table!r} cannot be read ({type(exc).__name__}); "
        "the database is damaged: restore a backup or delete that row",
        detail=str(exc),
    )


def decode(table: str, key: object, parse: Any, *raw: Any) -> Any:
    try:
        return parse(*raw)
    except DECODE_ERRORS as exc:
        raise damaged(table, key, exc) from exc


class PgBase:
    """The connection and helpers every part of :class:`~scrm_postgres.PostgresStore` uses."""

    #: The URL without its password, for messages.
    path: str
    _conn: psycopg.Connection[Any]
    #: Outbox partitions: the fleet's sinks each drain the partitions whose lease they hold.
    #: Fixed: a row's partition is computed when it is queued (a store constant, never a setting).
    outbox_partitions: int = 16

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._conn.transaction(), self._conn.cursor() as cur:
            yield cur

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        with self._conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def _one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        with self._conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone()

    @staticmethod
    def _returned(cur: psycopg.Cursor[Any]) -> Any:
        """The one value a ``... RETURNING x`` that always returns a row returned."""
        row = cur.fetchone()
        assert row is not None, "RETURNING gave no row"
        return row[0]

    # -- writes several parts make inside their own transactions

    @staticmethod
    def _insert_audit(cur: psycopg.Cursor[Any], entries: Sequence[AuditEntry], at: datetime) -> None:
        if entries:
            cur.executemany(
                "INSERT INTO audit_log (at, action, subject, detail) VALUES (%s, %s, %s, %s)",
                [(at, e.action, esc(e.subject), redact(e.detail)) for e in entries],
            )

    def _queue(self, cur: psycopg.Cursor[Any], ops: Sequence[CrmOperation], at: datetime) -> list[int]:
        """Append ``ops`` to the outbox; their seqs, in order."""
        if not ops:
            return []
        cur.execute("SELECT nextval('outbox_seq') FROM generate_series(1, %s)", (len(ops),))
        seqs = sorted(row[0] for row in cur.fetchall())
        parts = self.outbox_partitions
        dumps = orjson.dumps
        cur.execute(
            "INSERT INTO outbox (seq, object, external_key, fields, refs, created_at, part)"
            " SELECT s, o, k, f, r, %s, p FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::text[], %b::text[],"
            " %b::smallint[]) AS t(s, o, k, f, r, p)",
            (
                at,
                seqs,
                [OBJECT_VALUE[op.object] for op in ops],
                [esc(op.external_key) for op in ops],
                [dumps(op.fields).decode() for op in ops],
                [dumps(op.refs).decode() for op in ops],
                [partition_of(op.external_key, parts) for op in ops],
            ),
        )
        return seqs

    @staticmethod
    def _save_checkpoint(cur: psycopg.Cursor[Any], source: str, cursor: str | None, events: int, at: datetime) -> None:
        cur.execute(
            "INSERT INTO checkpoints (source, cursor, updated_at, events) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at,"
            " events = checkpoints.events + excluded.events",
            (source, cursor, at, events),
        )
        # The store's clock, as everything `scrm status` compares it with (pruned by the heartbeats).
        cur.execute("INSERT INTO commit_log (source, at, events) VALUES (%s, now(), %s)", (source, events))

    @staticmethod
    def _fence(cur: psycopg.Cursor[Any], lease: Lease | None) -> None:
        """Refuse the transaction unless ``lease`` is still in force; while it runs, the lease
        row is locked, so a takeover waits for it (and then reads what it committed)."""
        if lease is None:
            return
        cur.execute(
            "SELECT 1 FROM leases WHERE name = %s AND holder = %s AND token = %s AND expires_at > now() FOR SHARE",
            (lease.name, lease.holder, lease.token),
        )
        if cur.fetchone() is None:
            raise LeaseLost(lease.name)

    def _crm_ids(self, obj: CrmObject, external_keys: Sequence[str]) -> dict[str, str]:
        if not external_keys:
            return {}
        rows = self._rows(
            "SELECT external_key, crm_id FROM crm_ids WHERE object = %s AND external_key = ANY(%b::text[])",
            (obj.value, [esc(k) for k in external_keys]),
        )
        return {unesc(k): v for k, v in rows}
