"""Webhook payloads the receiver stored, read back as a source of event pages.

``scrm serve`` writes each verified payload to the state store before it answers 2xx;
this reader turns them into events with the adapter's ``parse_webhook``. Its cursor (the
last payload id) is committed with the events, like any source's, under the checkpoint
``<source>@webhooks``: a crash after the 2xx and before the commit re-reads the payload,
and the engine's dedup keeps the events single. A payload the adapter cannot parse, with
whatever exception, is one dead letter naming it (``webhook payload #12 of source 'fb'``),
and the payloads after it are read as usual (:func:`scrm_core.failures.guarded`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from scrm.store import AsyncStore, StateStore
from scrm_core.adapters import NetworkAdapter
from scrm_core.errors import FatalError
from scrm_core.failures import guarded
from scrm_core.models import Event, EventPage

__all__ = ["PAYLOADS_PER_PAGE", "inbox_checkpoint", "read_inbox"]

PAYLOADS_PER_PAGE = 100
#: While following, how long to wait for the receiver's nudge before looking anyway.
IDLE_SECONDS = 1.0


def inbox_checkpoint(source: str) -> str:
    return f"{source}@webhooks"


async def read_inbox(
    store: AsyncStore,
    source: str,
    adapter: NetworkAdapter,
    cursor: str | None,
    *,
    follow: bool,
    wake: asyncio.Event,
    keep: timedelta,
) -> AsyncIterator[EventPage]:
    """Pages of events from the stored payloads of ``source`` after ``cursor`` (a payload id)."""
    try:
        after = int(cursor) if cursor else 0
    except ValueError:
        raise FatalError(f"checkpoint {inbox_checkpoint(source)!r} is not a payload id: {cursor!r}") from None
    pruned_up_to = 0
    while True:
        wake.clear()
        rows = await store.call(StateStore.stored_webhooks, source, after, PAYLOADS_PER_PAGE)
        if rows:
            # Whatever a payload makes the adapter raise, it is that payload's dead letter
            # (a transient failure is raised: the page is read again after a back-off).
            events: list[Event] = []
            rejects: list[tuple[str, str]] = []
            for row in rows:
                parse = functools.partial(adapter.parse_webhook, row.body, row.headers)
                where = f"webhook payload #{row.id} of source {source!r}"
                events += await guarded(where, parse, rejects, fatal_stops=False)
            after = rows[-1].id
            yield EventPage(events=events, cursor=str(after), rejects=rejects)
            continue
        committed = int(
            await store.call(StateStore.checkpoint, inbox_checkpoint(source)) or 0
        )  # never prune unprocessed ones
        if committed > pruned_up_to:
            await store.call(StateStore.prune_webhooks, source, committed, datetime.now(UTC) - keep)
            pruned_up_to = committed
        if not follow:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), IDLE_SECONDS)
