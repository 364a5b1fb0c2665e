"""Storage failures as operator errors: which store, what went wrong, what to do.

A back end translates its driver's failures (a full disk, a read-only file, a lost
connection) into a :class:`StorageError` that names the store and the fix; the failed
transaction was rolled back, so nothing already stored is lost.
"""

from __future__ import annotations

from ..errors import FatalError, ScrmError

__all__ = ["LeaseLost", "StorageError", "StoreInUse"]


class StorageError(FatalError):
    """The state store's file cannot be written or read (disk full, permissions, damage)."""

    def __init__(self, path: str, operator_message: str, *, detail: str | None = None) -> None:
        super().__init__(operator_message, detail=detail)
        self.path = path


class StoreInUse(FatalError):
    """Another process is the state store's writer (the single-writer rule of SQLite state)."""

    def __init__(self, path: str, owner: str) -> None:
        super().__init__(
            f"the state store {path} is in use by another scrm process: {owner}. A state store has one writer: "
            "stop that process first (scrm serve runs the webhook receiver and the sync together in one process)"
        )
        self.path = path
        self.owner = owner


class LeaseLost(ScrmError):
    """A fleet worker's lease ended (expired and taken over, or released): what it was about
    to write for that unit is not written; the new holder reads again from the checkpoint."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"the lease on {name!r} is no longer this worker's; another worker goes on from its checkpoint"
        )
        self.name = name
