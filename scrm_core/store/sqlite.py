"""The embedded state store: one SQLite file in WAL mode (the default, ``sqlite:///scrm.db``).

Each public method is one transaction. Writes use ``BEGIN IMMEDIATE`` so a second process
waits on ``busy_timeout`` at the start instead of failing half-way with SQLITE_BUSY.
The connection is used from one thread only (see :class:`scrm_core.store.AsyncStore`).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson

from ..errors import FatalError
from ..models import Conversation, CrmObject, CrmOperation, SocialProfile, external_key
from ..redaction import redact
from .base import (
    AuditEntry,
    Checkpoint,
    DeadLetter,
    ErasePlan,
    IdentityLink,
    LabelExample,
    LinkStatus,
    MessageRecord,
    NewDeadLetter,
    NewLabelExample,
    NewReply,
    OutboxItem,
    PageCommit,
    PendingLink,
    PersonView,
    ProfileRecord,
    ReplyRecord,
    ReplyStatus,
    Settlement,
    StateStore,
    StoredModel,
    StoredWebhook,
)
from .erase import ERASED, erase_traces, identity_of
from .errors import storage_error
from .lock import WriterLock

__all__ = ["MIGRATIONS", "SqliteStore"]

T = TypeVar("T")

# Keys per ``IN (...)`` query: far below SQLite's bound-variable limit on every build.
_CHUNK = 500

# Schema migrations, in order: MIGRATIONS[i] takes the schema from version i to i + 1.
# Never edit one that has shipped; append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE checkpoints (
        source TEXT PRIMARY KEY,
        cursor TEXT,
        updated_at TEXT NOT NULL,
        events INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE seen_events (key TEXT PRIMARY KEY) WITHOUT ROWID;
    CREATE TABLE profiles (
        key TEXT PRIMARY KEY,
        person_key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX profiles_person_key ON profiles (person_key);
    -- started_by is copied out of the JSON so erase can find a person's threads by index.
    CREATE TABLE conversations (
        key TEXT PRIMARY KEY,
        started_by TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX conversations_started_by ON conversations (started_by);
    -- No foreign key to conversations: an edit or deletion can index a message whose
    -- thread the store never saw, and erase removes threads but not others' replies.
    -- No index on author_key: it would cost ~20% of commit_page on the hot path, for
    -- erase_person alone, which is rare and can afford a scan.
    CREATE TABLE messages (
        key TEXT PRIMARY KEY,
        conversation_key TEXT NOT NULL,
        author_key TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        in_crm INTEGER NOT NULL DEFAULT 1
    ) WITHOUT ROWID;
    -- AUTOINCREMENT: seqs are never reused, even after the outbox empties, so a sink's
    -- "after_seq" watermark can never skip a new row.
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        object TEXT NOT NULL,
        external_key TEXT NOT NULL,
        fields TEXT NOT NULL,
        refs TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE TABLE crm_ids (
        object TEXT NOT NULL,
        external_key TEXT NOT NULL,
        crm_id TEXT NOT NULL,
        PRIMARY KEY (object, external_key)
    ) WITHOUT ROWID;
    CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT NOT NULL,
        reason TEXT NOT NULL,
        locator TEXT NOT NULL DEFAULT '',
        op TEXT,
        payload TEXT NOT NULL DEFAULT '',
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        action TEXT NOT NULL,
        subject TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE identity_links (
        id INTEGER PRIMARY KEY,
        profile_key TEXT NOT NULL REFERENCES profiles (key) ON DELETE CASCADE,
        person_key TEXT NOT NULL,
        evidence TEXT NOT NULL,
        verified INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        undone_at TEXT
    );
    CREATE INDEX identity_links_profile_key ON identity_links (profile_key);
    CREATE INDEX identity_links_person_key ON identity_links (person_key);
    """,
    # 2: identity links become suggestions an operator accepts or rejects, and remember
    # the person they replaced so an undo restores it.
    """
    ALTER TABLE identity_links ADD COLUMN status TEXT NOT NULL DEFAULT 'linked';
    ALTER TABLE identity_links ADD COLUMN previous_person_key TEXT;
    """,
    # 3: webhook payloads kept before the receiver answers 2xx, and the replies going out.
    """
    CREATE TABLE webhook_inbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT NOT NULL,
        digest TEXT NOT NULL,
        headers TEXT NOT NULL,
        body BLOB NOT NULL,
        received_at TEXT NOT NULL,
        UNIQUE (source, digest)
    );
    CREATE INDEX webhook_inbox_source ON webhook_inbox (source, id);
    CREATE TABLE replies (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        idempotency_key TEXT NOT NULL UNIQUE,
        origin TEXT NOT NULL,
        crm_id TEXT,
        conversation_key TEXT NOT NULL,
        in_reply_to TEXT NOT NULL,
        text TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'held', 'sending', 'sent', 'refused', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        approved INTEGER NOT NULL DEFAULT 0,
        claimed_at TEXT,
        network_message_id TEXT,
        error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX replies_status ON replies (status, id);
    """,
    # 4: agents' label corrections kept as labelled examples, and the models trained on them.
    """
    CREATE TABLE label_examples (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        message_key TEXT NOT NULL,
        namespace TEXT NOT NULL,
        label TEXT NOT NULL,
        text TEXT NOT NULL,
        language TEXT,
        source TEXT NOT NULL,
        crm_id TEXT,
        corrected_at TEXT,
        stored_at TEXT NOT NULL,
        UNIQUE (message_key, namespace)
    );
    CREATE TABLE classifier_models (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        data BLOB NOT NULL,
        report TEXT NOT NULL,
        trained_until INTEGER NOT NULL,
        active INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL
    );
    CREATE INDEX classifier_models_name ON classifier_models (name, active, id);
    """,
    # 5: the dead-letter queue says whether a retry can work (the CRM's code, the fix);
    # references left out because their target was refused wait in pending_links; each
    # adapter has a small durable key-value area; a message remembers its version so an
    # older edit delivered late is not applied over a newer one.
    """
    ALTER TABLE dead_letters ADD COLUMN code TEXT;
    ALTER TABLE dead_letters ADD COLUMN retryable INTEGER;
    ALTER TABLE dead_letters ADD COLUMN fix TEXT NOT NULL DEFAULT '';
    CREATE TABLE pending_links (
        child_object TEXT NOT NULL,
        child_key TEXT NOT NULL,
        ref TEXT NOT NULL,
        parent_object TEXT NOT NULL,
        parent_key TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (child_object, child_key, ref)
    );
    CREATE INDEX pending_links_parent ON pending_links (parent_object, parent_key);
    CREATE TABLE adapter_state (
        adapter TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (adapter, key)
    ) WITHOUT ROWID;
    ALTER TABLE messages ADD COLUMN version TEXT;
    """,
]

