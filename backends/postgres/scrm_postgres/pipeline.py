"""The pipeline on PostgreSQL: checkpoints, seen events, ingest's lookups, and the one commit
per page (the hot path: one transaction, every write a single statement over arrays, all
of them sent in one pipeline, rows in key order so two workers never deadlock)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from scrm_core.models import Conversation
from scrm_core.redaction import redact
from scrm_core.store import Checkpoint, MessageRecord, NewDeadLetter, PageCommit, ProfileRecord
from scrm_core.store.base import PipelineStore

from .db import (
    DECODE_ERRORS,
    PgBase,
    damaged,
    dump_conversation,
    dump_profile,
    esc,
    op_json,
    unesc,
    utcnow,
    validate_conversation,
    validate_profile,
)

__all__ = ["PgPipeline"]

_UPSERT_PROFILES = """
    INSERT INTO profiles (key, person_key, fingerprint, data)
    SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[])
    ON CONFLICT (key) DO UPDATE SET
        person_key = excluded.person_key, fingerprint = excluded.fingerprint, data = excluded.data
"""
_UPSERT_CONVERSATIONS = """
    INSERT INTO conversations (key, started_by, data)
    SELECT * FROM unnest(%b::text[], %b::text[], %b::text[])
    ON CONFLICT (key) DO UPDATE SET started_by = excluded.started_by, data = excluded.data
"""
# ``created``: this page committed the message's creation (its seen-event key ``c:<key>``
# lives here, not in seen_events); once set it stays set.
_UPSERT_MESSAGES = """
    INSERT INTO messages (key, conversation_key, author_key, deleted, in_crm, version, created)
    SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::bool[], %b::bool[], %b::text[], %b::bool[])
    ON CONFLICT (key) DO UPDATE SET
        conversation_key = excluded.conversation_key, author_key = excluded.author_key,
        deleted = excluded.deleted, in_crm = excluded.in_crm, version = excluded.version,
        created = messages.created OR excluded.created
"""
INSERT_DEAD_LETTER = """
    INSERT INTO dead_letters (source, reason, locator, op, payload, attempts, created_at, code, retryable, fix)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


