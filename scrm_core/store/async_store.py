"""The state store for async code: every call runs in ONE dedicated thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Concatenate, ParamSpec, TypeVar

from ..adapters import AdapterState
from .base import FLEET_INTERFACE, INTERFACE, AdapterStateStore, FleetStore, StateStore

__all__ = ["AsyncStore", "StoreAdapterState"]

P = ParamSpec("P")
R = TypeVar("R")


_CALLABLE = INTERFACE | FLEET_INTERFACE


class AsyncStore:
    """A :class:`StateStore` for async code: every call runs in ONE dedicated thread.

    Call any method of the interface by naming it on the interface, with its arguments
    (mypy checks them against the method's signature)::

        seqs = await store.call(StateStore.commit_page, page)
        cursor = await store.call(StateStore.checkpoint, source="mastodon")

    The store is created by ``factory`` inside that thread on first use, because a SQLite
    connection belongs to the thread that opened it. One thread also serialises all calls,
    which is what the interface assumes. A cancelled await does not cancel the call: it
    finishes (or rolls back) in the worker, so a transaction is never cut in half.
    """

    def __init__(self, factory: Callable[[], StateStore]) -> None:
        self._factory = factory
        self._store: StateStore | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scrm-store")

    async def call(self, method: Callable[Concatenate[StateStore, P], R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """``method`` (e.g. ``StateStore.commit_page``) of this store, run in its thread."""
        name = getattr(method, "__name__", None)
        if name not in _CALLABLE or name == "close":
            raise TypeError(f"{method!r} is not a method of the StateStore interface (close: AsyncStore.close())")
        # Looked up on the store: the back end's implementation runs, not the abstract method.
        return await self.run(lambda store: getattr(store, name)(*args, **kwargs))

    async def fleet(self, method: Callable[Concatenate[FleetStore, P], R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """``method`` of :class:`~scrm_core.store.FleetStore` (a store shared by a fleet), in the store's thread."""
        return await self.call(method, *args, **kwargs)  # type: ignore[arg-type]

    async def is_fleet(self) -> bool:
        """Whether the store is shared by a fleet (implements :class:`~scrm_core.store.FleetStore`)."""
        return await self.run(lambda store: isinstance(store, FleetStore))

    async def run(self, fn: Callable[[StateStore], R]) -> R:
        """``fn(store)`` in the store's thread: several calls in one hop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._in_worker, fn)

    def _in_worker(self, fn: Callable[[StateStore], R]) -> R:
        if self._store is None:
            self._store = self._factory()
        return fn(self._store)

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


class StoreAdapterState(AdapterState):
    """An adapter's :class:`~scrm_core.adapters.AdapterState`, kept in the state store under its name."""

    def __init__(self, store: AsyncStore, adapter: str) -> None:
        self.store = store
        self.adapter = adapter

    async def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        if not keys:
            return {}
        return await self.store.call(AdapterStateStore.adapter_state_get, self.adapter, list(keys))

    async def put_many(self, items: Mapping[str, str]) -> None:
        if items:
            await self.store.call(AdapterStateStore.adapter_state_put, self.adapter, dict(items))

    async def delete(self, keys: Sequence[str]) -> None:
        if keys:
            await self.store.call(AdapterStateStore.adapter_state_delete, self.adapter, list(keys))

    async def prefixed(self, prefix: str) -> dict[str, str]:
        return await self.store.call(AdapterStateStore.adapter_state_prefixed, self.adapter, prefix)
