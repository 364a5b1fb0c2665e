"""The state store: the interface, its SQLite implementation, and the async wrapper the
engine uses so database calls never block the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, cast

from ..adapters import AdapterState
from ..errors import FatalError
from .base import (
    AuditEntry,
    Checkpoint,
    DeadLetter,
    ErasePlan,
    LabelExample,
    MessageRecord,
    NewDeadLetter,
    NewLabelExample,
    NewReply,
    OutboxItem,
    PageCommit,
    PendingLink,
    ProfileRecord,
    Refusal,
    ReplyRecord,
    ReplyStatus,
    Settlement,
    StateStore,
    StoredModel,
    StoredWebhook,
)
from .sqlite import SqliteStore

__all__ = [
    "AsyncStore",
    "AuditEntry",
    "Checkpoint",
    "DeadLetter",
    "ErasePlan",
    "LabelExample",
    "MessageRecord",
    "NewDeadLetter",
    "NewLabelExample",
    "NewReply",
    "OutboxItem",
    "PageCommit",
    "PendingLink",
    "ProfileRecord",
    "Refusal",
    "ReplyRecord",
    "ReplyStatus",
    "Settlement",
    "SqliteStore",
    "StateStore",
    "StoreAdapterState",
    "StoredModel",
    "StoredWebhook",
    "open_store",
]

P = ParamSpec("P")
R = TypeVar("R")


def open_store(url: str, base_dir: Path) -> StateStore:
    """Open the store named by ``url``; call :meth:`StateStore.migrate` before using it.

    ``sqlite:///scrm.db`` is relative to ``base_dir`` (usually the config file's folder),
    ``sqlite:////var/lib/scrm.db`` is absolute, ``sqlite:///:memory:`` lives in memory.
    """
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
    return SqliteStore(path if path == ":memory:" else base_dir / path)


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
    dead_letter_keys = _InWorker(StateStore.dead_letter_keys)
    pending_links = _InWorker(StateStore.pending_links)
    adapter_state_get = _InWorker(StateStore.adapter_state_get)
    adapter_state_put = _InWorker(StateStore.adapter_state_put)
    adapter_state_delete = _InWorker(StateStore.adapter_state_delete)
    adapter_state_prefixed = _InWorker(StateStore.adapter_state_prefixed)
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
    save_label_examples = _InWorker(StateStore.save_label_examples)
    label_examples = _InWorker(StateStore.label_examples)
    save_model = _InWorker(StateStore.save_model)
    model = _InWorker(StateStore.model)
    drop_models = _InWorker(StateStore.drop_models)


class StoreAdapterState(AdapterState):
    """An adapter's :class:`~scrm_core.adapters.AdapterState`, kept in the state store under its name."""

    def __init__(self, store: AsyncStore, adapter: str) -> None:
        self.store = store
        self.adapter = adapter

    async def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        return await self.store.adapter_state_get(self.adapter, list(keys)) if keys else {}

    async def put_many(self, items: Mapping[str, str]) -> None:
        if items:
            await self.store.adapter_state_put(self.adapter, dict(items))

    async def delete(self, keys: Sequence[str]) -> None:
        if keys:
            await self.store.adapter_state_delete(self.adapter, list(keys))

    async def prefixed(self, prefix: str) -> dict[str, str]:
        return await self.store.adapter_state_prefixed(self.adapter, prefix)
