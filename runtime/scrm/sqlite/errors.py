"""SQLite's storage failures as operator errors: which file, what went wrong, what to do.

SQLite reports a full disk, a read-only file or a missing folder as ``OperationalError``
with a one-line message and no path ("attempt to write a readonly database"). Every
method of :class:`~scrm.sqlite.SqliteStore` translates those into a
:class:`~scrm_core.store.StorageError` that names the file and the fix.
"""

from __future__ import annotations

import os
import sqlite3

from scrm_core.store.errors import StorageError

__all__ = ["storage_error"]


# Primary SQLite result codes (https://www.sqlite.org/rescode.html).
_PERM, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 3, 5, 6, 8, 10, 11, 13, 14, 26


def _who() -> str:
    uid = os.getuid() if hasattr(os, "getuid") else None
    return f"user id {uid}" if uid is not None else "this user"


def storage_error(path: str, exc: BaseException) -> StorageError | None:
    """The operator's version of a storage failure on ``path``; None if ``exc`` is not one
    (a bug, a constraint: those stay what they are)."""
    if isinstance(exc, OSError) and not isinstance(exc, sqlite3.Error):
        return StorageError(
            path,
            f"state store {path}: {exc.strerror or exc} ({exc.filename or path}); check that the folder exists "
            f"and that {_who()} may write in it",
            detail=repr(exc),
        )
    if not isinstance(exc, sqlite3.Error):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc).lower()
    folder = os.path.dirname(os.path.abspath(path))
    if primary == _FULL or "disk is full" in text:
        message = (
            f"the disk holding the state store {path} is full; the last transaction was rolled back and "
            f"nothing stored is lost. Free some space on it (or move the state elsewhere with [state] url), "
            "then run scrm again"
        )
    elif primary == _READONLY or "readonly" in text or "read-only" in text:
        message = (
            f"the state store {path} is read-only for {_who()}: SQLite must write the file and create "
            f"{os.path.basename(path)}-wal and -shm beside it. Fix the permissions of the file and of its folder "
            f"{folder} (e.g. chown/chmod u+rw), or point [state] url at a writable place"
        )
    elif primary in (_CANTOPEN, _PERM) or "unable to open" in text:
        message = (
            f"cannot open the state store {path}: check that the folder {folder} exists and that {_who()} may "
            "read and write in it"
        )
    elif primary == _IOERR or "disk i/o error" in text:
        message = (
            f"the disk failed while writing the state store {path} ({exc}); check the disk and free space, "
            "then run scrm again (the last transaction was rolled back)"
        )
    elif primary in (_BUSY, _LOCKED) or "database is locked" in text:
        message = (
            f"the state store {path} stayed locked by another process for the whole busy timeout; "
            "stop the other scrm process (or whatever holds the file) and run again"
        )
    elif primary in (_CORRUPT, _NOTADB) or "malformed" in text or "not a database" in text:
        message = (
            f"the state store {path} is damaged or not an scrm state store ({exc}); restore a backup, "
            "or point [state] url at another file"
        )
    else:
        return None
    return StorageError(path, message, detail=f"{type(exc).__name__}: {exc}")
