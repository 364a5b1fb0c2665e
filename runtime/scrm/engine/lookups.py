"""The two state-store reads that parts of ingest make on their own (addressing, the
listening filter): a small interface, so each can be tested with a counting fake."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from scrm.store import AsyncStore, MessageRecord, ProfileRecord, StateStore

__all__ = ["Lookups", "StoreLookups"]


class Lookups(Protocol):
    async def messages(self, keys: Sequence[str]) -> dict[str, MessageRecord]: ...
    async def profiles(self, keys: Sequence[str]) -> dict[str, ProfileRecord]: ...


class StoreLookups:
    """:class:`Lookups` from the state store."""

    def __init__(self, store: AsyncStore) -> None:
        self.store = store

    async def messages(self, keys: Sequence[str]) -> dict[str, MessageRecord]:
        return await self.store.call(StateStore.messages, keys)

    async def profiles(self, keys: Sequence[str]) -> dict[str, ProfileRecord]:
        return await self.store.call(StateStore.profiles, keys)
