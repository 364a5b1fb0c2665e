"""The webhook inbox on SQLite: payloads kept before the receiver answers 2xx."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import orjson

from scrm_core.store.base import WebhookInbox
from scrm_core.store.records import StoredWebhook

from .db import SqliteBase, decode, now

__all__ = ["SqliteWebhookInbox"]


class SqliteWebhookInbox(SqliteBase, WebhookInbox):
    def store_webhook(self, source: str, digest: str, headers: Mapping[str, str], body: bytes) -> int | None:
        # The 200 that follows tells the network to forget the payload: this one commit is
        # fsynced (WAL with synchronous=NORMAL survives a process crash, not a power cut).
        self._conn.execute("PRAGMA synchronous = FULL")
        try:
            with self._tx() as c:
                cur = c.execute(
                    "INSERT OR IGNORE INTO webhook_inbox (source, digest, headers, body, received_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (source, digest, orjson.dumps(dict(headers)).decode(), body, now()),
                )
                return cur.lastrowid if cur.rowcount else None
        finally:
            self._conn.execute("PRAGMA synchronous = NORMAL")

    def stored_webhooks(self, source: str, after_id: int, limit: int) -> list[StoredWebhook]:
        rows = self._conn.execute(
            "SELECT id, headers, body, received_at FROM webhook_inbox WHERE source = ? AND id > ? ORDER BY id LIMIT ?",
            (source, after_id, limit),
        )
        return [
            StoredWebhook(
                id_,
                source,
                decode("webhook_inbox", id_, orjson.loads, headers),
                bytes(body),
                decode("webhook_inbox", id_, datetime.fromisoformat, at),
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
