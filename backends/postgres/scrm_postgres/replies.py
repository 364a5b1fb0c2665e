"""Replies towards the networks, on PostgreSQL. A claim is one conditional UPDATE, so two
workers (or two replicas of ``scrm serve``) never send the same reply."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from scrm_core.redaction import redact
from scrm_core.store import AuditEntry, NewReply, ReplyRecord, ReplyStatus
from scrm_core.store.base import CheckpointArg, ReplyStore

from .db import PgBase, utcnow

__all__ = ["PgReplies"]

_COLUMNS = (
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
        approved=approved,
        network_message_id=net_id,
        error=error,
        created_at=created,
        updated_at=updated,
    )


class PgReplies(PgBase, ReplyStore):
    def enqueue_replies(self, replies: Sequence[NewReply], *, checkpoint: CheckpointArg = None) -> list[ReplyRecord]:
        at = utcnow()
        with self._tx() as cur:
            cur.executemany(
                "INSERT INTO replies (idempotency_key, origin, crm_id, conversation_key, in_reply_to, text,"
                " created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (idempotency_key) DO NOTHING",
                [
                    (r.idempotency_key, r.origin, r.crm_id, r.conversation_key, r.in_reply_to, r.text, at, at)
                    for r in sorted(replies, key=lambda r: r.idempotency_key)
                ],
            )
            if checkpoint is not None:
                self._save_checkpoint(cur, checkpoint[0], checkpoint[1], len(replies), at)
            keys = [r.idempotency_key for r in replies]
            cur.execute(f"SELECT {_COLUMNS} FROM replies WHERE idempotency_key = ANY(%b::text[])", (keys,))
            by_key = {row[1]: _reply(row) for row in cur.fetchall()}
        return [by_key[k] for k in keys]

    def replies(self, statuses: Sequence[ReplyStatus] = (), limit: int = 100) -> list[ReplyRecord]:
        if statuses:
            rows = self._rows(
                f"SELECT {_COLUMNS} FROM replies WHERE status = ANY(%b::text[]) ORDER BY id LIMIT %s",
                ([s.value for s in statuses], limit),
            )
        else:
            rows = self._rows(f"SELECT {_COLUMNS} FROM replies ORDER BY id LIMIT %s", (limit,))
        return [_reply(row) for row in rows]

    def reply(self, reply_id: int) -> ReplyRecord:
        row = self._one(f"SELECT {_COLUMNS} FROM replies WHERE id = %s", (reply_id,))
        if row is None:
            raise KeyError(reply_id)
        return _reply(row)

    def claim_reply(self, reply_id: int, lease_seconds: float) -> ReplyRecord | None:
        when = utcnow()
        with self._tx() as cur:
            cur.execute(
                f"UPDATE replies SET status = 'sending', attempts = attempts + 1, claimed_at = %s, updated_at = %s"
                f" WHERE id = %s AND (status = 'pending' OR (status = 'sending' AND claimed_at < %s))"
                f" RETURNING {_COLUMNS}",
                (when, when, reply_id, when - timedelta(seconds=lease_seconds)),
            )
            row = cur.fetchone()
        return None if row is None else _reply(row)

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
        at = utcnow()
        with self._tx() as cur:
            cur.execute(
                "UPDATE replies SET status = %(status)s, text = COALESCE(%(text)s, text),"
                " network_message_id = COALESCE(%(net)s, network_message_id), error = %(error)s,"
                " approved = COALESCE(%(approved)s, approved), updated_at = %(at)s,"
                " claimed_at = CASE WHEN %(status)s = 'sending' THEN claimed_at END"
                f" WHERE id = %(id)s RETURNING {_COLUMNS}",
                {
                    "status": status.value,
                    "text": text,
                    "net": network_message_id,
                    "error": None if error is None else redact(error),
                    "approved": approved,
                    "at": at,
                    "id": reply_id,
                },
            )
            row = cur.fetchone()
            if row is None:
                raise KeyError(reply_id)
            if audit:
                self._insert_audit(cur, audit, at)
        return _reply(row)