_UPSERT_PROFILE = """
    INSERT INTO profiles (key, person_key, fingerprint, data) VALUES (?, ?, ?, ?)
    ON CONFLICT (key) DO UPDATE SET
        person_key = excluded.person_key, fingerprint = excluded.fingerprint, data = excluded.data
"""
_UPSERT_CONVERSATION = """
    INSERT INTO conversations (key, started_by, data) VALUES (?, ?, ?)
    ON CONFLICT (key) DO UPDATE SET started_by = excluded.started_by, data = excluded.data
"""
_UPSERT_MESSAGE = """
    INSERT INTO messages (key, conversation_key, author_key, deleted, in_crm, version) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (key) DO UPDATE SET
        conversation_key = excluded.conversation_key, author_key = excluded.author_key,
        deleted = excluded.deleted, in_crm = excluded.in_crm, version = excluded.version
"""
_INSERT_OUTBOX_HEAD = "INSERT INTO outbox (object, external_key, fields, refs, created_at)"
_INSERT_OUTBOX = _INSERT_OUTBOX_HEAD + " VALUES (?, ?, ?, ?, ?)"
_INSERT_DEAD_LETTER = """
    INSERT INTO dead_letters (source, reason, locator, op, payload, attempts, created_at, code, retryable, fix)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_INSERT_AUDIT = "INSERT INTO audit_log (at, action, subject, detail) VALUES (?, ?, ?, ?)"
_UPSERT_CHECKPOINT = """
    INSERT INTO checkpoints (source, cursor, updated_at, events) VALUES (?, ?, ?, ?)
    ON CONFLICT (source) DO UPDATE SET
        cursor = excluded.cursor, updated_at = excluded.updated_at, events = events + excluded.events
"""
# A refused outbox row becomes a sink dead letter without a round trip through Python;
# the op JSON has the same shape as _op_json's.
_OUTBOX_TO_DEAD_LETTER = """
    INSERT INTO dead_letters (source, reason, locator, op, payload, attempts, created_at, code, retryable, fix)
    SELECT 'sink', ?, external_key,
           json_object('object', object, 'external_key', external_key,
                       'fields', json(fields), 'refs', json(refs)),
           '', attempts + 1, ?, ?, ?, ?
    FROM outbox WHERE seq = ?
