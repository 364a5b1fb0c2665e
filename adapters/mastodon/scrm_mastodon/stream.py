"""Bridge from Mastodon.py's streaming thread to the adapter's event loop.

Mastodon.py reads the user stream (``GET /api/v1/streaming/user``, server-sent events
``update``, ``notification``, ``delete``, ``status.update``; lines starting with ``:`` are
heartbeats: https://docs.joinmastodon.org/methods/streaming/) in a thread of its own and
calls a :class:`~mastodon.StreamListener`; this one puts ``(kind, payload)`` pairs on an
``asyncio.Queue`` of the adapter's loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mastodon import StreamListener

__all__ = ["QueueListener"]


class QueueListener(StreamListener):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = loop
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.connected = asyncio.Event()

    def _put(self, kind: str, payload: Any) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (kind, payload))

    def on_update(self, status: Any) -> None:
        self._put("update", status)

    def on_notification(self, notification: Any) -> None:
        self._put("notification", notification)

    def on_delete(self, status_id: Any) -> None:
        self._put("delete", str(status_id))

    def on_status_update(self, status: Any) -> None:
        self._put("status.update", status)

    def on_abort(self, err: Exception) -> None:
        self._put("abort", str(err))

    def on_unknown_event(self, name: str, unknown_event: Any = None) -> None:
        """Events scrm has no use for (announcements, filters_changed, ...)."""

    def handle_heartbeat(self) -> None:
        # The streaming server's first line is a ":)" comment: from then on we are subscribed.
        self.loop.call_soon_threadsafe(self.connected.set)
