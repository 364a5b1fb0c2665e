"""The state store: the interface, its SQLite implementation, and the async wrapper the
engine uses so database calls never block the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, cast

from ..errors import FatalError
from .base import (
    AuditEntry,
    Checkpoint,
    DeadLetter,
    ErasePlan,
    MessageRecord,
    NewDeadLetter,
    NewReply,
    OutboxItem,
    PageCommit,
    ProfileRecord,
    ReplyRecord,
    ReplyStatus,
    Settlement,
    StateStore,
    StoredWebhook,
)
from .errors import StorageError, StoreInUse
from .sqlite import SqliteStore

__all__ = [
    "AsyncStore",
    "AuditEntry",
    "Checkpoint",
    "DeadLetter",
    "ErasePlan",
    "MessageRecord",
    "NewDeadLetter",
    "NewReply",
    "OutboxItem",
    "PageCommit",
    "ProfileRecord",
    "ReplyRecord",
    "ReplyStatus",
    "Settlement",
    "SqliteStore",
    "StateStore",
    "StorageError",
    "StoreInUse",
    "StoredWebhook",
    "open_store",
    "sqlite_path",
]

P = ParamSpec("P")
R = TypeVar("R")


def open_store(url: str, base_dir: Path) -> StateStore:
    """Open the store named by ``url``; call :meth:`StateStore.migrate` before using it.

    ``sqlite:///scrm.db`` is relative to ``base_dir`` (usually the config file's folder),
    ``sqlite:////var/lib/scrm.db`` is absolute, ``sqlite:///:memory:`` lives in memory.
    """
    path = sqlite_path(url, base_dir)
    return SqliteStore(":memory:" if path is None else path)


def sqlite_path(url: str, base_dir: Path) -> Path | None:
    """The file of a ``sqlite:///`` state URL (None: in memory); FatalError for another URL."""
    scheme, sep, rest = url.partition("://")
    # Name only the scheme in errors: a database URL may carry a password.
    if not sep or scheme.lower() != "sqlite":
        raise FatalError(
            f"state store URL scheme {scheme + '://' if sep else '(none)'!r} is not supported: only "
            "sqlite:///path/to/scrm.db works in this version (PostgreSQL is planned)"
        )
    if not rest.startswith("/") or rest == "/":
        raise FatalError("state store URL must look like sqlite:///scrm.db (three slashes, then a file path)")
    path = rest[1:]
    return None if path == ":memory:" else base_dir / path


class _InWorker(Generic[P, R]):
    """Declares, as a class attribute, the async twin of a :class:`StateStore` method: same
    parameters (mypy checks callers against the abstract method), run in the worker thread."""

    def __init__(self, method: Callable[Concatenate[StateStore, P], R]) -> None:
        self._name = method.__name__  # looked up on the store at call time: the override runs

    def __get__(
        self, instance: AsyncStore, owner: type[AsyncStore] | None = None
    ) -> Callable[P, Coroutine[Any, Any, R]]:
        name = self._name

        async def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return await instance._run(lambda store: cast(R, getattr(store, name)(*args, **kwargs)))

        return call


class AsyncStore:
    """A :class:`StateStore` for async code: every call runs in ONE dedicated thread.

    The store is created by ``factory`` inside that thread on first use, because a SQLite
    connection belongs to the thread that opened it. One thread also serialises all calls,
    which is what the interface assumes. A cancelled await does not cancel the call: it
    finishes (or rolls back) in the worker, so a transaction is never cut in half.
    """

    def __init__(self, factory: Callable[[], StateStore]) -> None:
        self._factory = factory
        self._store: StateStore | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scrm-store")

    def _in_worker(self, fn: Callable[[StateStore], R]) -> R:
        if self._store is None:
            self._store = self._factory()
        return fn(self._store)

    async def _run(self, fn: Callable[[StateStore], R]) -> R:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._in_worker, fn)

    def _close_in_worker(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            store.close()

    async def close(self) -> None:
        """Close the store in its thread, then stop the thread."""
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close_in_worker)
        finally:
            self._executor.shutdown(wait=True)  # the worker is idle now: this returns at once

    migrate = _InWorker(StateStore.migrate)
    claim_writer = _InWorker(StateStore.claim_writer)
    checkpoint = _InWorker(StateStore.checkpoint)
    checkpoints = _InWorker(StateStore.checkpoints)
    unseen = _InWorker(StateStore.unseen)
    profiles = _InWorker(StateStore.profiles)
    conversations = _InWorker(StateStore.conversations)
    messages = _InWorker(StateStore.messages)
    commit_page = _InWorker(StateStore.commit_page)
    outbox_take = _InWorker(StateStore.outbox_take)
    outbox_settle = _InWorker(StateStore.outbox_settle)
    outbox_depth = _InWorker(StateStore.outbox_depth)
    crm_ids = _InWorker(StateStore.crm_ids)
    dead_letters = _InWorker(StateStore.dead_letters)
    dead_letter_count = _InWorker(StateStore.dead_letter_count)
    requeue_dead_letters = _InWorker(StateStore.requeue_dead_letters)
    audit = _InWorker(StateStore.audit)
    audit_log = _InWorker(StateStore.audit_log)
    erase_plan = _InWorker(StateStore.erase_plan)
    erase_person = _InWorker(StateStore.erase_person)
    profiles_page = _InWorker(StateStore.profiles_page)
    suggest_link = _InWorker(StateStore.suggest_link)
    identity_links = _InWorker(StateStore.identity_links)
    identity_link = _InWorker(StateStore.identity_link)
    link_identity = _InWorker(StateStore.link_identity)
    reject_suggestion = _InWorker(StateStore.reject_suggestion)
    undo_link = _InWorker(StateStore.undo_link)
    person = _InWorker(StateStore.person)
    counts = _InWorker(StateStore.counts)
    store_webhook = _InWorker(StateStore.store_webhook)
    stored_webhooks = _InWorker(StateStore.stored_webhooks)
    prune_webhooks = _InWorker(StateStore.prune_webhooks)
    enqueue_replies = _InWorker(StateStore.enqueue_replies)
    replies = _InWorker(StateStore.replies)
    reply = _InWorker(StateStore.reply)
    claim_reply = _InWorker(StateStore.claim_reply)
    update_reply = _InWorker(StateStore.update_reply)
