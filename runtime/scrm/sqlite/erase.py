"""Erasing one person from the SQLite store: their rows by key here, their traces where no
key points at them in :mod:`.traces`."""

from __future__ import annotations

from typing import Any

import orjson

from scrm_core.models import Conversation
from scrm_core.store.base import EraseStore
from scrm_core.store.records import AuditEntry, ErasePlan, replies_to

from .db import SqliteBase, decode, dump_conversation, now, op_from_json, validate_conversation
from .traces import ERASED, erase_traces, identity_of

__all__ = ["SqliteErase"]


class SqliteErase(SqliteBase, EraseStore):
    def erase_plan(self, person_key: str) -> ErasePlan:
        plan, profiles, _, _ = self._erase_scope(person_key)
        return plan if profiles else ErasePlan(person_key)

    def erase_person(self, person_key: str) -> ErasePlan:
        """Seen-event keys of their messages stay: they hold message ids only and stop a
        backfill re-importing."""
        self._conn.execute("PRAGMA secure_delete = ON")  # erased rows are zeroed, freed pages too
        try:
            return self._erase_person(person_key)
        finally:
            self._conn.execute("PRAGMA secure_delete = FAST")

    def _erase_person(self, person_key: str) -> ErasePlan:
        with self._tx() as c:
            plan, profiles, messages, threads = self._erase_scope(person_key)
            stored = list(self._select_in("SELECT key, data FROM profiles WHERE key IN ({marks})", profiles))
            who = identity_of(c, person_key, stored, messages, threads)
            c.execute("DELETE FROM identity_links WHERE person_key = ?", (person_key,))
            c.executemany("DELETE FROM profiles WHERE key = ?", [(k,) for k in profiles])  # cascades links
            # Their creations' seen keys, kept in the index rows, move to seen_events first.
            c.executemany(
                "INSERT OR IGNORE INTO seen_events (key) SELECT 'c:' || key FROM messages WHERE key = ? AND created",
                [(k,) for k in messages],
            )
            c.executemany("DELETE FROM messages WHERE key = ?", [(k,) for k in messages])
            c.executemany("DELETE FROM conversations WHERE key = ?", [(k,) for k in threads])
            # Corrections hold the person's words: they go too (by message or thread key).
            examples = c.executemany(
                "DELETE FROM label_examples WHERE message_key = ?", [(k,) for k in {*messages, *threads}]
            ).rowcount
            c.executemany(
                "UPDATE conversations SET data = ? WHERE key = ?",
                [(dump_conversation(cv).decode(), cv.key) for cv in plan.derived],
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
            self._insert_audit([AuditEntry("subject.erased", ERASED, detail)], now())
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
        messages += replies_to(
            messages,
            c.execute(
                "SELECT conversation_key, in_reply_to, network_message_id FROM replies"
                " WHERE network_message_id IS NOT NULL"
            ),
        )
        plan = ErasePlan.for_person(person_key, profiles, messages, threads)
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
            conversation = decode("conversations", thread, validate_conversation, row[0])
            subject = draft = False
            for message_id in ids:
                took_subject, took_draft = conversation.took_text_from(message_id)
                subject, draft = subject or took_subject, draft or took_draft
            if subject or draft:
                conversation.redact(subject=subject, draft=draft)
                derived.append(conversation)
        return derived

    def _erase_pending(self, keys: set[str]) -> tuple[int, int]:
        """Delete outbox rows and sink dead letters written to, or referring to, ``keys``.
        Scans both tables in Python: they are short, and erase is rare."""

        def hit(key: str, refs: Any) -> bool:
            return key in keys or any(v in keys for v in refs.values())

        c = self._conn
        rows = c.execute("SELECT seq, external_key, refs FROM outbox")
        seqs = [(seq,) for seq, key, refs in rows if hit(key, decode("outbox", seq, orjson.loads, refs))]
        c.executemany("DELETE FROM outbox WHERE seq = ?", seqs)
        ids = []
        for id_, op in c.execute("SELECT id, op FROM dead_letters WHERE op IS NOT NULL"):
            parsed = decode("dead_letters", id_, op_from_json, op)
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
