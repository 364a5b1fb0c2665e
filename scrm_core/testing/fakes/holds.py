"""Stopping a fake's request at a chosen moment, so a test can act (kill the client) right then.

A crash test must prove it landed where it claims: "inside the CRM write phase", "after
the job was applied". A :class:`Hold` makes that exact: the fake keeps the matching
request waiting (before or after applying it), the test learns it from
:attr:`Hold.reached`, kills the client process, and then :meth:`Hold.release`\\s the
request. The fake's request log records the held request like any other, so the test
asserts on it::

    hold = fake.holds.add(lambda method, path: method == "PATCH" and "/composite/sobjects/" in path)
    proc = start_scrm_run()
    assert hold.reached.wait(60)        # the write was applied and is waiting for its answer
    proc.kill(); hold.release()

The waiting happens in a worker thread, so the fake keeps serving other requests.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Hold", "Holds"]

Match = Callable[[str, str], bool]  # (method, path) -> hold it?


@dataclass
class Hold:
    match: Match
    after_apply: bool = True  # True: the request is applied, its answer held; False: held before anything
    skip: int = 0  # let this many matching requests through first
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    method: str = ""
    path: str = ""

    def release(self) -> None:
        self.released.set()


class Holds:
    """The holds of one fake; each catches one request, then is done."""

    def __init__(self, timeout: float = 120.0) -> None:
        self.timeout = timeout  # a held request never waits longer than this
        self._holds: list[Hold] = []
        self._lock = threading.Lock()

    def add(self, match: Match, *, after_apply: bool = True, skip: int = 0) -> Hold:
        hold = Hold(match, after_apply, skip)
        with self._lock:
            self._holds.append(hold)
        return hold

    def take(self, method: str, path: str, *, after_apply: bool) -> Hold | None:
        """The hold this request falls into now (at most one), removed from the list."""
        with self._lock:
            for hold in self._holds:
                if hold.after_apply == after_apply and hold.match(method, path):
                    if hold.skip > 0:
                        hold.skip -= 1
                        continue
                    self._holds.remove(hold)
                    hold.method, hold.path = method, path
                    return hold
        return None

    async def wait(self, hold: Hold) -> None:
        """Signal that the request is held, then wait (in a thread) until the test releases it."""
        hold.reached.set()
        await asyncio.to_thread(hold.released.wait, self.timeout)

    def release_all(self) -> None:
        with self._lock:
            holds, self._holds = self._holds, []
        for hold in holds:
            hold.release()
