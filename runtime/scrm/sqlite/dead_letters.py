"""The dead-letter queue on SQLite."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from scrm_core.models import CrmObject
from scrm_core.store.base import DeadLetterStore
from scrm_core.store.records import AuditEntry, DeadLetter

from .db import VALUE_OBJECT, SqliteBase, decode, now, op_from_json

__all__ = ["SqliteDeadLetters"]


class SqliteDeadLetters(SqliteBase, DeadLetterStore):
    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
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
                op=None if op is None else decode("dead_letters", id_, op_from_json, op),
                payload=payload,
                code=code,
                retryable=None if retryable is None else bool(retryable),
                fix=fix,
                id=id_,
                created_at=decode("dead_letters", id_, datetime.fromisoformat, at),
                attempts=attempts,
            )
            for id_, source, reason, locator, op, payload, attempts, at, code, retryable, fix in rows
        ]

    def dead_letter_keys(self) -> set[tuple[CrmObject, str]]:
        rows = self._conn.execute(
            "SELECT json_extract(op, '$.object'), json_extract(op, '$.external_key') FROM dead_letters"
            " WHERE op IS NOT NULL"
        )
        return {(CrmObject(obj), key) for obj, key in rows if obj in VALUE_OBJECT}

    def dead_letter_count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])

    def requeue_dead_letters(self, ids: Sequence[int] | None = None) -> int:
        at = now()
        with self._tx() as c:
            if ids is None:
                rows = list(c.execute("SELECT id, op FROM dead_letters WHERE op IS NOT NULL ORDER BY id"))
            else:
                sql = "SELECT id, op FROM dead_letters WHERE op IS NOT NULL AND id IN ({marks})"
                rows = sorted(self._select_in(sql, sorted(set(ids))))
            self._queue([decode("dead_letters", id_, op_from_json, op) for id_, op in rows], at)
            c.executemany("DELETE FROM dead_letters WHERE id = ?", [(id_,) for id_, _ in rows])
            if rows:
                self._insert_audit([AuditEntry("dlq.requeued", "dead_letters", f"{len(rows)} operation(s)")], at)
        return len(rows)
