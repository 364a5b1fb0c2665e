"""The fleet's part of the PostgreSQL store: workers with a heartbeat, leases on units of
work (a source's reader by checkpoint name; an outbox partition, ``outbox#N``), and the
outbox drained per partition.

Every time is the database's clock (``now()``), so workers whose clocks differ agree on
who holds what. A lease is taken with ``FOR UPDATE SKIP LOCKED`` (two workers asking at
once take different ones, neither waits) and its ``token`` grows with every taking, so a
worker that lost a lease while it was paused is told apart from the new holder: its page
commit is refused (:meth:`PgBase._fence`), and the rows it had in hand are marked as
handed to the new holder, which sends them again (by external key: an upsert, so the CRM
holds the record once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scrm_core.models import CrmObject
from scrm_core.store import (
    FleetView,
    Lease,
    LeaseRecord,
    OutboxItem,
    SourceLag,
    StoreInUse,
    WorkerInfo,
    WorkerRecord,
)
from scrm_core.store.base import FleetStore

from .db import OBJECT_VALUE, PgBase, decode, esc, op_from_row, unesc
from .schema import COMMIT_LOG_KEEP, LAG_WINDOW, WRITER_LOCK

__all__ = ["PgFleet"]

_FREE = "'-infinity'::timestamptz"


class PgFleet(PgBase, FleetStore):
    def join_fleet(self, worker: WorkerInfo) -> None:
        # Workers share the writer lock; a single writer (`scrm run --once`, `scrm erase`)
        # holds it alone: neither starts while the other runs.
        (shared,) = self._one("SELECT pg_try_advisory_lock_shared(%s)", (WRITER_LOCK,))
        if not shared:
            raise StoreInUse(self.path, "a single writer (scrm run --once, scrm erase...); the fleet waits for it")
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO workers (id, host, pid, command, started_at, heartbeat_at)"
                " VALUES (%s, %s, %s, %s, now(), now()) ON CONFLICT (id) DO UPDATE SET host = excluded.host,"
                " pid = excluded.pid, command = excluded.command, started_at = now(), heartbeat_at = now()",
                (worker.id, worker.host, worker.pid, worker.command),
            )

    def leave_fleet(self, worker_id: str) -> None:
        with self._tx() as cur:
            cur.execute(f"UPDATE leases SET holder = NULL, expires_at = {_FREE} WHERE holder = %s", (worker_id,))
            cur.execute("DELETE FROM workers WHERE id = %s", (worker_id,))

    def fleet_heartbeat(self, worker_id: str, lease_seconds: float) -> list[Lease]:
        with self._tx() as cur:
            cur.execute("UPDATE workers SET heartbeat_at = now() WHERE id = %s", (worker_id,))
            cur.execute("DELETE FROM commit_log WHERE at < now() - make_interval(secs => %s)", (COMMIT_LOG_KEEP,))
            # An expired lease is not renewed even if nobody took it yet: its holder has
            # already been told it may be taken, so it must have stopped that work.
            cur.execute(
                "UPDATE leases SET expires_at = now() + make_interval(secs => %s)"
                " WHERE holder = %s AND expires_at > now() RETURNING name, holder, token",
                (lease_seconds, worker_id),
            )
            rows = cur.fetchall()
        return sorted((Lease(name, holder, token) for name, holder, token in rows), key=lambda lease: lease.name)

    def acquire_leases(self, worker_id: str, names: Sequence[str], limit: int, lease_seconds: float) -> list[Lease]:
        if not names or limit <= 0:
            return []
        wanted = list(dict.fromkeys(names))
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO leases (name) SELECT unnest(%b::text[]) ORDER BY 1 ON CONFLICT (name) DO NOTHING",
                (wanted,),
            )
            cur.execute(
                "WITH free AS (SELECT name FROM leases WHERE name = ANY(%(names)s::text[])"
                " AND (holder IS NULL OR expires_at <= now())"
                " ORDER BY array_position(%(names)s::text[], name) LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
                " UPDATE leases l SET holder = %(worker)s, token = l.token + 1, acquired_at = now(),"
                " expires_at = now() + make_interval(secs => %(secs)s) FROM free WHERE l.name = free.name"
                " RETURNING l.name, l.holder, l.token",
                {"names": wanted, "limit": limit, "worker": worker_id, "secs": lease_seconds},
            )
            rows = cur.fetchall()
        order = {name: i for i, name in enumerate(wanted)}
        return sorted((Lease(n, h, t) for n, h, t in rows), key=lambda lease: order[lease.name])

    def release_leases(self, worker_id: str, names: Sequence[str]) -> None:
        with self._tx() as cur:
            cur.execute(
                f"UPDATE leases SET holder = NULL, expires_at = {_FREE} WHERE holder = %s AND name = ANY(%b::text[])",
                (worker_id, list(names)),
            )

    def live_workers(self, lease_seconds: float) -> list[str]:
        rows = self._rows(
            "SELECT id FROM workers WHERE heartbeat_at > now() - make_interval(secs => %s) ORDER BY id",
            (lease_seconds,),
        )
        return [worker_id for (worker_id,) in rows]

    def fleet(self, lease_seconds: float) -> FleetView:
        with self._conn.transaction(), self._conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")  # one snapshot
            cur.execute(
                "SELECT id, host, pid, command, started_at, EXTRACT(EPOCH FROM now() - heartbeat_at)"
                " FROM workers ORDER BY id"
            )
            workers = [
                WorkerRecord(id_, host, pid, command, started, float(ago), float(ago) < lease_seconds)
                for id_, host, pid, command, started, ago in cur.fetchall()
            ]
            cur.execute(
                # A released lease expires at -infinity, which now() cannot be subtracted from.
                "SELECT name, holder, token,"
                " CASE WHEN isfinite(expires_at) THEN EXTRACT(EPOCH FROM expires_at - now()) END"
                " FROM leases ORDER BY name"
            )
            leases = [
                LeaseRecord(name, holder, token, float(left) if left is not None else float("-inf"))
                for name, holder, token, left in cur.fetchall()
            ]
            cur.execute("SELECT part, COUNT(*) FROM outbox GROUP BY part ORDER BY part")
            depth = {int(part): int(n) for part, n in cur.fetchall()}
            cur.execute(
                "SELECT c.source, c.events, EXTRACT(EPOCH FROM now() - COALESCE(last.at, c.updated_at)),"
                " COALESCE(w.pages, 0),"
                " COALESCE(w.events, 0) FROM checkpoints c"
                " LEFT JOIN LATERAL (SELECT MAX(at) AS at FROM commit_log l WHERE l.source = c.source) last ON true"
                " LEFT JOIN (SELECT source, COUNT(*) AS pages, SUM(events) AS events FROM commit_log"
                " WHERE at > now() - make_interval(secs => %(window)s) GROUP BY source) w ON w.source = c.source"
                " ORDER BY c.source",
                {"window": LAG_WINDOW},
            )
            minutes = LAG_WINDOW / 60
            sources = [
                SourceLag(
                    name,
                    int(events),
                    None if ago is None else float(ago),
                    round(int(pages) / minutes, 1),
                    round(int(recent) / minutes, 1),
                    LAG_WINDOW,
                )
                for name, events, ago, pages, recent in cur.fetchall()
            ]
        return FleetView(workers, leases, depth, sources)

    def outbox_claim(self, lease: Lease, limit: int) -> list[tuple[OutboxItem, bool]]:
        # "#outbox": every partition (one sink for the fleet); "outbox#N": partition N.
        part = None if lease.name == "#outbox" else int(lease.name.removeprefix("outbox#"))
        me = f"{lease.holder}#{lease.token}"
        with self._tx() as cur:
            self._fence(cur, lease)
            cur.execute(
                "SELECT seq, object, external_key, fields, refs, attempts, holder FROM outbox"
                " WHERE (%(part)s::int IS NULL OR part = %(part)s) AND holder IS DISTINCT FROM %(me)s"
                " ORDER BY seq LIMIT %(limit)s FOR UPDATE SKIP LOCKED",
                {"part": part, "me": me, "limit": limit},
            )
            rows = cur.fetchall()
            if rows:
                cur.execute(
                    "UPDATE outbox SET holder = %s WHERE seq = ANY(%b::bigint[])", (me, [row[0] for row in rows])
                )
        return [
            (OutboxItem(seq, decode("outbox", seq, op_from_row, obj, key, fields, refs), attempts), holder is not None)
            for seq, obj, key, fields, refs, attempts, holder in rows
        ]

    def outbox_claim_each(self, leases: Sequence[Lease], limit: int) -> tuple[list[tuple[OutboxItem, bool]], list[str]]:
        # One transaction for every partition a sink holds: the leases still in force (locked
        # against a takeover while it runs, as _fence does), then their oldest rows not yet
        # handed to them, each marked with its own lease.
        if not leases:
            return [], []
        with self._tx() as cur:
            cur.execute(
                "SELECT l.name FROM leases l"
                " JOIN unnest(%b::text[], %b::text[], %b::bigint[]) AS w(name, holder, token)"
                " ON l.name = w.name AND l.holder = w.holder AND l.token = w.token"
                " WHERE l.expires_at > now() FOR SHARE OF l",
                ([x.name for x in leases], [x.holder for x in leases], [x.token for x in leases]),
            )
            valid = {name for (name,) in cur.fetchall()}
            mine = [x for x in leases if x.name in valid and x.name.startswith("outbox#")]
            rows: list[Any] = []
            if mine:
                cur.execute(
                    "SELECT o.seq, o.object, o.external_key, o.fields, o.refs, o.attempts, o.holder, m.me FROM outbox o"
                    " JOIN unnest(%b::smallint[], %b::text[]) AS m(part, me) ON o.part = m.part"
                    " WHERE o.holder IS DISTINCT FROM m.me ORDER BY o.seq LIMIT %s FOR UPDATE OF o SKIP LOCKED",
                    (
                        [int(x.name.removeprefix("outbox#")) for x in mine],
                        [f"{x.holder}#{x.token}" for x in mine],
                        limit,
                    ),
                )
                rows = cur.fetchall()
            if rows:
                cur.execute(
                    "UPDATE outbox o SET holder = h.me FROM unnest(%b::bigint[], %b::text[]) AS h(seq, me)"
                    " WHERE o.seq = h.seq",
                    ([row[0] for row in rows], [row[7] for row in rows]),
                )
        claimed = [
            (OutboxItem(seq, decode("outbox", seq, op_from_row, obj, key, fields, refs), attempts), holder is not None)
            for seq, obj, key, fields, refs, attempts, holder, _ in rows
        ]
        return claimed, [x.name for x in leases if x.name not in valid]

    def outbox_waiting(
        self, records: Sequence[tuple[CrmObject, str]], before: int | None = None
    ) -> set[tuple[CrmObject, str]]:
        if not records:
            return set()
        rows = self._rows(
            "SELECT DISTINCT o.object, o.external_key FROM outbox o"
            " JOIN unnest(%b::text[], %b::text[]) AS r(object, key) ON o.object = r.object AND o.external_key = r.key"
            " WHERE %s::bigint IS NULL OR o.seq < %s::bigint",
            ([OBJECT_VALUE[obj] for obj, _ in records], [esc(key) for _, key in records], before, before),
        )
        return {(CrmObject(obj), unesc(key)) for obj, key in rows}
