"""The outbox on PostgreSQL: CRM operations waiting for the sink, the CRM ids it got back, and
references held back until their refused target is written."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from scrm_core.models import CrmObject
from scrm_core.redaction import redact
from scrm_core.store import OutboxItem, PendingLink, Settlement
from scrm_core.store.base import OutboxStore

from .db import OBJECT_VALUE, PgBase, decode, esc, op_from_row, op_json, unesc, utcnow
from .pipeline import INSERT_DEAD_LETTER

__all__ = ["PgOutbox"]


class PgOutbox(PgBase, OutboxStore):
    def outbox_take(self, limit: int, after_seq: int = 0) -> list[OutboxItem]:
        rows = self._rows(
            "SELECT seq, object, external_key, fields, refs, attempts FROM outbox WHERE seq > %s ORDER BY seq LIMIT %s",
            (after_seq, limit),
        )
        return [
            OutboxItem(seq, decode("outbox", seq, op_from_row, obj, key, fields, refs), attempts)
            for seq, obj, key, fields, refs, attempts in rows
        ]

    def outbox_settle(self, settlement: Settlement) -> list[OutboxItem]:
        at = utcnow()
        with self._tx() as cur:
            if settlement.done:
                cur.execute("DELETE FROM outbox WHERE seq = ANY(%b::bigint[])", (sorted(set(settlement.done)),))
            if settlement.crm_ids and settlement.keep_ids:
                written = sorted(
                    {(OBJECT_VALUE[obj], esc(key)): crm_id for obj, key, crm_id in settlement.crm_ids}.items()
                )
                cur.execute(
                    "INSERT INTO crm_ids (object, external_key, crm_id)"
                    " SELECT * FROM unnest(%b::text[], %b::text[], %b::text[])"
                    " ON CONFLICT (object, external_key) DO UPDATE SET crm_id = excluded.crm_id",
                    ([o for (o, _), _ in written], [k for (_, k), _ in written], [i for _, i in written]),
                )
            if settlement.failed:
                self._dead_letter(cur, settlement, at)
            if settlement.retry:
                cur.execute(
                    "UPDATE outbox SET attempts = attempts + 1 WHERE seq = ANY(%b::bigint[])", (list(settlement.retry),)
                )
            if settlement.links:
                cur.executemany(
                    "INSERT INTO pending_links (child_object, child_key, ref, parent_object, parent_key, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (child_object, child_key, ref) DO UPDATE SET"
                    " parent_object = excluded.parent_object, parent_key = excluded.parent_key,"
                    " created_at = excluded.created_at",
                    [
                        (OBJECT_VALUE[k.child_object], esc(k.child_key), k.ref, OBJECT_VALUE[k.parent_object],
                         esc(k.parent_key), at)
                        for k in settlement.links
                    ],
                )  # fmt: skip
            return self._release_links(cur, settlement.crm_ids, at) if settlement.crm_ids else []

    def _dead_letter(self, cur: Any, settlement: Settlement, at: datetime) -> None:
        """Refused outbox rows become sink dead letters (attempts = tries made, this one included)."""
        refusals = {f.seq: f for f in settlement.failed}
        cur.execute(
            "SELECT seq, object, external_key, fields, refs, attempts FROM outbox WHERE seq = ANY(%b::bigint[])"
            " ORDER BY seq",
            (sorted(refusals),),
        )
        rows = cur.fetchall()
        letters = []
        for seq, obj, key, fields, refs, attempts in rows:
            f = refusals[seq]
            op = decode("outbox", seq, op_from_row, obj, key, fields, refs)
            letters.append(
                ("sink", redact(f.reason), key, op_json(op), "", attempts + 1, at, f.code, f.retryable, f.fix)
            )
        cur.executemany(INSERT_DEAD_LETTER, letters)
        cur.execute("DELETE FROM outbox WHERE seq = ANY(%b::bigint[])", (sorted(refusals),))

    def _release_links(self, cur: Any, written: Sequence[tuple[CrmObject, str, str]], at: datetime) -> list[OutboxItem]:
        """Pending links whose parent was just written become outbox items (and stop pending)."""
        cur.execute("SELECT 1 FROM pending_links LIMIT 1")
        if cur.fetchone() is None:
            return []  # the common case: nothing waits
        parents = sorted({(OBJECT_VALUE[obj], esc(key)) for obj, key, _ in written})
        cur.execute(
            "DELETE FROM pending_links l USING unnest(%b::text[], %b::text[]) AS w(o, k)"
            " WHERE l.parent_object = w.o AND l.parent_key = w.k"
            " RETURNING l.parent_object, l.parent_key, l.child_object, l.child_key, l.ref, l.created_at",
            ([o for o, _ in parents], [k for _, k in parents]),
        )
        rows = sorted(cur.fetchall(), key=lambda r: (r[5], r[2], r[3], r[4]))
        links = [
            PendingLink(CrmObject(po), unesc(pk), CrmObject(co), unesc(ck), ref) for po, pk, co, ck, ref, _ in rows
        ]
        ops = [link.op() for link in links]
        seqs = self._queue(cur, ops, at)
        return [OutboxItem(seq, op) for seq, op in zip(seqs, ops, strict=True)]

    def pending_links(self, limit: int = 100) -> list[PendingLink]:
        rows = self._rows(
            "SELECT parent_object, parent_key, child_object, child_key, ref FROM pending_links"
            " ORDER BY created_at, child_object, child_key, ref LIMIT %s",
            (limit,),
        )
        return [PendingLink(CrmObject(po), unesc(pk), CrmObject(co), unesc(ck), ref) for po, pk, co, ck, ref in rows]

    def outbox_depth(self, at_most: int | None = None) -> int:
        # LIMIT NULL is no limit
        return int(self._one("SELECT COUNT(*) FROM (SELECT 1 FROM outbox LIMIT %s) AS o", (at_most,))[0])

    def crm_ids(self, obj: CrmObject, external_keys: Sequence[str]) -> dict[str, str]:
        return self._crm_ids(obj, external_keys)
