"""The store itself: every part of :class:`scrm_core.store.StateStore` on one PostgreSQL
database (imported when a ``postgresql://`` state is opened, so loading the plugin does not
load psycopg)."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg

from scrm_core.errors import FatalError
from scrm_core.store import StateStore, StorageError, StoreInUse
from scrm_core.store.base import FLEET_INTERFACE, INTERFACE, StoreLifecycle

from .db import PgBase
from .erase import PgErase
from .fleet import PgFleet
from .identity import PgIdentity
from .learning import PgLearning
from .misc import PgAdapterState, PgAuditLog, PgDeadLetters, PgWebhookInbox
from .outbox import PgOutbox
from .pipeline import PgPipeline
from .replies import PgReplies
from .schema import COMMIT_LOG_KEEP, MIGRATION_LOCK, MIGRATIONS, WRITER_LOCK
from .urls import safe_url

__all__ = ["PostgresStore"]

S = TypeVar("S", bound=type)


def _storage_errors(cls: S) -> S:
    """A connection lost or refused, a full disk, a permission denied: a
    :class:`~scrm_core.store.StorageError` naming the database (never its password) and
    PostgreSQL's reason. Constraint and data errors are bugs, and stay as they are."""

    def guard(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except (psycopg.OperationalError, psycopg.errors.InsufficientPrivilege) as exc:
                where = getattr(self, "path", "the PostgreSQL state store")
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise StorageError(
                    where,
                    f"the state store {where} cannot be used: {reason}. Check that PostgreSQL is running and "
                    "reachable, and the URL's user, database and rights; nothing was written by this step",
                ) from exc

        return guarded

    for name in (*INTERFACE, *FLEET_INTERFACE, "__init__"):
        setattr(cls, name, guard(getattr(cls, name)))
    return cls


class PgLifecycle(PgBase, StoreLifecycle):
    def __init__(self, url: str) -> None:
        self.path = safe_url(url)
        # Autocommit: a read is one statement; a write is one explicit transaction (_tx).
        self._conn = psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=10,
            application_name=f"scrm pid {os.getpid()} on {socket.gethostname()}"[:63],
        )
        self._writer = False

    def migrate(self) -> int:
        with self._tx() as cur:
            # Workers starting together: the first migrates, the others wait, then see it done.
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ)"
            )
            cur.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            current = int(self._returned(cur))
            if current > len(MIGRATIONS):
                raise FatalError(
                    f"the state store {self.path} has schema version {current}, but this scrm-postgres only "
                    f"knows versions up to {len(MIGRATIONS)}: it was written by a newer one. Upgrade to use it."
                )
            for version in range(current + 1, len(MIGRATIONS) + 1):
                cur.execute(MIGRATIONS[version - 1])
                cur.execute("INSERT INTO schema_version (version, applied_at) VALUES (%s, now())", (version,))
            # Commits older than `scrm status` looks at (fleet heartbeats prune it too; this is
            # for deployments of `scrm run --once` only).
            cur.execute("DELETE FROM commit_log WHERE at < now() - make_interval(secs => %s)", (COMMIT_LOG_KEEP,))
        return max(current, len(MIGRATIONS))

    def close(self) -> None:
        # The writer claim and a fleet worker's share of it are session locks: given back now
        # (closing alone ends them a moment later, when the server's process notices).
        with contextlib.suppress(psycopg.Error):
            if not self._conn.closed:
                self._conn.execute("SELECT pg_advisory_unlock_all()")
        self._conn.close()

    def claim_writer(self) -> None:
        """One writing process outside the fleet (``scrm run --once``, ``scrm erase``...), as
        with SQLite: a session-level advisory lock, which PostgreSQL releases when the
        connection ends, even if the process was killed. Fleet workers share it
        (:meth:`join_fleet`), so the two exclude each other."""
        if self._writer:
            return
        # A holder that just disconnected (a restart) may still show for a moment: its
        # server process ends after the client. Only a holder that is there is reported.
        deadline = time.monotonic() + 5.0
        while not self._one("SELECT pg_try_advisory_lock(%s)", (WRITER_LOCK,))[0]:
            row = self._one(
                "SELECT a.application_name, a.client_addr, a.backend_start FROM pg_locks l"
                " JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted"
                " AND l.objid = %s LIMIT 1",
                (WRITER_LOCK & 0xFFFFFFFF,),
            )
            if row is not None or time.monotonic() > deadline:
                owner = "unknown" if row is None else f"{row[0] or 'a client'} from {row[1] or 'local'} since {row[2]}"
                raise StoreInUse(self.path, owner)
            time.sleep(0.05)
        self._writer = True


@_storage_errors
class PostgresStore(
    PgLifecycle,
    PgPipeline,
    PgOutbox,
    PgDeadLetters,
    PgReplies,
    PgWebhookInbox,
    PgIdentity,
    PgAuditLog,
    PgLearning,
    PgAdapterState,
    PgErase,
    PgFleet,
    StateStore,
):
    """:class:`~scrm_core.store.StateStore` on one PostgreSQL database. Call :meth:`migrate` first."""
