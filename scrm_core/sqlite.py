"""SQLite files that several processes open: the one step ``busy_timeout`` does not cover."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

__all__ = ["use_wal"]


def use_wal(conn: sqlite3.Connection, *, budget: float = 30.0, wait: Callable[[float], None] = time.sleep) -> None:
    """Put the database in WAL mode, trying again (for up to ``budget`` seconds) while other
    processes that open it at the same moment hold it.

    Converting the journal needs the file to itself, and a "database is locked" there is
    not always preceded by the busy handler's wait: two processes opening a new file at
    once (two fleet workers on one localcrm file, a worker and ``scrm serve``) made one of
    them fail at start. WAL is a property of the file, so once one of them converted it,
    the others have nothing to do."""
    deadline = time.monotonic() + budget
    pause = 0.01
    while True:
        if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
            return
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        wait(pause)
        pause = min(pause * 2, 0.2)
