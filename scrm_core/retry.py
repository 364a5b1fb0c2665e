"""The one retry policy: how long to wait before trying a call again, and the tenacity loop
that does it. The sink's CRM writes, the engine's readers, ``scrm check`` and an adapter's
own calls all wait the same way:

* what the service asked for (:attr:`RetryableError.retry_after <scrm_core.RetryableError>`:
  a ``Retry-After``, a rate-limit reset), at most ``cap``;
* else ``initial`` seconds doubling per attempt, at most ``cap``, with jitter (50-100% of
  it), so that many processes waiting on one service do not come back in step.

>>> 0.25 <= backoff(1) <= 0.5 and 2.0 <= backoff(4) <= 4.0 and backoff(9, cap=30.0) <= 30.0
True
>>> backoff(1, asked=120.0, cap=30.0)
30.0
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .errors import RetryableError

if TYPE_CHECKING:
    import tenacity

__all__ = ["backoff", "retrying"]


def backoff(attempt: int, asked: float | None = None, *, initial: float = 0.5, cap: float = 30.0) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first failure)."""
    if asked is not None:
        return max(0.0, min(asked, cap))
    exponential: float = min(initial * 2.0 ** (attempt - 1), cap)
    return exponential * (0.5 + random.random() / 2)


def asked_wait(exc: BaseException | None) -> float | None:
    """The wait a failure names (a :class:`RetryableError`'s ``retry_after``), if any."""
    return exc.retry_after if isinstance(exc, RetryableError) else None


def retrying(
    *,
    attempts: int | None = 3,
    initial: float = 0.5,
    cap: float = 30.0,
    rate_limited: bool = True,
    stop: tenacity.stop.stop_base | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    on_retry: Callable[[BaseException | None, float], None] | None = None,
) -> tenacity.AsyncRetrying:
    """Up to ``attempts`` tries (None: no limit) of what raises :class:`RetryableError`,
    waiting :func:`backoff` between them; the last error is re-raised as it is.

    Use it for calls that are safe to repeat (reads, writes with an idempotency key)::

        async for attempt in retrying():
            with attempt:
                data = await api.get_json("/api/v1/statuses/1")

    ``rate_limited=False``: an error that names a wait (the service refused for its rate) is
    raised at once, for the engine to wait, instead of retried here. ``stop`` replaces the
    attempt limit (the sink stops retrying when it shuts down), ``sleep`` the waiting,
    ``on_retry(error, seconds)`` is told of each wait (to log it).
    """
    import tenacity  # here: commands that never retry (``scrm status``) do not load it

    def retry(exc: BaseException) -> bool:
        return isinstance(exc, RetryableError) and (rate_limited or exc.retry_after is None)

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        seconds = backoff(state.attempt_number, asked_wait(exc), initial=initial, cap=cap)
        if on_retry is not None:
            on_retry(exc, seconds)
        return seconds

    if stop is None:
        stop = tenacity.stop_never if attempts is None else tenacity.stop_after_attempt(attempts)
    policy = tenacity.AsyncRetrying(stop=stop, wait=wait, retry=tenacity.retry_if_exception(retry), reraise=True)
    return policy if sleep is None else policy.copy(sleep=sleep)
