"""The embedded state store: one SQLite file in WAL mode (the default, ``sqlite:///scrm.db``).

:class:`SqliteStore` is made of one part per concern of :class:`~scrm_core.store.StateStore`
(``pipeline``, ``outbox``, ``dead_letters``, ``replies``, ``webhooks``, ``identity``,
``audit``, ``learning``, ``erase``: one module each), sharing one connection and the
transaction helper of :mod:`.db`. :class:`SqliteBackend` registers it for ``sqlite://``
URLs through ``scrm_register_stores``, as any other back end registers itself.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from scrm_core import hookimpl
from scrm_core.errors import FatalError
from scrm_core.sqlite import use_wal
from scrm_core.store.base import INTERFACE, StateStore, StoreLifecycle
from scrm_core.store.registry import StoreBackend

from .audit import SqliteAdapterState, SqliteAuditLog
from .checks import sqlite_file_problems
from .db import SqliteBase, now
from .dead_letters import SqliteDeadLetters
from .erase import SqliteErase
from .errors import storage_error
from .identity import SqliteIdentity
from .learning import SqliteLearning
from .lock import WriterLock
from .outbox import SqliteOutbox
from .pipeline import SqlitePipeline
from .replies import SqliteReplies
from .schema import MIGRATIONS, statements
from .webhooks import SqliteWebhookInbox

__all__ = ["MIGRATIONS", "SqliteBackend", "SqliteStore", "sqlite_path"]

S = TypeVar("S", bound=type)


def _storage_errors(cls: S) -> S:
    """Every method of the interface (and the constructor) turns a storage failure (disk
    full, read-only, missing folder, damage) into a :class:`~scrm_core.store.StorageError`
    that names the file and the fix, instead of SQLite's path-less one-liner."""

    def guard(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except (sqlite3.Error, OSError) as exc:
                error = storage_error(getattr(self, "path", "?"), exc)
                if error is None:
                    raise
                raise error from exc

        return guarded

    for name in (*INTERFACE, "__init__"):
        setattr(cls, name, guard(getattr(cls, name)))
    return cls


class SqliteLifecycle(SqliteBase, StoreLifecycle):
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._writer = WriterLock(self.path) if self.path != ":memory:" else None
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; _tx() says where they begin and end.
        self._conn = sqlite3.connect(self.path, isolation_level=None)
        use_wal(self._conn)  # scrm run and scrm serve may open a new state at once
        # NORMAL in WAL mode fsyncs at checkpoints, not at every commit: a committed page
        # survives a crash of the process (the promise scrm makes), but a power loss or OS
        # crash may lose the last few transactions. Sources re-deliver from the older
        # cursor then, and upserts by external key keep that harmless.
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("PRAGMA busy_timeout = 10000")
        self._conn.execute("PRAGMA foreign_keys = ON")
        # 32 MB of page cache instead of 2: lookups and upserts go by random keys all over
        # the seen-event, message and CRM-id indexes (measured: ~5% less CPU per event).
        self._conn.execute("PRAGMA cache_size = -32768")
        # Deleted rows are zeroed where their page is written anyway, but freed pages are not
        # rewritten just to zero them (Debian's SQLite zeroes them by default: settling the
        # outbox wrote every freed page twice). An erase turns full zeroing on for its
        # transaction (SqliteErase.erase_person): what it removes does not stay in the file.
        self._conn.execute("PRAGMA secure_delete = FAST")

    def migrate(self) -> int:
        with self._tx() as c:
            c.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT)")
            current: int = c.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
            if current > len(MIGRATIONS):
                raise FatalError(
                    f"the state store {self.path} has schema version {current}, but this scrm only "
                    f"knows versions up to {len(MIGRATIONS)}: it was written by a newer scrm. "
                    "Upgrade scrm to use it."
                )
            for version in range(current + 1, len(MIGRATIONS) + 1):
                for stmt in statements(MIGRATIONS[version - 1]):
                    c.execute(stmt)
                c.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, now()))
        return max(current, len(MIGRATIONS))

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            if self._writer is not None:
                self._writer.release()

    def claim_writer(self) -> None:
        if self._writer is not None:
            self._writer.acquire()


@_storage_errors
class SqliteStore(
    SqliteLifecycle,
    SqlitePipeline,
    SqliteOutbox,
    SqliteDeadLetters,
    SqliteReplies,
    SqliteWebhookInbox,
    SqliteIdentity,
    SqliteAuditLog,
    SqliteLearning,
    SqliteAdapterState,
    SqliteErase,
    StateStore,
):
    """:class:`StateStore` on one SQLite file (or ``":memory:"``). Call :meth:`migrate` first."""


def sqlite_path(url: str, base_dir: Path) -> Path | None:
    """The file of a ``sqlite:///`` state URL (None: in memory); FatalError for another URL.

    ``sqlite:///scrm.db`` is relative to ``base_dir`` (usually the config file's folder),
    ``sqlite:////var/lib/scrm.db`` is absolute, ``sqlite:///:memory:`` lives in memory."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() != "sqlite":
        raise FatalError(f"not an SQLite state URL (scheme {scheme + '://' if sep else '(none)'!r})")
    if not rest.startswith("/") or rest == "/":
        raise FatalError("state store URL must look like sqlite:///scrm.db (three slashes, then a file path)")
    path = rest[1:]
    return None if path == ":memory:" else base_dir / path


class SqliteBackend(StoreBackend):
    """``sqlite:///PATH``: the embedded default, one writer process."""

    name = "sqlite"
    schemes = ("sqlite",)

    def open(self, url: str, base_dir: Path) -> StateStore:
        path = sqlite_path(url, base_dir)
        return SqliteStore(":memory:" if path is None else path)

    def local_problems(self, url: str, base_dir: Path) -> tuple[list[str], list[str]]:
        path = sqlite_path(url, base_dir)
        return ([], []) if path is None else sqlite_file_problems(path, "the state store")

    def snapshot(self, url: str, base_dir: Path, folder: Path) -> str:
        """SQLite's online backup (the WAL included) into ``folder``."""
        copy = folder / "state.db"
        path = sqlite_path(url, base_dir)
        if path is not None and path.exists():
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as src, sqlite3.connect(copy) as dst:
                src.backup(dst)
        return f"sqlite:///{copy}"


@hookimpl
def scrm_register_stores(register: Callable[[StoreBackend], None]) -> None:
    register(SqliteBackend())
