"""Connection limits for ``scrm serve``: read timeouts, a cap, and who gives way under load.

uvicorn reads request headers for as long as a client cares to send them, keeps every
connection it accepts, and lets a slow client cancel its keep-alive timer with one byte:
1,100 clients dribbling a byte every 2 s exhaust a process limited to 1,024 open files,
and then nobody gets in (not valid deliveries, not ``/health``). :class:`ConnectionGuard`
makes uvicorn's HTTP/1.1 protocol (h11) hold these rules:

* **header timeout**: a client has ``header_timeout`` seconds, from when it connects or
  its previous response ended, to send a complete request head; then it gets 408 and
  the connection closes. A byte now and then does not reset it.
* **body timeout**: then ``body_timeout`` seconds for the body (the receiver answers 408
  itself when it reads one too slowly; the guard closes the connection a little later if
  nothing did), so a ``Content-Length`` larger than the body or a chunked body that never
  ends cannot hold a connection;
* **a cap below the open-file limit**: at most ``max_connections`` connections. A new one
  over the cap takes the place of the connection that has been waiting longest on its
  client for a request head (or idle between requests): what a slow client is. Only if
  there is none, of the one waiting longest for a body. Only when no connection waits on
  its client is the new one answered ``503``
  (``{"error": "too_many_connections"}``, ``Retry-After``) and closed. A valid delivery
  sends its head at once, so it is never the one that gives way: deliveries and
  ``/health`` get through however many slow clients there are
  (tests/test_receiver_limits.py runs 1,100 against a 1,024-file process). Above
  :data:`PRESSURE` of the cap, answers close their connection: no client is left holding
  an idle connection that could be the next to give way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["ACCEPT_BACKLOG", "ConnectionGuard", "GuardCounts", "connection_cap", "quiet_accept_errors"]

log = logging.getLogger("scrm.serve")

#: Connections the event loop accepts in one go (the listen backlog too). A connection is
#: accepted two loop turns before the guard sees it, and one it evicts closes a turn later:
#: a few times this many file descriptors are in flight, which the reserve below covers.
ACCEPT_BACKLOG = 16
#: File descriptors kept free for everything else: the accept bursts above, the state store
#: and its -wal/-shm/lock files, adapters' HTTP connection pools, logs, refusals being sent.
FD_RESERVE = 160
#: Refused connections allowed to linger while their 503 is delivered; beyond, they close at once.
MAX_LINGERING = 16
LINGER_SECONDS = 1.0
#: Above this share of the cap, answers close their connection (no keep-alive).
PRESSURE = 0.75
_CLOSE_HEADER = (b"connection", b"close")

_TIMEOUT_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: 25\r\n"
    b'connection: close\r\n\r\n{"error":"read_timeout"}\n'
)
_BUSY_503 = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 5\r\n"
    b'content-length: 33\r\nconnection: close\r\n\r\n{"error":"too_many_connections"}\n'
)


def _open_files() -> int:
    for folder in ("/proc/self/fd", "/dev/fd"):
        with contextlib.suppress(OSError):
            return len(os.listdir(folder))
    return 32


def connection_cap(configured: int) -> int:
    """``configured``, lowered to fit the process's open-file limit (raised to its hard
    limit first where the system allows)."""
    try:
        import resource
    except ImportError:  # not on Unix: no limit to fit
        return configured
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(1, min(configured, soft - _open_files() - FD_RESERVE))


def quiet_accept_errors(loop: asyncio.AbstractEventLoop, every: float = 60.0) -> None:
    """If the process runs out of file descriptors anyway (another part of it holds many),
    asyncio logs a traceback for every refused accept: thousands a minute. Say it once a
    minute instead, with what to do; every other loop error is reported as before."""
    last = [-every]

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if "socket.accept() out of system resource" not in str(context.get("message", "")):
            loop.default_exception_handler(context)
            return
        now = time.monotonic()
        if now - last[0] >= every:
            last[0] = now
            log.warning(
                "out of file descriptors: new connections wait; raise the open-file limit (ulimit -n) "
                "or lower [serve] max_connections"
            )

    loop.set_exception_handler(handler)


@dataclass
class GuardCounts:
    """What the guard did, for ``/health``."""

    open: int = 0
    evicted: int = 0  # slow connections closed to make room
    refused: int = 0  # 503: every connection was busy
    timed_out: int = 0  # 408: head or body not sent in time

    def as_dict(self, cap: int) -> dict[str, int]:
        return {"open": self.open, "cap": cap, "evicted": self.evicted, "refused": self.refused,
                "timed_out": self.timed_out}  # fmt: skip


class ConnectionGuard:
    """The rules above, for one server; :meth:`protocol` is the class to give uvicorn (``http=``)."""

    def __init__(self, *, max_connections: int, header_timeout: float, body_timeout: float) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.counts = GuardCounts()
        # Connections waiting on their client, oldest first (a dict keeps insertion order):
        # for a request head (or idle between requests), and for the rest of a body.
        self.waiting: dict[_Guarded, None] = {}
        self.reading_body: dict[_Guarded, None] = {}
        self.lingering = 0

    def protocol(self) -> type[H11Protocol]:
        guard = self

        class GuardedH11Protocol(_Guarded):
            _guard = guard

        return GuardedH11Protocol

    def under_pressure(self) -> bool:
        return self.counts.open >= PRESSURE * self.max_connections

    def make_room(self, newcomer: _Guarded) -> bool:
        """Close the connection that has waited longest on its client for a head, else for a
        body; False if no connection waits on its client."""
        for queue in (self.waiting, self.reading_body):
            for victim in queue:  # oldest first
                if victim is not newcomer:
                    victim.give_way()
                    self.counts.evicted += 1
                    return True
        return False


class _Guarded(H11Protocol):
    _guard: ConnectionGuard

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._counted = False
        self._refusing = False
        self._reading_body = False
        self._seen_cycle: object = None

    # -- states

    def _wait_for_request(self) -> None:
        """Waiting on the client for a request head: oldest-first in the guard's queue."""
        guard = self._guard
        guard.reading_body.pop(self, None)
        guard.waiting.pop(self, None)
        guard.waiting[self] = None
        self._reading_body = False
        self._arm(guard.header_timeout)

    def _wait_for_body(self) -> None:
        """The head is in; the body has its own deadline (the receiver answers 408 first)."""
        guard = self._guard
        guard.waiting.pop(self, None)
        guard.reading_body[self] = None
        self._reading_body = True
        self._arm(guard.body_timeout + 2.0)

    def _request_in_hand(self) -> None:
        self._guard.waiting.pop(self, None)
        self._guard.reading_body.pop(self, None)
        self._disarm()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _forget(self) -> None:
        self._guard.waiting.pop(self, None)
        self._guard.reading_body.pop(self, None)
        self._disarm()
        if self._counted:
            self._counted = False
            self._guard.counts.open -= 1

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        guard = self._guard
        self._counted = True
        guard.counts.open += 1
        if guard.counts.open > guard.max_connections and not guard.make_room(self):
            self._refuse()
            return
        self._wait_for_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._forget()
        if self._refusing:
            self._refusing = False
            self._guard.lingering -= 1
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refusing:
            return  # the 503 is on its way; whatever the client still sends is dropped
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        if self._refusing or self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return
        if cycle is not self._seen_cycle:  # a new request
            self._seen_cycle = cycle
            if self._guard.under_pressure():
                # No keep-alive while connections are scarce: an idle connection is one that
                # gives way, and a client about to reuse it would find it closed mid-request.
                cycle.keep_alive = False
                self.headers.append(_CLOSE_HEADER)  # the request's: uvicorn then says so in the answer
        if cycle.more_body:
            if not self._reading_body:
                self._wait_for_body()
        else:
            self._request_in_hand()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._wait_for_request()

    # -- giving way

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        self._guard.counts.timed_out += 1
        self._close(answer=not self._reading_body)

    def give_way(self) -> None:
        """Evicted to make room: dropped at once, nothing written (a slow client is not worth
        a file descriptor a moment longer than needed)."""
        self._forget()
        self.transport.abort()

    def _close(self, *, answer: bool) -> None:
        self._forget()
        if answer:
            self.transport.write(_TIMEOUT_408)
        self.transport.close()

    def _refuse(self) -> None:
        guard = self._guard
        guard.counts.refused += 1
        self._forget()
        self.transport.write(_BUSY_503)
        if guard.lingering >= MAX_LINGERING:
            self.transport.close()
            return
        # Half-close and drain briefly: closing with the request unread would reset the
        # connection, and the client might never see the 503.
        self._refusing = True
        guard.lingering += 1
        with contextlib.suppress(OSError, RuntimeError):
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