"""


_REPLY_COLUMNS = (
    "id, idempotency_key, origin, crm_id, conversation_key, in_reply_to, text, status, attempts, approved,"
    " network_message_id, error, created_at, updated_at"
)


def _reply(row: Sequence[Any]) -> ReplyRecord:
    (id_, key, origin, crm_id, conv, parent, text, status, attempts, approved, net_id, error, created, updated) = row
    return ReplyRecord(
        idempotency_key=key,
        origin=origin,
        conversation_key=conv,
        in_reply_to=parent,
        text=text,
        crm_id=crm_id,
        id=id_,
        status=ReplyStatus(status),
        attempts=attempts,
        approved=bool(approved),
        network_message_id=net_id,
        error=error,
        created_at=_decode("replies", id_, datetime.fromisoformat, created),
        updated_at=_decode("replies", id_, datetime.fromisoformat, updated),
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()


# Binding values: sqlite3 binds int, float, str and bytearray directly, but looks for an
# adapter first for anything else (None, bool, bytes), which costs ~0.4 us per value. So
# bools go in as ints and JSON as bytearray (stored as a BLOB, exactly as bytes are).
#
# ``op.object.value`` goes through the enum's property machinery; a dict lookup is 3x faster.
_OBJECT_VALUE: dict[CrmObject, str] = {obj: obj.value for obj in CrmObject}
_VALUE_OBJECT: dict[str, CrmObject] = {obj.value: obj for obj in CrmObject}
_dump_conversation = Conversation.__pydantic_serializer__.to_json  # what model_dump_json calls
_dump_profile = SocialProfile.__pydantic_serializer__.to_json


@functools.cache
def _multi_row_inserts(head: str, width: int) -> tuple[tuple[int, str], ...]:
    """(rows, SQL) of multi-row INSERTs for ``head VALUES ...``, largest first: 128, 64, ...,
    1 rows, each with at most 999 bound variables (the smallest limit any SQLite build has)."""
    row = "(" + ", ".join("?" * width) + ")"
    return tuple(
        (k, f"{head} VALUES {', '.join([row] * k)}") for k in (128, 64, 32, 16, 8, 4, 2, 1) if k * width <= 999
    )


def _op_json(op: CrmOperation) -> bytes:
    return orjson.dumps(
        {"object": op.object.value, "external_key": op.external_key, "fields": op.fields, "refs": op.refs}
    )


def _op_from_json(raw: str | bytes) -> CrmOperation:
    d = orjson.loads(raw)
    return _op(d["object"], d["external_key"], d["fields"], d["refs"])


def _op_row(obj: str, key: str, fields: str, refs: str) -> CrmOperation:
    return _op(obj, key, orjson.loads(fields), orjson.loads(refs))


def _op(obj: str, key: str, fields: Any, refs: Any) -> CrmOperation:
    # model_construct skips validation: these values were written by this store.
    return CrmOperation.model_construct(object=CrmObject(obj), external_key=key, fields=fields, refs=refs)


def _runs(seqs: Sequence[int]) -> list[tuple[int, int]]:
    """``seqs`` as (first, last) ranges of consecutive ints, covering exactly the same set."""
    runs: list[tuple[int, int]] = []
    it = iter(sorted(seqs))
    for first in it:
        last = first
        for seq in it:
            if seq > last + 1:
                runs.append((first, last))
                first = seq
            last = seq
        runs.append((first, last))
    return runs


_DECODE_ERRORS = (ValueError, TypeError, KeyError)
# What model_validate_json calls, without its Python wrapper.
_validate_profile = SocialProfile.__pydantic_validator__.validate_json
_validate_conversation = Conversation.__pydantic_validator__.validate_json
_BY_KEY: dict[tuple[str, str], str] = {}  # SQL of _by_key per (table, columns)


def _json_keys(keys: Sequence[str]) -> str | None:
    """``keys`` as a JSON array for json_each, or None if they must be bound one by one:
    SQLite's JSON functions cut a string at NUL, and orjson refuses lone surrogates
    (binding them raises the error callers have always seen)."""
    try:
        payload = orjson.dumps(keys)
    except TypeError:  # not a list or tuple, or a str that is not valid UTF-8
        return None
    return None if b"\\u0000" in payload else payload.decode()


def _damaged(table: str, key: object, exc: Exception) -> FatalError:
    return FatalError(
        f"state store: row {key!r} of table {table!r} cannot be read ({type(exc).__name__}); "
        "the database is damaged: restore a backup or delete that row",
        detail=str(exc),
    )


def _decode(table: str, key: object, parse: Callable[..., T], *raw: Any) -> T:
    """``parse(*raw)`` for data stored in a row; a failure names the damaged row."""
    try:
        return parse(*raw)
    except _DECODE_ERRORS as exc:
        raise _damaged(table, key, exc) from exc


def _statements(script: str) -> Iterator[str]:
    """Split a migration script into statements (``execute`` runs one at a time, and
    ``executescript`` would commit the migration's transaction early)."""
    stmt = ""
    for part in script.split(";"):
        stmt += part + ";"
        if sqlite3.complete_statement(stmt):  # False while inside a string or a trigger body
            if stmt.strip(" \t\n;"):
                yield stmt
            stmt = ""


S = TypeVar("S", bound=type)


def _storage_errors(cls: S) -> S:
    """Every public method (and the constructor) turns a storage failure (disk full, read-only,
    missing folder, damage) into a :class:`~scrm_core.store.errors.StorageError` that names
    the file and the fix, instead of SQLite's path-less one-liner."""

    def guard(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except (sqlite3.Error, OSError) as exc:
                error = storage_error(getattr(self, "path", "?"), exc)
                if error is None:
                    raise
                raise error from exc

        return guarded

    for name, member in list(vars(cls).items()):
        if callable(member) and (not name.startswith("_") or name == "__init__"):
            setattr(cls, name, guard(member))
    return cls


@_storage_errors
class SqliteStore(StateStore):
    """:class:`StateStore` on one SQLite file (or ``":memory:"``). Call :meth:`migrate` first."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._writer = WriterLock(self.path) if self.path != ":memory:" else None
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; _tx() says where they begin and end.
        self._conn = sqlite3.connect(self.path, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode fsyncs at checkpoints, not at every commit: a committed page
        # survives a crash of the process (the promise scrm makes), but a power loss or OS
        # crash may lose the last few transactions. Sources re-deliver from the older
        # cursor then, and upserts by external key keep that harmless.
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("PRAGMA busy_timeout = 10000")
        self._conn.execute("PRAGMA foreign_keys = ON")
        # 32 MB of page cache instead of 2: lookups and upserts go by random keys all over
        # the seen-event, message and CRM-id indexes (measured: ~5% less CPU per event).
        self._conn.execute("PRAGMA cache_size = -32768")

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
        for k, sql in _multi_row_inserts(head, width):
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
        payload = _json_keys(keys)
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
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i : i + _CHUNK]
            yield from self._conn.execute(sql.format(marks=",".join("?" * len(chunk))), (*params, *chunk))

    # -- schema

    def migrate(self) -> int:
        with self._tx() as c:
            c.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT)")
            current: int = c.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
            if current > len(MIGRATIONS):
                raise FatalError(
                    f"the state store {self.path} has schema version {current}, but this scrm only "
                    f"knows versions up to {len(MIGRATIONS)}: it was written by a newer scrm. "
                    "Upgrade scrm to use it."
                )
            for version in range(current + 1, len(MIGRATIONS) + 1):
                for stmt in _statements(MIGRATIONS[version - 1]):
                    c.execute(stmt)
                c.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, _now()))
        return max(current, len(MIGRATIONS))

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            if self._writer is not None:
                self._writer.release()

    def claim_writer(self) -> None:
        if self._writer is not None:
            self._writer.acquire()

    # -- webhooks

    def store_webhook(self, source: str, digest: str, headers: Mapping[str, str], body: bytes) -> int | None:
        # The 200 that follows tells the network to forget the payload: this one commit is
        # fsynced (WAL with synchronous=NORMAL survives a process crash, not a power cut).
        self._conn.execute("PRAGMA synchronous = FULL")
        try:
            return self._insert_webhook(source, digest, headers, body)
        finally:
            self._conn.execute("PRAGMA synchronous = NORMAL")

    def _insert_webhook(self, source: str, digest: str, headers: Mapping[str, str], body: bytes) -> int | None:
        with self._tx() as c:
            cur = c.execute(
                "INSERT OR IGNORE INTO webhook_inbox (source, digest, headers, body, received_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (source, digest, orjson.dumps(dict(headers)).decode(), body, _now()),
            )
            return cur.lastrowid if cur.rowcount else None

    def stored_webhooks(self, source: str, after_id: int, limit: int) -> list[StoredWebhook]:
        rows = self._conn.execute(
            "SELECT id, headers, body, received_at FROM webhook_inbox WHERE source = ? AND id > ? ORDER BY id LIMIT ?",
            (source, after_id, limit),
        )
        return [
            StoredWebhook(
                id_,
                source,
                _decode("webhook_inbox", id_, orjson.loads, headers),
                bytes(body),
                _decode("webhook_inbox", id_, datetime.fromisoformat, at),
            )
            for id_, headers, body, at in rows
        ]

    def prune_webhooks(self, source: str, up_to_id: int, received_before: datetime) -> int:
        with self._tx() as c:
            cur = c.execute(
                "DELETE FROM webhook_inbox WHERE source = ? AND id <= ? AND received_at < ?",
                (source, up_to_id, received_before.astimezone(UTC).isoformat()),
            )
            return cur.rowcount

    # -- replies

    def enqueue_replies(
        self, replies: Sequence[NewReply], *, checkpoint: tuple[str, str | None] | None = None
    ) -> list[ReplyRecord]:
        now = _now()
        with self._tx() as c:
            c.executemany(
                "INSERT OR IGNORE INTO replies (idempotency_key, origin, crm_id, conversation_key, in_reply_to, text,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (r.idempotency_key, r.origin, r.crm_id, r.conversation_key, r.in_reply_to, r.text, now, now)
                    for r in replies
                ],
            )
            if checkpoint is not None:
                c.execute(_UPSERT_CHECKPOINT, (checkpoint[0], checkpoint[1], now, len(replies)))
            keys = [r.idempotency_key for r in replies]
            rows = list(
                self._select_in(f"SELECT {_REPLY_COLUMNS} FROM replies WHERE idempotency_key IN ({{marks}})", keys)
            )
        by_key = {row[1]: _reply(row) for row in rows}
        return [by_key[k] for k in keys]

    def replies(self, statuses: Sequence[ReplyStatus] = (), limit: int = 100) -> list[ReplyRecord]:
        if statuses:
            marks = ",".join("?" * len(statuses))
            sql = f"SELECT {_REPLY_COLUMNS} FROM replies WHERE status IN ({marks}) ORDER BY id LIMIT ?"
            rows = self._conn.execute(sql, (*[s.value for s in statuses], limit))
        else:
            rows = self._conn.execute(f"SELECT {_REPLY_COLUMNS} FROM replies ORDER BY id LIMIT ?", (limit,))
        return [_reply(row) for row in rows]

    def reply(self, reply_id: int) -> ReplyRecord:
        row = self._conn.execute(f"SELECT {_REPLY_COLUMNS} FROM replies WHERE id = ?", (reply_id,)).fetchone()
        if row is None:
            raise KeyError(reply_id)
        return _reply(row)

    def claim_reply(self, reply_id: int, lease_seconds: float) -> ReplyRecord | None:
        now = datetime.now(UTC)
        expired = (now - timedelta(seconds=lease_seconds)).isoformat()
        with self._tx() as c:
            cur = c.execute(
                "UPDATE replies SET status = 'sending', attempts = attempts + 1, claimed_at = ?, updated_at = ?"
                " WHERE id = ? AND (status = 'pending' OR (status = 'sending' AND claimed_at < ?))",
                (now.isoformat(), now.isoformat(), reply_id, expired),
            )
            if not cur.rowcount:
                return None
        return self.reply(reply_id)

    def update_reply(
        self,
        reply_id: int,
        status: ReplyStatus,
        *,
        text: str | None = None,
        network_message_id: str | None = None,
        error: str | None = None,
        approved: bool | None = None,
        audit: Sequence[AuditEntry] = (),
    ) -> ReplyRecord:
        now = _now()
        with self._tx() as c:
            cur = c.execute(
                "UPDATE replies SET status = ?, text = COALESCE(?, text),"
                " network_message_id = COALESCE(?, network_message_id), error = ?,"
                " approved = COALESCE(?, approved), updated_at = ?,"
                " claimed_at = CASE WHEN ? = 'sending' THEN claimed_at END WHERE id = ?",
                (
                    status.value,
                    text,
                    network_message_id,
                    None if error is None else redact(error),
                    None if approved is None else int(approved),
                    now,
                    status.value,
                    reply_id,
                ),
            )
            if not cur.rowcount:
                raise KeyError(reply_id)
            if audit:
                self._insert_audit(audit, now)
        return self.reply(reply_id)

    # -- checkpoints and dedup

    def checkpoint(self, source: str) -> str | None:
        row = self._conn.execute("SELECT cursor FROM checkpoints WHERE source = ?", (source,)).fetchone()
        if row is None:
            return None
        cursor: str | None = row[0]
        return cursor

    def checkpoints(self) -> list[Checkpoint]:
        rows = self._conn.execute("SELECT source, cursor, updated_at, events FROM checkpoints ORDER BY source")
        return [
            Checkpoint(source, cursor, _decode("checkpoints", source, datetime.fromisoformat, at), events)
            for source, cursor, at, events in rows
        ]

    def unseen(self, event_keys: Sequence[str]) -> set[str]:
        seen = {k for (k,) in self._by_key("seen_events", "key", event_keys)}
        return set(event_keys) - seen

    # -- lookups

    def profiles(self, keys: Sequence[str]) -> dict[str, ProfileRecord]:
        validate = _validate_profile
        found: dict[str, ProfileRecord] = {}
        for key, pk, fp, data in self._by_key("profiles", "key, person_key, fingerprint, data", keys):
            try:
                profile = validate(data)
            except _DECODE_ERRORS as exc:
                raise _damaged("profiles", key, exc) from exc
            found[key] = ProfileRecord(profile, pk, fp)
        return found

    def conversations(self, keys: Sequence[str]) -> dict[str, Conversation]:
        validate = _validate_conversation
        found: dict[str, Conversation] = {}
        for key, data in self._by_key("conversations", "key, data", keys):
            try:
                found[key] = validate(data)
            except _DECODE_ERRORS as exc:
                raise _damaged("conversations", key, exc) from exc
        return found

    def messages(self, keys: Sequence[str]) -> dict[str, MessageRecord]:
        columns = "key, conversation_key, author_key, deleted, in_crm, version"
        return {
            key: MessageRecord(key, conv, author, bool(deleted), bool(in_crm), version)
            for key, conv, author, deleted, in_crm, version in self._by_key("messages", columns, keys)
        }

    # -- the hot path

    def commit_page(self, page: PageCommit) -> list[int]:
        now = _now()
        dumps, blob = orjson.dumps, bytearray
        obj_value = _OBJECT_VALUE
        with self._tx() as c:
            keys = _json_keys(page.event_keys) if page.event_keys else None
            if keys is not None:  # one statement: a third cheaper than a row each
                c.execute("INSERT OR IGNORE INTO seen_events (key) SELECT value FROM json_each(?)", (keys,))
            else:
                c.executemany("INSERT OR IGNORE INTO seen_events (key) VALUES (?)", zip(page.event_keys))
            c.executemany(
                _UPSERT_PROFILE,
                [
                    (p.profile.key, p.person_key, p.fingerprint, _dump_profile(p.profile).decode())
                    for p in page.profiles
                ],
            )
            c.executemany(
                _UPSERT_CONVERSATION,
                [(cv.key, cv.started_by, _dump_conversation(cv).decode()) for cv in page.conversations],
            )
            c.executemany(
                _UPSERT_MESSAGE,
                [
                    (m.key, m.conversation_key, m.author_key, int(m.deleted), int(m.in_crm), m.version)
                    for m in page.messages
                ],
            )
            ops = page.ops
            if ops:
                flat: list[Any] = []
                add = flat.extend
                for op in ops:
                    add((obj_value[op.object], op.external_key, blob(dumps(op.fields)), blob(dumps(op.refs)), now))
                self._insert_rows(_INSERT_OUTBOX_HEAD, 5, flat)
                # The write lock is held and AUTOINCREMENT gives max(ever, current) + 1 per row, so
                # the page's outbox rows got contiguous seqs ending at last_insert_rowid().
                last: int = c.execute("SELECT last_insert_rowid()").fetchone()[0]
            if page.dead_letters:
                self._insert_dead_letters(page.dead_letters, now)
            if page.audit:
                self._insert_audit(page.audit, now)
            c.execute(_UPSERT_CHECKPOINT, (page.source, page.cursor, now, len(page.event_keys)))
        return list(range(last - len(ops) + 1, last + 1)) if ops else []

    def _insert_dead_letters(self, letters: Sequence[NewDeadLetter], now: str) -> None:
        self._conn.executemany(
            _INSERT_DEAD_LETTER,
            [
                (
                    d.source,
                    redact(d.reason),
                    d.locator,
                    None if d.op is None else _op_json(d.op),
                    redact(d.payload),
                    0,
                    now,
                    d.code,
                    None if d.retryable is None else int(d.retryable),
                    d.fix,
                )
                for d in letters
            ],
        )

    def _insert_audit(self, entries: Sequence[AuditEntry], now: str) -> None:
        self._conn.executemany(_INSERT_AUDIT, [(now, e.action, e.subject, redact(e.detail)) for e in entries])

    # -- outbox

    def outbox_take(self, limit: int, after_seq: int = 0) -> list[OutboxItem]:
        rows = self._conn.execute(
            "SELECT seq, object, external_key, fields, refs, attempts FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [
            OutboxItem(seq, _decode("outbox", seq, _op_row, obj, key, fields, refs), attempts)
            for seq, obj, key, fields, refs, attempts in rows
        ]

    def outbox_settle(self, settlement: Settlement) -> list[OutboxItem]:
        now = _now()
        obj_value = _OBJECT_VALUE
        with self._tx() as c:
            # A flush settles whole runs of seqs: delete each run with one range.
            c.executemany("DELETE FROM outbox WHERE seq BETWEEN ? AND ?", _runs(settlement.done))
            c.executemany(
                "INSERT INTO crm_ids (object, external_key, crm_id) VALUES (?, ?, ?)"
                " ON CONFLICT (object, external_key) DO UPDATE SET crm_id = excluded.crm_id",
                [(obj_value[obj], key, crm_id) for obj, key, crm_id in settlement.crm_ids],
            )
            if settlement.failed:
                # attempts in the dead letter = tries made, this failed one included
                c.executemany(
                    _OUTBOX_TO_DEAD_LETTER,
                    [(redact(f.reason), now, f.code, int(f.retryable), f.fix, f.seq) for f in settlement.failed],
                )
                c.executemany("DELETE FROM outbox WHERE seq = ?", [(f.seq,) for f in settlement.failed])
            if settlement.retry:
                c.executemany("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?", zip(settlement.retry))
            if settlement.links:
                c.executemany(
                    "INSERT OR REPLACE INTO pending_links (child_object, child_key, ref, parent_object, parent_key,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (obj_value[k.child_object], k.child_key, k.ref, obj_value[k.parent_object], k.parent_key, now)
                        for k in settlement.links
                    ],
                )
            return self._release_links(settlement.crm_ids, now) if settlement.crm_ids else []

    def _release_links(self, written: Sequence[tuple[CrmObject, str, str]], now: str) -> list[OutboxItem]:
        """Pending links whose parent was just written become outbox items (and stop pending)."""
        c = self._conn
        parents = [(_OBJECT_VALUE[obj], key) for obj, key, _ in written]
        if c.execute("SELECT 1 FROM pending_links LIMIT 1").fetchone() is None:
            return []  # the common case: nothing waits
        links: list[PendingLink] = []
        for obj, key in parents:
            for child_obj, child_key, ref in c.execute(
                "SELECT child_object, child_key, ref FROM pending_links WHERE parent_object = ? AND parent_key = ?"
                " ORDER BY created_at",
                (obj, key),
            ):
                links.append(PendingLink(CrmObject(obj), key, CrmObject(child_obj), child_key, ref))
        items: list[OutboxItem] = []
        for link in links:
            op = link.op()
            seq = c.execute(
                _INSERT_OUTBOX, (op.object.value, op.external_key, orjson.dumps(op.fields), orjson.dumps(op.refs), now)
            ).lastrowid
            assert seq is not None
            items.append(OutboxItem(seq, op))
            c.execute(
                "DELETE FROM pending_links WHERE child_object = ? AND child_key = ? AND ref = ?",
                (link.child_object.value, link.child_key, link.ref),
            )
        return items

    def pending_links(self, limit: int = 100) -> list[PendingLink]:
        rows = self._conn.execute(
            "SELECT parent_object, parent_key, child_object, child_key, ref FROM pending_links"
            " ORDER BY created_at LIMIT ?",
            (limit,),
        )
        return [PendingLink(CrmObject(po), pk, CrmObject(co), ck, ref) for po, pk, co, ck, ref in rows]

    # -- adapters' key-value areas

    def adapter_state_get(self, adapter: str, keys: Sequence[str]) -> dict[str, str]:
        sql = "SELECT key, value FROM adapter_state WHERE adapter = ? AND key IN ({marks})"
        return dict(self._select_in(sql, list(keys), adapter))

    def adapter_state_put(self, adapter: str, items: Mapping[str, str]) -> None:
        now = _now()
        with self._tx() as c:
            c.executemany(
                "INSERT INTO adapter_state (adapter, key, value, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (adapter, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                [(adapter, k, v, now) for k, v in items.items()],
            )

    def adapter_state_delete(self, adapter: str, keys: Sequence[str]) -> None:
        with self._tx() as c:
            c.executemany("DELETE FROM adapter_state WHERE adapter = ? AND key = ?", [(adapter, k) for k in keys])

    def adapter_state_prefixed(self, adapter: str, prefix: str) -> dict[str, str]:
        rows = self._conn.execute(
            "SELECT key, value FROM adapter_state WHERE adapter = ? AND substr(key, 1, ?) = ? ORDER BY key",
            (adapter, len(prefix), prefix),
        )
        return dict(rows)

    def outbox_depth(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def crm_ids(self, obj: CrmObject, external_keys: Sequence[str]) -> dict[str, str]:
        sql = "SELECT external_key, crm_id FROM crm_ids WHERE object = ? AND external_key IN ({marks})"
        return dict(self._select_in(sql, external_keys, obj.value))

    # -- dead letters

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters, oldest first."""
        rows = self._conn.execute(
            "SELECT id, source, reason, locator, op, payload, attempts, created_at, code, retryable, fix"
            " FROM dead_letters ORDER BY id LIMIT ?",
            (limit,),
        )
        return [
            DeadLetter(
                source=source,
                reason=reason,
                locator=locator,
                op=None if op is None else _decode("dead_letters", id_, _op_from_json, op),
                payload=payload,
                code=code,
                retryable=None if retryable is None else bool(retryable),
                fix=fix,
                id=id_,
                created_at=_decode("dead_letters", id_, datetime.fromisoformat, at),
                attempts=attempts,
            )
            for id_, source, reason, locator, op, payload, attempts, at, code, retryable, fix in rows
        ]

    def dead_letter_keys(self) -> set[tuple[CrmObject, str]]:
        rows = self._conn.execute(
            "SELECT json_extract(op, '$.object'), json_extract(op, '$.external_key') FROM dead_letters"
            " WHERE op IS NOT NULL"
        )
        return {(CrmObject(obj), key) for obj, key in rows if obj in _VALUE_OBJECT}

    def dead_letter_count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])

    def requeue_dead_letters(self, ids: Sequence[int] | None = None) -> int:
        now = _now()
        with self._tx() as c:
            if ids is None:
                rows = list(c.execute("SELECT id, op FROM dead_letters WHERE op IS NOT NULL ORDER BY id"))
            else:
                sql = "SELECT id, op FROM dead_letters WHERE op IS NOT NULL AND id IN ({marks})"
                rows = sorted(self._select_in(sql, sorted(set(ids))))
            ops = [_decode("dead_letters", id_, _op_from_json, op) for id_, op in rows]
            dumps = orjson.dumps
            c.executemany(
                _INSERT_OUTBOX, [(o.object.value, o.external_key, dumps(o.fields), dumps(o.refs), now) for o in ops]
            )
            c.executemany("DELETE FROM dead_letters WHERE id = ?", [(id_,) for id_, _ in rows])
            if rows:
                self._insert_audit([AuditEntry("dlq.requeued", "dead_letters", f"{len(rows)} operation(s)")], now)
        return len(rows)

    # -- audit and erase

    def audit(self, entries: Sequence[AuditEntry]) -> None:
        now = _now()
        with self._tx():
            self._insert_audit(entries, now)

    def audit_log(self, limit: int = 100) -> list[tuple[datetime, AuditEntry]]:
        """The latest ``limit`` entries, newest first."""
        rows = self._conn.execute(
            "SELECT id, at, action, subject, detail FROM audit_log ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [
            (_decode("audit_log", id_, datetime.fromisoformat, at), AuditEntry(action, subject, detail))
            for id_, at, action, subject, detail in rows
        ]

    def erase_person(self, person_key: str) -> ErasePlan:
        """Besides what the interface lists, this also drops the person's identity links,
        sink dead letters about their records (a requeue would otherwise re-create them),
        and their traces in the webhook inbox, the audit log and the other tables
        (:mod:`scrm_core.store.erase`); ``plan.kept`` says what stays and why. Seen-event keys
        of their messages stay: they hold message ids only and stop a backfill re-importing."""
        with self._tx() as c:
            plan, profiles, messages, threads = self._erase_scope(person_key)
            stored = list(self._select_in("SELECT key, data FROM profiles WHERE key IN ({marks})", profiles))
            who = identity_of(c, person_key, stored, messages, threads)
            c.execute("DELETE FROM identity_links WHERE person_key = ?", (person_key,))
            c.executemany("DELETE FROM profiles WHERE key = ?", [(k,) for k in profiles])  # cascades links
            c.executemany("DELETE FROM messages WHERE key = ?", [(k,) for k in messages])
            c.executemany("DELETE FROM conversations WHERE key = ?", [(k,) for k in threads])
            # Corrections hold the person's words: they go too (by message or thread key).
            examples = c.executemany(
                "DELETE FROM label_examples WHERE message_key = ?", [(k,) for k in {*messages, *threads}]
            ).rowcount
            c.executemany(
                "UPDATE conversations SET data = ? WHERE key = ?",
                [(_dump_conversation(cv).decode(), cv.key) for cv in plan.derived],
            )
            c.executemany(
                "DELETE FROM crm_ids WHERE object = ? AND external_key = ?",
                [(obj.value, key) for obj, keys in plan.records.items() for key in keys],
            )
            outbox, letters = self._erase_pending({key for keys in plan.records.values() for key in keys})
            plan.removed = {
                "profiles": len(profiles),
                "messages": len(messages),
                "conversations": len(threads),
                "outbox": outbox,
                "dead_letters": letters,
                "label_examples": examples,
            }
            traces, plan.kept = erase_traces(c, who)
            plan.removed.update(traces)
            # The log keeps that an erase happened and how much it removed, never whom.
            detail = " ".join(f"{table}={n}" for table, n in plan.removed.items())
            self._insert_audit([AuditEntry("subject.erased", ERASED, detail)], _now())
        return plan

    def _erase_scope(self, person_key: str) -> tuple[ErasePlan, list[str], list[str], list[str]]:
        """The plan, and the store keys of the person's profiles, messages and threads. Their
        messages include the company's replies to them (addressed to them, often by name)."""
        c = self._conn
        profiles = [k for (k,) in c.execute("SELECT key FROM profiles WHERE person_key = ?", (person_key,))]
        messages = [k for (k,) in self._select_in("SELECT key FROM messages WHERE author_key IN ({marks})", profiles)]
        threads = [
            k for (k,) in self._select_in("SELECT key FROM conversations WHERE started_by IN ({marks})", profiles)
        ]
        theirs = set(messages)
        for conversation, parent, sent_id in c.execute(
            "SELECT conversation_key, in_reply_to, network_message_id FROM replies WHERE network_message_id IS NOT NULL"
        ):
            network = conversation.partition(":")[0]
            if f"{network}:{parent}" in theirs and f"{network}:{sent_id}" not in theirs:
                messages.append(f"{network}:{sent_id}")
        plan = ErasePlan(
            person_key,
            {
                CrmObject.contact: [external_key(person_key)],
                CrmObject.profile: [external_key(k) for k in profiles],
                CrmObject.case: [external_key(k) for k in threads],
                CrmObject.lead: [external_key(k) for k in profiles],
                CrmObject.message: [external_key(k) for k in messages],
            },
        )
        plan.derived = self._derived_from(messages, set(threads))
        return plan, profiles, messages, threads

    def _derived_from(self, messages: list[str], own_threads: set[str]) -> list[Conversation]:
        """Other people's conversations whose subject or draft reply came from these messages."""
        c = self._conn
        rows = self._select_in("SELECT key, conversation_key FROM messages WHERE key IN ({marks})", messages)
        ids_by_thread: dict[str, set[str]] = {}
        for key, thread in rows:
            if thread not in own_threads:
                ids_by_thread.setdefault(thread, set()).add(key.partition(":")[2])
        derived = []
        for thread, ids in ids_by_thread.items():
            row = c.execute("SELECT data FROM conversations WHERE key = ?", (thread,)).fetchone()
            if row is None:
                continue
            conversation = _decode("conversations", thread, _validate_conversation, row[0])
            subject = draft = False
            for message_id in ids:
                took_subject, took_draft = conversation.took_text_from(message_id)
                subject, draft = subject or took_subject, draft or took_draft
            if subject or draft:
                conversation.redact(subject=subject, draft=draft)
                derived.append(conversation)
        return derived

    def erase_plan(self, person_key: str) -> ErasePlan:
        plan, profiles, _, _ = self._erase_scope(person_key)
        return plan if profiles else ErasePlan(person_key)

    def _erase_pending(self, keys: set[str]) -> tuple[int, int]:
        """Delete outbox rows and sink dead letters written to, or referring to, ``keys``.
        Scans both tables in Python: they are short, and erase is rare."""

        def hit(key: str, refs: Any) -> bool:
            return key in keys or any(v in keys for v in refs.values())

        c = self._conn
        rows = c.execute("SELECT seq, external_key, refs FROM outbox")
        seqs = [(seq,) for seq, key, refs in rows if hit(key, _decode("outbox", seq, orjson.loads, refs))]
        c.executemany("DELETE FROM outbox WHERE seq = ?", seqs)
        ids = []
        for id_, op in c.execute("SELECT id, op FROM dead_letters WHERE op IS NOT NULL"):
            parsed = _decode("dead_letters", id_, _op_from_json, op)
            if hit(parsed.external_key, parsed.refs):
                ids.append((id_,))
        c.executemany("DELETE FROM dead_letters WHERE id = ?", ids)
        links = [
            (child_obj, child_key, ref)
            for child_obj, child_key, ref, parent_key in c.execute(
                "SELECT child_object, child_key, ref, parent_key FROM pending_links"
            )
            if child_key in keys or parent_key in keys
        ]
        c.executemany("DELETE FROM pending_links WHERE child_object = ? AND child_key = ? AND ref = ?", links)
        return len(seqs), len(ids)

    # -- identity

    def profiles_page(self, after: str = "", limit: int = 1000) -> list[ProfileRecord]:
        rows = self._conn.execute(
            "SELECT key, person_key, fingerprint, data FROM profiles WHERE key > ? ORDER BY key LIMIT ?",
            (after, limit),
        )
        return [ProfileRecord(_decode("profiles", key, _validate_profile, data), pk, fp) for key, pk, fp, data in rows]

    def _links(self, where: str, args: Sequence[Any]) -> list[IdentityLink]:
        rows = self._conn.execute(
            "SELECT id, profile_key, person_key, evidence, verified, status, created_at, previous_person_key, "
            f"undone_at FROM identity_links {where} ORDER BY id",
            args,
        )
        return [
            IdentityLink(
                id_,
                profile,
                person,
                evidence,
                bool(verified),
                LinkStatus(status),
                datetime.fromisoformat(created),
                previous,
                datetime.fromisoformat(undone) if undone else None,
            )
            for id_, profile, person, evidence, verified, status, created, previous, undone in rows
        ]

    def identity_link(self, link_id: int) -> IdentityLink:
        found = self._links("WHERE id = ?", (link_id,))
        if not found:
            raise KeyError(f"no identity link #{link_id}")
        return found[0]

    def identity_links(self, status: LinkStatus | None = None) -> list[IdentityLink]:
        return self._links("WHERE status = ?", (status.value,)) if status else self._links("", ())

    def suggest_link(self, profile_key: str, person_key: str, evidence: str, verified: bool) -> IdentityLink | None:
        with self._tx() as c:
            known = c.execute(
                "SELECT 1 FROM identity_links WHERE profile_key = ? AND person_key = ? AND status != 'undone'",
                (profile_key, person_key),
            ).fetchone()
            current = c.execute("SELECT person_key FROM profiles WHERE key = ?", (profile_key,)).fetchone()
            if known or current is None or current[0] == person_key:
                return None
            cur = c.execute(
                "INSERT INTO identity_links (profile_key, person_key, evidence, verified, created_at, status) "
                "VALUES (?, ?, ?, ?, ?, 'suggested')",
                (profile_key, person_key, evidence, int(verified), _now()),
            )
            link_id = cur.lastrowid
        assert link_id is not None
        return self.identity_link(link_id)

    def _queue(self, ops: Sequence[CrmOperation], now: str) -> None:
        self._conn.executemany(
            _INSERT_OUTBOX,
            [
                (_OBJECT_VALUE[op.object], op.external_key, orjson.dumps(op.fields), orjson.dumps(op.refs), now)
                for op in ops
            ],
        )

    def link_identity(
        self, profile_key: str, person_key: str, evidence: str, verified: bool, ops: Sequence[CrmOperation]
    ) -> IdentityLink:
        now = _now()
        with self._tx() as c:
            row = c.execute("SELECT person_key FROM profiles WHERE key = ?", (profile_key,)).fetchone()
            if row is None:
                raise KeyError(f"no profile {profile_key!r} in the state store")
            previous = row[0]
            open_ = c.execute(
                "SELECT id FROM identity_links WHERE profile_key = ? AND person_key = ? AND status = 'suggested'",
                (profile_key, person_key),
            ).fetchone()
            if open_:
                link_id = open_[0]
                c.execute(
                    "UPDATE identity_links SET status = 'linked', previous_person_key = ?, evidence = ?, "
                    "verified = ? WHERE id = ?",
                    (previous, evidence, int(verified), link_id),
                )
            else:
                link_id = c.execute(
                    "INSERT INTO identity_links (profile_key, person_key, evidence, verified, created_at, status, "
                    "previous_person_key) VALUES (?, ?, ?, ?, ?, 'linked', ?)",
                    (profile_key, person_key, evidence, int(verified), now, previous),
                ).lastrowid
            c.execute("UPDATE profiles SET person_key = ? WHERE key = ?", (person_key, profile_key))
            self._queue(ops, now)
            detail = f"link #{link_id}: {previous} -> {person_key}; evidence: {evidence}"
            self._insert_audit([AuditEntry("identity.linked", profile_key, detail)], now)
        assert link_id is not None
        return self.identity_link(link_id)

    def reject_suggestion(self, link_id: int) -> IdentityLink:
        with self._tx() as c:
            link = self.identity_link(link_id)
            if link.status is not LinkStatus.suggested:
                raise ValueError(f"link #{link_id} is {link.status.value}, not a suggestion")
            c.execute("UPDATE identity_links SET status = 'rejected' WHERE id = ?", (link_id,))
            self._insert_audit([AuditEntry("identity.rejected", link.profile_key, f"link #{link_id}")], _now())
        return self.identity_link(link_id)

    def undo_link(self, link_id: int, ops: Sequence[CrmOperation]) -> IdentityLink:
        now = _now()
        with self._tx() as c:
            link = self.identity_link(link_id)
            if link.status is not LinkStatus.linked or link.previous_person_key is None:
                raise ValueError(f"link #{link_id} is {link.status.value}: there is nothing to undo")
            row = c.execute("SELECT person_key FROM profiles WHERE key = ?", (link.profile_key,)).fetchone()
            if row is None or row[0] != link.person_key:
                raise ValueError(
                    f"profile {link.profile_key} has been linked elsewhere since link #{link_id}: undo that link first"
                )
            c.execute("UPDATE profiles SET person_key = ? WHERE key = ?", (link.previous_person_key, link.profile_key))
            c.execute("UPDATE identity_links SET status = 'undone', undone_at = ? WHERE id = ?", (now, link_id))
            self._queue(ops, now)
            detail = f"link #{link_id} undone: {link.person_key} -> {link.previous_person_key}"
            self._insert_audit([AuditEntry("identity.unlinked", link.profile_key, detail)], now)
        return self.identity_link(link_id)

    def person(self, person_key: str) -> PersonView:
        profiles = [
            ProfileRecord(_decode("profiles", key, _validate_profile, data), pk, fp)
            for key, pk, fp, data in self._conn.execute(
                "SELECT key, person_key, fingerprint, data FROM profiles WHERE person_key = ? ORDER BY key",
                (person_key,),
            )
        ]
        keys = [p.profile.key for p in profiles]
        conversations = [
            _decode("conversations", key, _validate_conversation, data)
            for key, data in self._select_in("SELECT key, data FROM conversations WHERE started_by IN ({marks})", keys)
        ]
        messages = sum(
            n for (n,) in self._select_in("SELECT COUNT(*) FROM messages WHERE author_key IN ({marks})", keys)
        )
        links = self._links(
            "WHERE person_key = ? OR profile_key IN (SELECT key FROM profiles WHERE person_key = ?)",
            (person_key, person_key),
        )
        profile_keys = [external_key(k) for k in keys]
        wanted = {
            CrmObject.contact: [external_key(person_key)],
            CrmObject.profile: profile_keys,
            CrmObject.lead: profile_keys,
            CrmObject.case: [external_key(cv.key) for cv in conversations],
        }
        ids = {
            f"{obj.value}:{key}": crm_id
            for obj, obj_keys in wanted.items()
            for key, crm_id in self.crm_ids(obj, obj_keys).items()
        }
        return PersonView(person_key, profiles, conversations, messages, links, ids)

    # -- learning

    def save_label_examples(
        self, examples: Sequence[NewLabelExample], *, checkpoint: tuple[str, str | None] | None = None
    ) -> int:
        now = _now()
        with self._tx() as c:
            # REPLACE deletes the older row of the same message and namespace: the newest
            # correction wins, with a new seq (so "new since the last training" sees it).
            c.executemany(
                "INSERT OR REPLACE INTO label_examples (message_key, namespace, label, text, language, source, crm_id,"
                " corrected_at, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        e.message_key,
                        e.namespace,
                        e.label,
                        e.text,
                        e.language,
                        e.source,
                        e.crm_id,
                        e.corrected_at.astimezone(UTC).isoformat() if e.corrected_at else None,
                        now,
                    )
                    for e in examples
                ],
            )
            if checkpoint is not None:
                c.execute(_UPSERT_CHECKPOINT, (checkpoint[0], checkpoint[1], now, len(examples)))
            if examples:
                sources = sorted({e.source for e in examples})
                self._insert_audit(
                    [AuditEntry("labels.corrected", ",".join(sources), f"{len(examples)} correction(s) kept")], now
                )
        return len(examples)

    def label_examples(self, namespace: str | None = None) -> list[LabelExample]:
        rows = self._conn.execute(
            "SELECT e.seq, e.message_key, e.namespace, e.label, e.text, e.language, e.source, e.crm_id,"
            " e.corrected_at, e.stored_at FROM label_examples e LEFT JOIN messages m ON m.key = e.message_key"
            " WHERE COALESCE(m.deleted, 0) = 0 AND (? IS NULL OR e.namespace = ?) ORDER BY e.seq",
            (namespace, namespace),
        )
        return [
            LabelExample(
                message_key=key,
                namespace=ns,
                label=label,
                text=text,
                source=source,
                language=language,
                crm_id=crm_id,
                corrected_at=_decode("label_examples", seq, datetime.fromisoformat, corrected) if corrected else None,
                seq=seq,
                stored_at=_decode("label_examples", seq, datetime.fromisoformat, stored),
            )
            for seq, key, ns, label, text, language, source, crm_id, corrected, stored in rows
        ]

    def save_model(self, name: str, data: bytes, report: Mapping[str, Any], trained_until: int) -> StoredModel:
        now = _now()
        with self._tx() as c:
            c.execute("UPDATE classifier_models SET active = 0 WHERE name = ?", (name,))
            model_id = c.execute(
                "INSERT INTO classifier_models (name, data, report, trained_until, created_at) VALUES (?, ?, ?, ?, ?)",
                (name, data, orjson.dumps(dict(report)).decode(), trained_until, now),
            ).lastrowid
            self._insert_audit([AuditEntry("model.trained", name, f"model #{model_id}")], now)
        found = self.model(name)
        assert found is not None
        return found

    def model(self, name: str) -> StoredModel | None:
        row = self._conn.execute(
            "SELECT id, data, report, trained_until, created_at FROM classifier_models"
            " WHERE name = ? AND active = 1 ORDER BY id DESC LIMIT 1",
            (name,),
        ).fetchone()
        if row is None:
            return None
        id_, data, report, until, created = row
        return StoredModel(
            id_,
            name,
            bytes(data),
            _decode("classifier_models", id_, orjson.loads, report),
            until,
            _decode("classifier_models", id_, datetime.fromisoformat, created),
        )

    def drop_models(self, name: str) -> int:
        with self._tx() as c:
            n = c.execute("UPDATE classifier_models SET active = 0 WHERE name = ? AND active = 1", (name,)).rowcount
            if n:
                self._insert_audit([AuditEntry("model.reset", name, "back to the shipped model")], _now())
        return n

    def counts(self) -> Mapping[str, int]:
        tables = ("profiles", "conversations", "messages", "outbox", "dead_letters", "seen_events")
        # One statement, so all counts come from the same snapshot.
        row = self._conn.execute("SELECT " + ", ".join(f"(SELECT COUNT(*) FROM {t})" for t in tables)).fetchone()
        return dict(zip(tables, row, strict=True))
