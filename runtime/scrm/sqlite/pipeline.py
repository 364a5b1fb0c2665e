"""The pipeline on SQLite: checkpoints, seen events, the lookups ingest makes, and the one
commit per page (the hot path: see docs/benchmarks.md before changing it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from scrm_core.models import Conversation
from scrm_core.redaction import redact
from scrm_core.store.base import PipelineStore
from scrm_core.store.records import Checkpoint, MessageRecord, NewDeadLetter, PageCommit, ProfileRecord

from .db import (
    DECODE_ERRORS,
    INSERT_OUTBOX_HEAD,
    OBJECT_VALUE,
    SqliteBase,
    damaged,
    decode,
    dump_conversation,
    dump_profile,
    json_keys,
    now,
    op_json,
    validate_conversation,
    validate_profile,
)
from .outbox import WAITING

__all__ = ["SqlitePipeline"]

_UPSERT_PROFILE = """
    INSERT INTO profiles (key, person_key, fingerprint, data) VALUES (?, ?, ?, ?)
    ON CONFLICT (key) DO UPDATE SET
        person_key = excluded.person_key, fingerprint = excluded.fingerprint, data = excluded.data
"""
_UPSERT_CONVERSATION = """
    INSERT INTO conversations (key, started_by, data) VALUES (?, ?, ?)
    ON CONFLICT (key) DO UPDATE SET started_by = excluded.started_by, data = excluded.data
"""
# ``created``: this page committed the message's creation (its seen-event key ``c:<key>``
# lives here, not in seen_events); once set it stays set.
_UPSERT_MESSAGE = """
    INSERT INTO messages (key, conversation_key, author_key, deleted, in_crm, version, created)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (key) DO UPDATE SET
        conversation_key = excluded.conversation_key, author_key = excluded.author_key,
        deleted = excluded.deleted, in_crm = excluded.in_crm, version = excluded.version,
        created = max(created, excluded.created)
"""
INSERT_DEAD_LETTER = """
    INSERT INTO dead_letters (source, reason, locator, op, payload, attempts, created_at, code, retryable, fix)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


