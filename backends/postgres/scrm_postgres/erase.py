"""Erasing one person from the PostgreSQL store: their rows by key here, their traces where
no key points at them by the core's :mod:`scrm.sqlite.traces` (one search, one
report, for every back end), run through :class:`_QmarkConnection`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import psycopg
from scrm.sqlite.traces import ERASED, erase_traces, identity_of

from scrm_core.models import Conversation
from scrm_core.store import AuditEntry, ErasePlan, replies_to
from scrm_core.store.base import EraseStore

from .db import PgBase, decode, dump_conversation, esc, op_from_json, unesc, utcnow, validate_conversation

__all__ = ["PgErase"]


class _QmarkConnection:
    """sqlite3's ``execute`` with ``?`` parameters over a psycopg connection, inside the
    caller's transaction (what :func:`erase_traces` needs). ``instr`` is PostgreSQL's
    ``strpos`` (same arguments, same result)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("?", "%s").replace("instr(", "strpos(")

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> psycopg.Cursor[Any]:
        cur = self._conn.cursor()
        cur.execute(self._sql(sql) if params is not None else sql, params)
        return cur

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> psycopg.Cursor[Any]:
        cur = self._conn.cursor()
        cur.executemany(self._sql(sql), list(rows))
        return cur


def _tables(conn: _QmarkConnection) -> list[tuple[str, list[str]]]:
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name <> ? ORDER BY table_name, ordinal_position",
        ("schema_version",),
    ).fetchall()
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        tables.setdefault(table, []).append(column)
    return list(tables.items())


