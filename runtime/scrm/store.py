"""The state store as the runtime uses it: the contract (:mod:`scrm_core.store`, re-exported
here), the embedded SQLite back end and opening a store by URL."""

from __future__ import annotations

from pathlib import Path

from scrm_core import store as _contract
from scrm_core.store import *  # noqa: F403  (the contract, re-exported for the runtime's modules)
from scrm_core.store import StateStore, StoreBackends

from .sqlite import SqliteBackend, SqliteStore

__all__ = ["SqliteBackend", "SqliteStore", "builtin_backends", "open_store"]
__all__ += _contract.__all__


def builtin_backends() -> StoreBackends:
    """The back ends scrm ships (SQLite), for code that runs without a plugin host."""
    backends = StoreBackends()
    backends.register(SqliteBackend())
    return backends


def open_store(url: str, base_dir: Path, backends: StoreBackends | None = None) -> StateStore:
    """Open the store named by ``url`` with the back end registered for its scheme (only the
    built-in SQLite when ``backends`` is not given: pass ``PluginHost.stores`` to use every
    installed one); call :meth:`StateStore.migrate` before using it.

    ``sqlite:///scrm.db`` is relative to ``base_dir`` (usually the config file's folder),
    ``sqlite:////var/lib/scrm.db`` is absolute, ``sqlite:///:memory:`` lives in memory.
    """
    return (backends or builtin_backends()).open(url, base_dir)
