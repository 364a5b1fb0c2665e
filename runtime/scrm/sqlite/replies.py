"""Replies towards the networks, on SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from scrm_core.redaction import redact
from scrm_core.store.base import CheckpointArg, ReplyStore
from scrm_core.store.records import AuditEntry, NewReply, ReplyRecord, ReplyStatus

from .db import SqliteBase, decode, now

__all__ = ["SqliteReplies"]

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
        approved=bool(approved),
        network_message_id=net_id,
        error=error,
        created_at=decode("replies", id_, datetime.fromisoformat, created),
        updated_at=decode("replies", id_, datetime.fromisoformat, updated),
    )


class SqliteReplies(SqliteBase, ReplyStore):
    def enqueue_replies(self, replies: Sequence[NewReply], *, checkpoint: CheckpointArg = None) -> list[ReplyRecord]:
        at = now()
        with self._tx() as c:
            c.executemany(
                "INSERT OR IGNORE INTO replies (idempotency_key, origin, crm_id, conversation_key, in_reply_to, text,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (r.idempotency_key, r.origin, r.crm_id, r.conversation_key, r.in_reply_to, r.text, at, at)
                    for r in replies
                ],
            )
            if checkpoint is not None:
                self._save_checkpoint(checkpoint[0], checkpoint[1], len(replies), at)
            keys = [r.idempotency_key for r in replies]
            rows = list(self._select_in(f"SELECT {_COLUMNS} FROM replies WHERE idempotency_key IN ({{marks}})", keys))
        by_key = {row[1]: _reply(row) for row in rows}
        return [by_key[k] for k in keys]

    def replies(self, statuses: Sequence[ReplyStatus] = (), limit: int = 100) -> list[ReplyRecord]:
        if statuses:
            marks = ",".join("?" * len(statuses))
            sql = f"SELECT {_COLUMNS} FROM replies WHERE status IN ({marks}) ORDER BY id LIMIT ?"
            rows = self._conn.execute(sql, (*[s.value for s in statuses], limit))
        else:
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM replies ORDER BY id LIMIT ?", (limit,))
        return [_reply(row) for row in rows]

    def reply(self, reply_id: int) -> ReplyRecord:
        row = self._conn.execute(f"SELECT {_COLUMNS} FROM replies WHERE id = ?", (reply_id,)).fetchone()
        if row is None:
            raise KeyError(reply_id)
        return _reply(row)

    def claim_reply(self, reply_id: int, lease_seconds: float) -> ReplyRecord | None:
        when = datetime.now(UTC)
        expired = (when - timedelta(seconds=lease_seconds)).isoformat()
        with self._tx() as c:
            cur = c.execute(
                "UPDATE replies SET status = 'sending', attempts = attempts + 1, claimed_at = ?, updated_at = ?"
                " WHERE id = ? AND (status = 'pending' OR (status = 'sending' AND claimed_at < ?))",
                (when.isoformat(), when.isoformat(), reply_id, expired),
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
        at = now()
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
                    at,
                    status.value,
                    reply_id,
                ),
            )
            if not cur.rowcount:
                raise KeyError(reply_id)
            if audit:
                self._insert_audit(audit, at)
        return self.reply(reply_id)
