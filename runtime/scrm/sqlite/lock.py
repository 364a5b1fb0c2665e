"""The single-writer rule of SQLite state: one process writes a state store at a time.

Two engines on one SQLite file interleave their reads and commits (each sees the other's
half-done pages as already seen), so the CRM goes wrong in ways a later run cannot repair.
The writer holds an exclusive ``flock`` on ``<state file>.lock`` for as long as it runs;
the operating system drops the lock when the process ends, however it ends (SIGKILL
included), so a stale lock never blocks a restart. The file holds who the writer is (pid,
host, command, since when) for the message a second process gets.

Within one process the lock is shared: ``scrm serve`` runs the receiver and the engine
together, and tests run several engines, on one store.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from scrm_core.redaction import printable
from scrm_core.store.errors import StoreInUse

from .errors import storage_error

__all__ = ["WriterLock", "lock_path"]

try:
    import fcntl
except ImportError:  # Windows: no flock; the rule is not enforced there
    fcntl = None  # type: ignore[assignment]


def lock_path(db_path: str | Path) -> Path:
    return Path(f"{db_path}.lock")


@dataclass
class _Held:
    fd: int
    count: int


_held: dict[str, _Held] = {}
_guard = threading.Lock()


def _command() -> str:
    args = [Path(sys.argv[0]).name, *sys.argv[1:3]] if sys.argv and sys.argv[0] else ["python"]
    return printable(" ".join(args), 80)


def _ago(since: str) -> str:
    try:
        seconds = (datetime.now(UTC) - datetime.fromisoformat(since)).total_seconds()
    except ValueError:
        return ""
    if seconds < 120:
        return f" ({seconds:.0f} s ago)"
    return f" ({seconds / 60:.0f} min ago)" if seconds < 7200 else f" ({seconds / 3600:.1f} h ago)"


class WriterLock:
    """The writer lock of one state-store file, held by this process until :meth:`release`."""

    def __init__(self, db_path: str | Path) -> None:
        self.db_path = str(db_path)
        self.path = lock_path(db_path)
        self._key = os.path.realpath(self.path)
        self._mine = False

    def acquire(self) -> None:
        """Take the lock, or raise :class:`StoreInUse` naming the process that has it."""
        if fcntl is None or self._mine:
            return
        with _guard:
            held = _held.get(self._key)
            if held is not None:
                held.count += 1
                self._mine = True
                return
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                error = storage_error(str(self.path), exc)
                raise (error or exc) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = self._owner(fd)
                os.close(fd)
                raise StoreInUse(self.db_path, owner) from None
            except BaseException:
                os.close(fd)
                raise
            self._write_owner(fd)
            _held[self._key] = _Held(fd, 1)
            self._mine = True

    def release(self) -> None:
        if not self._mine:
            return
        self._mine = False
        with _guard:
            held = _held.get(self._key)
            if held is None:
                return
            held.count -= 1
            if held.count == 0:
                del _held[self._key]
                os.close(held.fd)  # closing drops the flock

    @staticmethod
    def _write_owner(fd: int) -> None:
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": _command(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(owner).encode() + b"\n", 0)

    @staticmethod
    def _owner(fd: int) -> str:
        try:
            data = json.loads(os.pread(fd, 4096, 0) or b"{}")
        except (OSError, ValueError):
            data = {}
        if not isinstance(data, dict) or "pid" not in data:
            return "one that has just started (its details are not written yet)"
        since = str(data.get("since", "?"))
        return (
            f"pid {printable(data.get('pid'), 20)} on host {printable(data.get('host', '?'), 80)} "
            f"({printable(data.get('command', '?'), 80)}), since {printable(since, 40)}{_ago(since)}"
        )
