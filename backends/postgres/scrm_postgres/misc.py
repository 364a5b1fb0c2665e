"""The small parts of the PostgreSQL store: dead letters, the audit log, the adapters'
key-value areas and the webhook inbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import orjson

from scrm_core.models import CrmObject
from scrm_core.store import AuditEntry, DeadLetter, StoredWebhook
from scrm_core.store.base import AdapterStateStore, AuditLog, DeadLetterStore, WebhookInbox

from .db import VALUE_OBJECT, PgBase, decode, esc, op_from_json, unesc, utcnow

__all__ = ["PgAdapterState", "PgAuditLog", "PgDeadLetters", "PgWebhookInbox"]


class PgDeadLetters(PgBase, DeadLetterStore):
    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        rows = self._rows(
            "SELECT id, source, reason, locator, op, payload, attempts, created_at, code, retryable, fix"
            " FROM dead_letters ORDER BY id LIMIT %s",
            (limit,),
        )
        return [
            DeadLetter(
                source=source,
                reason=reason,
                locator=unesc(locator),
                op=None if op is None else decode("dead_letters", id_, op_from_json, op),
                payload=unesc(payload),
                code=code,
                retryable=retryable,
                fix=fix,
                id=id_,
                created_at=at,
                attempts=attempts,
            )
            for id_, source, reason, locator, op, payload, attempts, at, code, retryable, fix in rows
        ]

    def dead_letter_keys(self) -> set[tuple[CrmObject, str]]:
        # Parsed here, not as jsonb: jsonb refuses the \u0000 a key may hold.
        found = set()
        for id_, raw in self._rows("SELECT id, op FROM dead_letters WHERE op IS NOT NULL"):
            d = decode("dead_letters", id_, orjson.loads, raw)
            if d.get("object") in VALUE_OBJECT:
                found.add((VALUE_OBJECT[d["object"]], d["external_key"]))
        return found

    def dead_letter_count(self) -> int:
        return int(self._one("SELECT COUNT(*) FROM dead_letters")[0])

    def requeue_dead_letters(self, ids: Sequence[int] | None = None) -> int:
        at = utcnow()
        with self._tx() as cur:
            if ids is None:
                cur.execute("SELECT id, op FROM dead_letters WHERE op IS NOT NULL ORDER BY id FOR UPDATE")
            else:
                cur.execute(
                    "SELECT id, op FROM dead_letters WHERE op IS NOT NULL AND id = ANY(%b::bigint[]) ORDER BY id"
                    " FOR UPDATE",
                    (sorted(set(ids)),),
                )
            rows = cur.fetchall()
            self._queue(cur, [decode("dead_letters", id_, op_from_json, op) for id_, op in rows], at)
            cur.execute("DELETE FROM dead_letters WHERE id = ANY(%b::bigint[])", ([id_ for id_, _ in rows],))
            if rows:
                self._insert_audit(cur, [AuditEntry("dlq.requeued", "dead_letters", f"{len(rows)} operation(s)")], at)
        return len(rows)


class PgAuditLog(PgBase, AuditLog):
    def audit(self, entries: Sequence[AuditEntry]) -> None:
        at = utcnow()
        with self._tx() as cur:
            self._insert_audit(cur, entries, at)

    def audit_log(self, limit: int = 100) -> list[tuple[datetime, AuditEntry]]:
        rows = self._rows("SELECT at, action, subject, detail FROM audit_log ORDER BY id DESC LIMIT %s", (limit,))
        return [(at, AuditEntry(action, unesc(subject), detail)) for at, action, subject, detail in rows]


class PgAdapterState(PgBase, AdapterStateStore):
    def adapter_state_get(self, adapter: str, keys: Sequence[str]) -> dict[str, str]:
        if not keys:
            return {}
        rows = self._rows(
            "SELECT key, value FROM adapter_state WHERE adapter = %s AND key = ANY(%b::text[])",
            (adapter, [esc(k) for k in keys]),
        )
        return {unesc(k): unesc(v) for k, v in rows}

    def adapter_state_put(self, adapter: str, items: Mapping[str, str]) -> None:
        at = utcnow()
        rows = sorted((esc(k), esc(v)) for k, v in items.items())  # key order: concurrent writers never deadlock
        with self._tx() as cur:
            cur.executemany(
                "INSERT INTO adapter_state (adapter, key, value, updated_at) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (adapter, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                [(adapter, k, v, at) for k, v in rows],
            )

    def adapter_state_delete(self, adapter: str, keys: Sequence[str]) -> None:
        with self._tx() as cur:
            cur.execute(
                "DELETE FROM adapter_state WHERE adapter = %s AND key = ANY(%b::text[])",
                (adapter, [esc(k) for k in keys]),
            )

    def adapter_state_prefixed(self, adapter: str, prefix: str) -> dict[str, str]:
        # left() rather than LIKE: a prefix may hold % or _; "C" collation: byte order, as SQLite.
        p = esc(prefix)
        rows = self._rows(
            'SELECT key, value FROM adapter_state WHERE adapter = %s AND left(key, %s) = %s ORDER BY key COLLATE "C"',
            (adapter, len(p), p),
        )
        return {unesc(k): unesc(v) for k, v in rows}


class PgWebhookInbox(PgBase, WebhookInbox):
    def store_webhook(self, source: str, digest: str, headers: Mapping[str, str], body: bytes) -> int | None:
        # synchronous_commit is on by default: the 200 that follows is sent only once the
        # payload is on disk (and on a synchronous standby, where one is configured).
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO webhook_inbox (source, digest, headers, body, received_at) VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (source, digest) DO NOTHING RETURNING id",
                (source, digest, esc(orjson.dumps(dict(headers)).decode()), body, utcnow()),
            )
            row = cur.fetchone()
        return None if row is None else int(row[0])

    def stored_webhooks(self, source: str, after_id: int, limit: int) -> list[StoredWebhook]:
        rows = self._rows(
            "SELECT id, headers, body, received_at FROM webhook_inbox WHERE source = %s AND id > %s"
            " ORDER BY id LIMIT %s",
            (source, after_id, limit),
        )
        return [
            StoredWebhook(id_, source, decode("webhook_inbox", id_, orjson.loads, unesc(headers)), bytes(body), at)
            for id_, headers, body, at in rows
        ]

    def prune_webhooks(self, source: str, up_to_id: int, received_before: datetime) -> int:
        with self._tx() as cur:
            cur.execute(
                "DELETE FROM webhook_inbox WHERE source = %s AND id <= %s AND received_at < %s",
                (source, up_to_id, received_before),
            )
            return cur.rowcount
