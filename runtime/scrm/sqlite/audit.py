"""The audit log and the adapters' key-value areas, on SQLite."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from scrm_core.store.base import AdapterStateStore, AuditLog
from scrm_core.store.records import AuditEntry

from .db import SqliteBase, decode, now

__all__ = ["SqliteAdapterState", "SqliteAuditLog"]


class SqliteAuditLog(SqliteBase, AuditLog):
    def audit(self, entries: Sequence[AuditEntry]) -> None:
        at = now()
        with self._tx():
            self._insert_audit(entries, at)

    def audit_log(self, limit: int = 100) -> list[tuple[datetime, AuditEntry]]:
        rows = self._conn.execute(
            "SELECT id, at, action, subject, detail FROM audit_log ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [
            (decode("audit_log", id_, datetime.fromisoformat, at), AuditEntry(action, subject, detail))
            for id_, at, action, subject, detail in rows
        ]


class SqliteAdapterState(SqliteBase, AdapterStateStore):
    def adapter_state_get(self, adapter: str, keys: Sequence[str]) -> dict[str, str]:
        sql = "SELECT key, value FROM adapter_state WHERE adapter = ? AND key IN ({marks})"
        return dict(self._select_in(sql, list(keys), adapter))

    def adapter_state_put(self, adapter: str, items: Mapping[str, str]) -> None:
        at = now()
        with self._tx() as c:
            c.executemany(
                "INSERT INTO adapter_state (adapter, key, value, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (adapter, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                [(adapter, k, v, at) for k, v in items.items()],
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