class PgErase(PgBase, EraseStore):
    def erase_plan(self, person_key: str) -> ErasePlan:
        plan, profiles, _, _ = self._erase_scope(person_key)
        return plan if profiles else ErasePlan(person_key)

    def erase_person(self, person_key: str) -> ErasePlan:
        """Seen-event keys of their messages stay: they hold message ids only and stop a
        backfill re-importing."""
        with self._tx() as cur:
            plan, profiles, messages, threads = self._erase_scope(person_key)
            stored_profiles = [esc(k) for k in profiles]
            cur.execute("SELECT key, data FROM profiles WHERE key = ANY(%b::text[]) FOR UPDATE", (stored_profiles,))
            stored = [(unesc(k), data) for k, data in cur.fetchall()]
            who = identity_of(None, person_key, stored, messages, threads)  # type: ignore[arg-type]
            cur.execute("DELETE FROM identity_links WHERE person_key = %s", (esc(person_key),))
            cur.execute("DELETE FROM profiles WHERE key = ANY(%b::text[])", (stored_profiles,))  # cascades links
            # Their creations' seen keys, kept in the index rows, move to seen_events first.
            cur.execute(
                "INSERT INTO seen_events (key) SELECT 'c:' || key FROM messages"
                " WHERE created AND key = ANY(%b::text[]) ORDER BY 1 ON CONFLICT DO NOTHING",
                ([esc(k) for k in messages],),
            )
            cur.execute("DELETE FROM messages WHERE key = ANY(%b::text[])", ([esc(k) for k in messages],))
            cur.execute("DELETE FROM conversations WHERE key = ANY(%b::text[])", ([esc(k) for k in threads],))
            # Corrections hold the person's words: they go too (by message or thread key).
            cur.execute(
                "DELETE FROM label_examples WHERE message_key = ANY(%b::text[])",
                ([esc(k) for k in {*messages, *threads}],),
            )
            examples = cur.rowcount
            cur.executemany(
                "UPDATE conversations SET data = %s WHERE key = %s",
                [(dump_conversation(cv).decode(), esc(cv.key)) for cv in plan.derived],
            )
            for obj, keys in plan.records.items():
                cur.execute(
                    "DELETE FROM crm_ids WHERE object = %s AND external_key = ANY(%b::text[])",
                    (obj.value, [esc(k) for k in keys]),
                )
            outbox, letters = self._erase_pending(cur, {key for keys in plan.records.values() for key in keys})
            plan.removed = {
                "profiles": len(profiles),
                "messages": len(messages),
                "conversations": len(threads),
                "outbox": outbox,
                "dead_letters": letters,
                "label_examples": examples,
            }
            traces, plan.kept = erase_traces(_QmarkConnection(self._conn), who, _tables)  # type: ignore[arg-type]
            plan.removed.update(traces)
            # The log keeps that an erase happened and how much it removed, never whom.
            detail = " ".join(f"{table}={n}" for table, n in plan.removed.items())
            self._insert_audit(cur, [AuditEntry("subject.erased", ERASED, detail)], utcnow())
        return plan

    def _erase_scope(self, person_key: str) -> tuple[ErasePlan, list[str], list[str], list[str]]:
        """The plan, and the store keys of the person's profiles, messages and threads. Their
        messages include the company's replies to them (addressed to them, often by name)."""
        profiles = [
            unesc(k) for (k,) in self._rows("SELECT key FROM profiles WHERE person_key = %s", (esc(person_key),))
        ]
        stored = [esc(k) for k in profiles]
        messages = [
            unesc(k) for (k,) in self._rows("SELECT key FROM messages WHERE author_key = ANY(%b::text[])", (stored,))
        ]
        threads = [
            unesc(k)
            for (k,) in self._rows("SELECT key FROM conversations WHERE started_by = ANY(%b::text[])", (stored,))
        ]
        messages += replies_to(
            messages,
            self._rows(
                "SELECT conversation_key, in_reply_to, network_message_id FROM replies"
                " WHERE network_message_id IS NOT NULL"
            ),
        )
        plan = ErasePlan.for_person(person_key, profiles, messages, threads)
        plan.derived = self._derived_from(messages, set(threads))
        return plan, profiles, messages, threads

    def _derived_from(self, messages: list[str], own_threads: set[str]) -> list[Conversation]:
        """Other people's conversations whose subject or draft reply came from these messages."""
        rows = self._rows(
            "SELECT key, conversation_key FROM messages WHERE key = ANY(%b::text[])", ([esc(k) for k in messages],)
        )
        ids_by_thread: dict[str, set[str]] = {}
        for key, thread in rows:
            if unesc(thread) not in own_threads:
                ids_by_thread.setdefault(unesc(thread), set()).add(unesc(key).partition(":")[2])
        derived = []
        for thread, ids in ids_by_thread.items():
            row = self._one("SELECT data FROM conversations WHERE key = %s", (esc(thread),))
            if row is None:
                continue
            conversation = decode("conversations", thread, validate_conversation, row[0])
            subject = draft = False
            for message_id in ids:
                took_subject, took_draft = conversation.took_text_from(message_id)
                subject, draft = subject or took_subject, draft or took_draft
            if subject or draft:
                conversation.redact(subject=subject, draft=draft)
                derived.append(conversation)
        return derived

    @staticmethod
    def _erase_pending(cur: psycopg.Cursor[Any], keys: set[str]) -> tuple[int, int]:
        """Delete outbox rows and sink dead letters written to, or referring to, ``keys``.
        Scans both tables in Python: they are short, and erase is rare."""

        def hit(key: str, refs: Any) -> bool:
            return key in keys or any(v in keys for v in refs.values())

        cur.execute("SELECT seq, external_key, refs FROM outbox FOR UPDATE")
        seqs = [seq for seq, key, refs in cur.fetchall() if hit(unesc(key), decode("outbox", seq, orjson.loads, refs))]
        cur.execute("DELETE FROM outbox WHERE seq = ANY(%b::bigint[])", (seqs,))
        cur.execute("SELECT id, op FROM dead_letters WHERE op IS NOT NULL FOR UPDATE")
        ids = []
        for id_, op in cur.fetchall():
            parsed = decode("dead_letters", id_, op_from_json, op)
            if hit(parsed.external_key, parsed.refs):
                ids.append(id_)
        cur.execute("DELETE FROM dead_letters WHERE id = ANY(%b::bigint[])", (ids,))
        cur.execute("SELECT child_object, child_key, ref, parent_key FROM pending_links FOR UPDATE")
        links = [
            (child_obj, child_key, ref)
            for child_obj, child_key, ref, parent_key in cur.fetchall()
            if unesc(child_key) in keys or unesc(parent_key) in keys
        ]
        cur.executemany("DELETE FROM pending_links WHERE child_object = %s AND child_key = %s AND ref = %s", links)
        return len(seqs), len(ids)