class PgPipeline(PgBase, PipelineStore):
    def checkpoint(self, source: str) -> str | None:
        row = self._one("SELECT cursor FROM checkpoints WHERE source = %s", (source,))
        return None if row is None else str(row[0]) if row[0] is not None else None

    def checkpoints(self) -> list[Checkpoint]:
        rows = self._rows("SELECT source, cursor, updated_at, events FROM checkpoints ORDER BY source")
        return [Checkpoint(source, cursor, at, events) for source, cursor, at, events in rows]

    def unseen(self, event_keys: Sequence[str]) -> set[str]:
        if not event_keys:
            return set()
        unseen = set(event_keys)
        # A creation is seen when its message's index row says so; the rest (and creations
        # without an index row: failed, erased, or from before schema 4) by seen_events.
        rows = self._rows(
            "SELECT 'c:' || key FROM messages WHERE created AND key = ANY(%b::text[])"
            " UNION ALL SELECT key FROM seen_events WHERE key = ANY(%b::text[])",
            ([esc(k[2:]) for k in unseen if k.startswith("c:")], [esc(k) for k in unseen]),
        )
        unseen.difference_update(unesc(k) for (k,) in rows)
        return unseen

    def profiles(self, keys: Sequence[str]) -> dict[str, ProfileRecord]:
        if not keys:
            return {}
        found: dict[str, ProfileRecord] = {}
        rows = self._rows(
            "SELECT key, person_key, fingerprint, data FROM profiles WHERE key = ANY(%b::text[])",
            ([esc(k) for k in keys],),
        )
        for key, person, fingerprint, data in rows:
            try:
                profile = validate_profile(data)
            except DECODE_ERRORS as exc:
                raise damaged("profiles", key, exc) from exc
            found[unesc(key)] = ProfileRecord(profile, unesc(person), fingerprint)
        return found

    def conversations(self, keys: Sequence[str]) -> dict[str, Conversation]:
        if not keys:
            return {}
        found: dict[str, Conversation] = {}
        rows = self._rows("SELECT key, data FROM conversations WHERE key = ANY(%b::text[])", ([esc(k) for k in keys],))
        for key, data in rows:
            try:
                found[unesc(key)] = validate_conversation(data)
            except DECODE_ERRORS as exc:
                raise damaged("conversations", key, exc) from exc
        return found

    def messages(self, keys: Sequence[str]) -> dict[str, MessageRecord]:
        if not keys:
            return {}
        rows = self._rows(
            "SELECT key, conversation_key, author_key, deleted, in_crm, version FROM messages"
            " WHERE key = ANY(%b::text[])",
            ([esc(k) for k in keys],),
        )
        return {
            unesc(key): MessageRecord(unesc(key), unesc(conv), unesc(author), deleted, in_crm, version)
            for key, conv, author, deleted, in_crm, version in rows
        }

    def commit_page(self, page: PageCommit) -> list[int]:
        at = utcnow()
        profiles = sorted(page.profiles, key=lambda p: p.profile.key)
        conversations = sorted(page.conversations, key=lambda c: c.key)
        messages = sorted(page.messages, key=lambda m: m.key)
        # Serialise first: a value that cannot be stored fails before anything is sent.
        profile_data = [dump_profile(p.profile).decode() for p in profiles]
        conversation_data = [dump_conversation(c).decode() for c in conversations]
        indexed = {m.key for m in messages}
        created: set[str] = set()
        other: set[str] = set()
        for key in page.event_keys:
            if key.startswith("c:") and key[2:] in indexed:
                created.add(key[2:])  # kept in the message's index row
            else:
                other.add(esc(key))
        with self._conn.pipeline(), self._tx() as cur:
            self._fence(cur, page.lease)
            if other:
                cur.execute(
                    "INSERT INTO seen_events (key) SELECT unnest(%b::text[]) ON CONFLICT DO NOTHING", (sorted(other),)
                )
            if profiles:
                cur.execute(
                    _UPSERT_PROFILES,
                    (
                        [esc(p.profile.key) for p in profiles],
                        [esc(p.person_key) for p in profiles],
                        [p.fingerprint for p in profiles],
                        profile_data,
                    ),
                )
            if conversations:
                cur.execute(
                    _UPSERT_CONVERSATIONS,
                    (
                        [esc(c.key) for c in conversations],
                        [esc(c.started_by) for c in conversations],
                        conversation_data,
                    ),
                )
            if messages:
                cur.execute(
                    _UPSERT_MESSAGES,
                    (
                        [esc(m.key) for m in messages],
                        [esc(m.conversation_key) for m in messages],
                        [esc(m.author_key) for m in messages],
                        [m.deleted for m in messages],
                        [m.in_crm for m in messages],
                        [m.version for m in messages],
                        [m.key in created for m in messages],
                    ),
                )
            seqs = self._queue(cur, page.ops, at)
            if page.dead_letters:
                self._insert_dead_letters(cur, page.dead_letters, at)
            self._insert_audit(cur, page.audit, at)
            self._save_checkpoint(cur, page.source, page.cursor, len(page.event_keys), at)
        return seqs

    @staticmethod
    def _insert_dead_letters(cur: Any, letters: Sequence[NewDeadLetter], at: Any) -> None:
        cur.executemany(
            INSERT_DEAD_LETTER,
            [
                (
                    d.source,
                    redact(d.reason),
                    esc(d.locator),
                    None if d.op is None else op_json(d.op),
                    esc(redact(d.payload)),
                    0,
                    at,
                    d.code,
                    d.retryable,
                    d.fix,
                )
                for d in letters
            ],
        )

    def counts(self) -> Mapping[str, int]:
        tables = ("profiles", "conversations", "messages", "outbox", "dead_letters", "seen_events")
        counts = [f"(SELECT COUNT(*) FROM {t})" for t in tables]
        counts[-1] += " + (SELECT COUNT(*) FROM messages WHERE created)"  # creations kept in the index
        # One statement, so all counts come from the same snapshot.
        row = self._one("SELECT " + ", ".join(counts))
        return dict(zip(tables, (int(n) for n in row), strict=True))
