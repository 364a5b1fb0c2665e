"""The outbox on SQLite: CRM operations waiting for the sink, the CRM ids it got back, and
references held back until their refused target is written."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from scrm_core.models import CrmObject
from scrm_core.redaction import redact
from scrm_core.store.base import OutboxStore
from scrm_core.store.records import OutboxItem, PendingLink, Settlement

from .db import INSERT_OUTBOX, OBJECT_VALUE, SqliteBase, decode, now, op_from_row

__all__ = ["SqliteOutbox"]

# A refused outbox row becomes a sink dead letter without a round trip through Python;
# the op JSON has the same shape as db.op_json's.
_OUTBOX_TO_DEAD_LETTER = """
    INSERT INTO dead_letters (source, reason, locator, op, payload, attempts, created_at, code, retryable, fix)
    SELECT 'sink', ?, external_key,
           json_object('object', object, 'external_key', external_key,
                       'fields', json(fields), 'refs', json(refs)),
           '', attempts + 1, ?, ?, ?, ?
    FROM outbox WHERE seq = ?
"""


# Settled rows not yet in the settled prefix: past this many they are all deleted at once,
# in seq order. In a backfill some old record is nearly always still in the sink's pool, so
# this is how most settled rows go: many flushes' rows together, each page written once
# (measured on bench_pipeline's flushes: 1,000 -> ~10 us per message, 5,000 -> ~7, 20,000
# -> ~5, 100,000 -> ~5; the outbox holds at most this many settled rows, ~10 MB).
DONE_LIMIT = 20_000

# Outbox rows still to be sent: not settled (settled ones wait in outbox_done for the prefix).
WAITING = "NOT EXISTS (SELECT 1 FROM outbox_done AS d WHERE d.seq = o.seq)"


def done_json(seqs: Sequence[int]) -> str:
    return orjson.dumps(list(seqs)).decode()


class SqliteOutbox(SqliteBase, OutboxStore):
    def outbox_take(self, limit: int, after_seq: int = 0) -> list[OutboxItem]:
        rows = self._conn.execute(
            "SELECT seq, object, external_key, fields, refs, attempts FROM outbox AS o"
            f" WHERE seq > ? AND {WAITING} ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [
            OutboxItem(seq, decode("outbox", seq, op_from_row, obj, key, fields, refs), attempts)
            for seq, obj, key, fields, refs, attempts in rows
        ]

    def outbox_settle(self, settlement: Settlement) -> list[OutboxItem]:
        at = now()
        obj_value = OBJECT_VALUE
        with self._tx() as c:
            if settlement.done:
                c.execute(
                    "INSERT OR IGNORE INTO outbox_done (seq) SELECT value FROM json_each(?)",
                    (done_json(settlement.done),),
                )
            if settlement.keep_ids:
                c.executemany(
                    "INSERT INTO crm_ids (object, external_key, crm_id) VALUES (?, ?, ?)"
                    " ON CONFLICT (object, external_key) DO UPDATE SET crm_id = excluded.crm_id",
                    [(obj_value[obj], key, crm_id) for obj, key, crm_id in settlement.crm_ids],
                )
            if settlement.failed:
                # attempts in the dead letter = tries made, this failed one included
                c.executemany(
                    _OUTBOX_TO_DEAD_LETTER,
                    [(redact(f.reason), at, f.code, int(f.retryable), f.fix, f.seq) for f in settlement.failed],
                )
                c.executemany("DELETE FROM outbox WHERE seq = ?", [(f.seq,) for f in settlement.failed])
            if settlement.retry:
                c.executemany("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?", zip(settlement.retry))
            if settlement.done or settlement.failed:
                self._drop_settled()
            if settlement.links:
                c.executemany(
                    "INSERT OR REPLACE INTO pending_links (child_object, child_key, ref, parent_object, parent_key,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (obj_value[k.child_object], k.child_key, k.ref, obj_value[k.parent_object], k.parent_key, at)
                        for k in settlement.links
                    ],
                )
            return self._release_links(settlement.crm_ids, at) if settlement.crm_ids else []

    def _drop_settled(self) -> None:
        """Settled rows leave the outbox: the settled prefix in one range, or, once too many
        wait behind an unsettled row, all of them in one statement."""
        c = self._conn
        first = c.execute(f"SELECT seq FROM outbox AS o WHERE {WAITING} ORDER BY seq LIMIT 1").fetchone()
        if first is None:  # everything settled: the quickest delete SQLite has (no WHERE)
            c.execute("DELETE FROM outbox")
            c.execute("DELETE FROM outbox_done")
            return
        c.execute("DELETE FROM outbox WHERE seq < ?", first)
        c.execute("DELETE FROM outbox_done WHERE seq < ?", first)
        if c.execute("SELECT COUNT(*) FROM outbox_done").fetchone()[0] > DONE_LIMIT:
            c.execute("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox_done)")
            c.execute("DELETE FROM outbox_done")

    def _release_links(self, written: Sequence[tuple[CrmObject, str, str]], at: str) -> list[OutboxItem]:
        """Pending links whose parent was just written become outbox items (and stop pending)."""
        c = self._conn
        parents = [(OBJECT_VALUE[obj], key) for obj, key, _ in written]
        if c.execute("SELECT 1 FROM pending_links LIMIT 1").fetchone() is None:
            return []  # the common case: nothing waits
        links: list[PendingLink] = []
        for obj, key in parents:
            for child_obj, child_key, ref in c.execute(
                "SELECT child_object, child_key, ref FROM pending_links WHERE parent_object = ? AND parent_key = ?"
                " ORDER BY created_at",
                (obj, key),
            ):
                links.append(PendingLink(CrmObject(obj), key, CrmObject(child_obj), child_key, ref))
        items: list[OutboxItem] = []
        for link in links:
            op = link.op()
            seq = c.execute(
                INSERT_OUTBOX, (op.object.value, op.external_key, orjson.dumps(op.fields), orjson.dumps(op.refs), at)
            ).lastrowid
            assert seq is not None
            items.append(OutboxItem(seq, op))
            c.execute(
                "DELETE FROM pending_links WHERE child_object = ? AND child_key = ? AND ref = ?",
                (link.child_object.value, link.child_key, link.ref),
            )
        return items

    def pending_links(self, limit: int = 100) -> list[PendingLink]:
        rows = self._conn.execute(
            "SELECT parent_object, parent_key, child_object, child_key, ref FROM pending_links"
            " ORDER BY created_at LIMIT ?",
            (limit,),
        )
        return [PendingLink(CrmObject(po), pk, CrmObject(co), ck, ref) for po, pk, co, ck, ref in rows]

    def outbox_depth(self, at_most: int | None = None) -> int:
        limit = -1 if at_most is None else at_most  # SQLite: a negative LIMIT is none
        sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM outbox AS o WHERE {WAITING} LIMIT ?)"
        return int(self._conn.execute(sql, (limit,)).fetchone()[0])

    def crm_ids(self, obj: CrmObject, external_keys: Sequence[str]) -> dict[str, str]:
        return self._crm_ids(obj, external_keys)
