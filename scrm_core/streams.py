"""The stream of pages a fleet shares for its heavy sources (``[[sources]] stream = true``):
the interface a coordination back end implements (scrm-redis: Redis Streams), installed as
the engine's ``page_stream`` by its ``scrm_startup`` hook, and the checkpoint such a source
keeps (the last committed page's sequence beside the adapter's cursor). How the engine
uses it: ``runtime/scrm/engine/page_stream.py``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["PageStream", "StreamPage", "adapter_cursor", "split_checkpoint", "stream_checkpoint"]

_MARK = "scrm-stream:"  # a streamed source's checkpoint: _MARK + [sequence, the adapter's cursor]


def stream_checkpoint(seq: int, cursor: str | None) -> str:
    """The checkpoint of a streamed source after page ``seq``, whose adapter cursor is ``cursor``."""
    return _MARK + json.dumps([seq, cursor], separators=(",", ":"))


def split_checkpoint(stored: str | None) -> tuple[int | None, str | None]:
    """(the last committed page's sequence, or None if not streamed; the adapter's cursor)."""
    if stored is None or not stored.startswith(_MARK):
        return None, stored
    seq, cursor = json.loads(stored[len(_MARK) :])
    return int(seq), cursor


def adapter_cursor(stored: str | None) -> str | None:
    """What the adapter resumes from, whether the source was streamed or not."""
    return split_checkpoint(stored)[1]


@dataclass(frozen=True, slots=True)
class StreamPage:
    """One published page: ``data`` the :class:`EventPage` as JSON, ``cursor`` the adapter's
    cursor after it, ``entry`` the stream's own id (to acknowledge it)."""

    source: str
    seq: int
    data: bytes
    cursor: str | None
    entry: str = ""


class PageStream(Protocol):
    """The shared stream of pages (scrm-redis: Redis Streams and one consumer group).

    Sequences of one source only grow: publishing one at or below the highest ever
    published fails. A page stays in the stream until the page after it is done, so the
    last published page (and its cursor) survives the reader."""

    async def fence(self, source: str, token: int) -> None:
        """A reader with lease ``token`` starts: from now on only it may publish (a deposed
        reader's pages are refused); :class:`LeaseLost` if a newer reader started already."""

    async def tail(self, source: str) -> tuple[int, StreamPage | None]:
        """(the highest sequence ever published for ``source``, 0 if none; the last page still held)."""

    async def reset(self, source: str) -> None:
        """Drop every page held (an earlier run read the source directly); sequences keep growing."""

    async def publish(self, page: StreamPage, token: int) -> None:
        """Append ``page``; :class:`LeaseLost` if a reader with a newer lease ``token`` published
        since, or this sequence was published already."""

    async def backlog(self, source: str) -> int:
        """How many published pages are not done yet."""

    async def take(self, consumer: str, sources: Sequence[str], count: int, block: float) -> list[StreamPage]:
        """New pages for ``consumer`` (waiting up to ``block`` seconds); now pending for it."""

    async def claim(self, consumer: str, sources: Sequence[str], idle: float, count: int) -> list[StreamPage]:
        """Pages pending for another consumer for more than ``idle`` seconds, now pending for ``consumer``."""

    async def keep(self, consumer: str, pages: Sequence[StreamPage]) -> None:
        """``consumer`` is still working on ``pages``: nobody claims them yet."""

    async def done(self, page: StreamPage) -> None:
        """The page is committed (or was already): acknowledged, the pages before it dropped,
        and a consumer waiting for the next one's turn woken."""

    async def wait_turn(self, turns: Sequence[tuple[str, int]], seconds: float) -> tuple[str, int] | None:
        """Wait up to ``seconds`` until one of these (source, sequence) may be committed."""

    async def close(self) -> None: ...
