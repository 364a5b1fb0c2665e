"""Reading what agents did in the CRM (replies they wrote, labels they corrected) from a
saved cursor: one loop for every such feed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

from scrm.store import AsyncStore, StateStore

__all__ = ["crm_pages"]

T = TypeVar("T")


async def crm_pages(
    store: AsyncStore, checkpoint: str, read: Callable[[str | None], Awaitable[tuple[Sequence[T], str | None]]]
) -> AsyncIterator[tuple[Sequence[T], str | None]]:
    """``(page, new cursor)`` from ``read(cursor)``, starting at the saved cursor of
    ``checkpoint``, until the CRM has nothing new. The caller stores each page together with
    its new cursor (``checkpoint=(name, cursor)``) in one transaction, before the next read."""
    cursor = await store.call(StateStore.checkpoint, checkpoint)
    while True:
        page, new_cursor = await read(cursor)
        if not page and new_cursor == cursor:
            return
        yield page, new_cursor
        cursor = new_cursor
        if not page:
            return