class SqlitePipeline(SqliteBase, PipelineStore):
    def checkpoint(self, source: str) -> str | None:
        row = self._conn.execute("SELECT cursor FROM checkpoints WHERE source = ?", (source,)).fetchone()
        if row is None:
            return None
        cursor: str | None = row[0]
        return cursor

    def checkpoints(self) -> list[Checkpoint]:
        rows = self._conn.execute("SELECT source, cursor, updated_at, events FROM checkpoints ORDER BY source")
        return [
            Checkpoint(source, cursor, decode("checkpoints", source, datetime.fromisoformat, at), events)
            for source, cursor, at, events in rows
        ]

    def unseen(self, event_keys: Sequence[str]) -> set[str]:
        unseen = set(event_keys)
        created = [k[2:] for k in unseen if k.startswith("c:")]
        if created:  # a creation is seen when its message's index row says so
            sql = "SELECT t.key FROM json_each(?) AS j CROSS JOIN messages AS t ON t.key = j.value WHERE t.created"
            payload = json_keys(created)
            rows = (
                self._conn.execute(sql, (payload,))
                if payload is not None
                else self._select_in("SELECT key FROM messages WHERE created AND key IN ({marks})", created)
            )
            unseen.difference_update("c:" + k for (k,) in rows)
        if unseen:  # the rest, and creations without an index row (failed, erased, or before schema 6)
            unseen.difference_update(k for (k,) in self._by_key("seen_events", "key", list(unseen)))
        return unseen

    def profiles(self, keys: Sequence[str]) -> dict[str, ProfileRecord]:
        validate = validate_profile
        found: dict[str, ProfileRecord] = {}
        for key, pk, fp, data in self._by_key("profiles", "key, person_key, fingerprint, data", keys):
            try:
                profile = validate(data)
            except DECODE_ERRORS as exc:
                raise damaged("profiles", key, exc) from exc
            found[key] = ProfileRecord(profile, pk, fp)
        return found

    def conversations(self, keys: Sequence[str]) -> dict[str, Conversation]:
        validate = validate_conversation
        found: dict[str, Conversation] = {}
        for key, data in self._by_key("conversations", "key, data", keys):
            try:
                found[key] = validate(data)
            except DECODE_ERRORS as exc:
                raise damaged("conversations", key, exc) from exc
        return found

    def messages(self, keys: Sequence[str]) -> dict[str, MessageRecord]:
        columns = "key, conversation_key, author_key, deleted, in_crm, version"
        return {
            key: MessageRecord(key, conv, author, bool(deleted), bool(in_crm), version)
            for key, conv, author, deleted, in_crm, version in self._by_key("messages", columns, keys)
        }

    def commit_page(self, page: PageCommit) -> list[int]:
        at = now()
        dumps, blob = orjson.dumps, bytearray
        obj_value = OBJECT_VALUE
        indexed = {m.key for m in page.messages}
        created: set[str] = set()
        other: list[str] = []
        for key in page.event_keys:
            if key.startswith("c:") and key[2:] in indexed:
                created.add(key[2:])  # kept in the message's index row
            else:
                other.append(key)
        new = created.__contains__
        with self._tx() as c:
            if other:
                keys = json_keys(other)
                if keys is not None:  # one statement: a third cheaper than a row each
                    c.execute("INSERT OR IGNORE INTO seen_events (key) SELECT value FROM json_each(?)", (keys,))
                else:
                    c.executemany("INSERT OR IGNORE INTO seen_events (key) VALUES (?)", zip(other))
            c.executemany(
                _UPSERT_PROFILE,
                [(p.profile.key, p.person_key, p.fingerprint, dump_profile(p.profile).decode()) for p in page.profiles],
            )
            c.executemany(
                _UPSERT_CONVERSATION,
                [(cv.key, cv.started_by, dump_conversation(cv).decode()) for cv in page.conversations],
            )
            c.executemany(
                _UPSERT_MESSAGE,
                [
                    (m.key, m.conversation_key, m.author_key, int(m.deleted), int(m.in_crm), m.version, int(new(m.key)))
                    for m in page.messages
                ],
            )
            ops = page.ops
            if ops:
                flat: list[Any] = []
                add = flat.extend
                for op in ops:
                    add((obj_value[op.object], op.external_key, blob(dumps(op.fields)), blob(dumps(op.refs)), at))
                self._insert_rows(INSERT_OUTBOX_HEAD, 5, flat)
                # The write lock is held and AUTOINCREMENT gives max(ever, current) + 1 per row, so
                # the page's outbox rows got contiguous seqs ending at last_insert_rowid().
                last: int = c.execute("SELECT last_insert_rowid()").fetchone()[0]
            if page.dead_letters:
                self._insert_dead_letters(page.dead_letters, at)
            if page.audit:
                self._insert_audit(page.audit, at)
            self._save_checkpoint(page.source, page.cursor, len(page.event_keys), at)
        return list(range(last - len(ops) + 1, last + 1)) if ops else []

    def _insert_dead_letters(self, letters: Sequence[NewDeadLetter], at: str) -> None:
        self._conn.executemany(
            INSERT_DEAD_LETTER,
            [
                (
                    d.source,
                    redact(d.reason),
                    d.locator,
                    None if d.op is None else op_json(d.op),
                    redact(d.payload),
                    0,
                    at,
                    d.code,
                    None if d.retryable is None else int(d.retryable),
                    d.fix,
                )
                for d in letters
            ],
        )

    def counts(self) -> Mapping[str, int]:
        tables = ("profiles", "conversations", "messages", "outbox", "dead_letters", "seen_events")
        counts = [f"(SELECT COUNT(*) FROM {t})" for t in tables]
        counts[-1] += " + (SELECT COUNT(*) FROM messages WHERE created)"  # creations kept in the index
        counts[3] = f"(SELECT COUNT(*) FROM outbox AS o WHERE {WAITING})"  # not the settled ones
        # One statement, so all counts come from the same snapshot.
        row = self._conn.execute("SELECT " + ", ".join(counts)).fetchone()
        return dict(zip(tables, row, strict=True))
