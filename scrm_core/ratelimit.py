"""One request budget per CRM account: a token bucket that the service's own signals reshape.

The sink takes a token before every CRM call (:meth:`RateBudget.acquire`). Adapters feed
back what the service said, in the service's terms, through three calls:

- :meth:`RateBudget.observe_window`: the service reported its rolling window ("100 per
  10 s, 37 left"; HubSpot's ``X-HubSpot-RateLimit-*`` headers). The bucket adopts that
  rate (less a safety margin) and never holds more tokens than the service has left, so
  the sink slows down *before* a 429 instead of after it.
- :meth:`RateBudget.observe_quota`: a long-period quota ("15,000 API calls per 24 h,
  14,200 used"; Salesforce's ``Sforce-Limit-Info``, HubSpot's daily headers). Once usage
  passes ``quota_reserve`` of the quota, the rate is spread over what is left of the
  period so the quota lasts, rather than being spent at full speed and then refused.
- :meth:`RateBudget.pause`: the service refused a call for its rate (429, Salesforce's
  403 ``REQUEST_LIMIT_EXCEEDED``): no call is made before the wait it asked for.

Everything runs on the event loop's thread (adapters report after their worker-thread
call returns), so there is no locking.

**A fleet shares one budget.** With :attr:`RateBudget.shared` set (scrm-redis sets it when
``[state] coordination_url`` names a Redis), :meth:`acquire` takes its token from a bucket
every worker spends from, and the signals any worker saw (a pause, a lower rate, the few
calls the service says are left) reach that bucket with the next call, so the fleet as a
whole stays under the account's limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("scrm.ratelimit")

__all__ = ["RateBudget", "RateStats", "SharedBucket", "SharedSignals"]


@dataclass
class RateStats:
    waited_seconds: float = 0.0  # time acquire() spent waiting for tokens or a pause
    pauses: int = 0  # refusals the service answered with (429 / 403 limit)
    slowdowns: int = 0  # times a reported window or quota lowered the rate


@dataclass
class SharedSignals:
    """What one worker's budget tells the shared bucket with its next call."""

    rate: float | None  # the rate this worker would use (configured, lowered by what it saw)
    capacity: float
    signal_rate: float | None = None  # a rate the service imposed (window or quota) seen by this worker
    pause_seconds: float = 0.0  # the service refused a call: nobody calls for this long
    tokens_left: float | None = None  # the service said only this many calls are left now


class SharedBucket(Protocol):
    """A token bucket several workers spend from (e.g. scrm_redis.RedisBucket)."""

    async def take(self, signals: SharedSignals) -> float:
        """Take one token (return 0.0), or return how many seconds to wait before asking again."""
        ...


class RateBudget:
    """A token bucket of ``rate`` requests per second and ``burst`` capacity; None: unlimited.

    ``margin`` is the share of a reported window kept unused (other integrations of the
    same account spend from it too); ``quota_reserve`` is the share of a long quota spent
    at full speed before the rate is spread over the rest of the period.
    """

    def __init__(
        self,
        rate: float | None,
        burst: int,
        *,
        margin: float = 0.1,
        quota_reserve: float = 0.8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.configured_rate = rate
        self.rate = rate
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.margin = margin
        self.quota_reserve = quota_reserve
        self.clock = clock
        self.stamp = clock()
        self.paused_until = 0.0
        self.stats = RateStats()
        self._window_rate: float | None = None
        self._quota_rate: float | None = None
        #: The fleet's shared bucket (None: this budget alone decides).
        self.shared: SharedBucket | None = None
        self._unsent = SharedSignals(rate, float(burst))

    # ------------------------------------------------------------ spending

    def _refill(self, now: float) -> None:
        if self.rate is not None:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def delay(self) -> float:
        """Seconds until a call may be made (0: now). Does not take a token."""
        now = self.clock()
        self._refill(now)
        wait = max(0.0, self.paused_until - now)
        if self.rate is not None and self.tokens < 1:
            wait = max(wait, (1 - self.tokens) / self.rate)
        return wait

    async def acquire(self) -> None:
        """Wait until the budget allows one more call, then spend it."""
        if self.shared is not None:
            await self._acquire_shared(self.shared)
            return
        while (wait := self.delay()) > 0:
            self.stats.waited_seconds += wait
            await asyncio.sleep(wait)
        if self.rate is not None:
            self.tokens -= 1

    def shared_signals(self) -> SharedSignals:
        """What the shared bucket is told with the next call (the signals since the last one)."""
        signals, self._unsent = self._unsent, SharedSignals(self.rate, self.capacity)
        signals.rate, signals.capacity = self.rate, self.capacity
        signals.signal_rate = min((r for r in (self._window_rate, self._quota_rate) if r is not None), default=None)
        return signals

    async def _acquire_shared(self, shared: SharedBucket) -> None:
        while True:
            wait = await shared.take(self.shared_signals())
            if wait <= 0:
                return
            self.stats.waited_seconds += wait
            await asyncio.sleep(wait)

    # ------------------------------------------------------------ what the service said

    def observe_window(self, *, limit: int, remaining: int, window_seconds: float) -> None:
        """The service's rolling window: ``limit`` calls per ``window_seconds``, ``remaining`` left now."""
        if limit <= 0 or window_seconds <= 0:
            return
        usable = max(1.0, limit * (1 - self.margin))
        rate = usable / window_seconds
        if self._window_rate is None or rate < self._window_rate:
            self.stats.slowdowns += self._window_rate is not None
        self._window_rate = rate
        self.capacity = min(self.capacity, usable) if self.configured_rate is not None else usable
        self._refill(self.clock())
        # Never hold more tokens than the service has left, less the margin it keeps for others.
        self.tokens = min(self.tokens, remaining - limit * self.margin)
        self._unsent.tokens_left = remaining - limit * self.margin
        self._apply_rates()

    def observe_quota(self, *, used: int, limit: int, period_seconds: float, resets_in: float | None = None) -> None:
        """A long quota: ``used`` of ``limit`` calls in a period of ``period_seconds``.

        ``resets_in`` is the time until the quota resets, when the service says; for a
        rolling period (Salesforce's 24 h) it is unknown and the whole period is assumed.
        """
        if limit <= 0:
            return
        left = limit - used
        if left <= 0:
            self.pause(resets_in if resets_in is not None else period_seconds / limit, reason="quota spent")
            return
        if used < limit * self.quota_reserve:
            self._quota_rate = None
        else:
            rate = left / (resets_in if resets_in is not None else period_seconds)
            if self._quota_rate is None:
                self.stats.slowdowns += 1
                log.warning("%d of %d API calls of the period used: slowing to %.3f calls/s", used, limit, rate)
            self._quota_rate = rate
        self._apply_rates()

    def pause(self, seconds: float, *, reason: str = "rate limited") -> None:
        """The service refused a call for its rate: make none for ``seconds``."""
        self.stats.pauses += 1
        until = self.clock() + max(0.0, seconds)
        if until > self.paused_until:
            self.paused_until = until
            log.warning("CRM %s: pausing calls for %.1fs", reason, seconds)
        self.tokens = min(self.tokens, 0.0)
        self._unsent.pause_seconds = max(self._unsent.pause_seconds, seconds)

    def _apply_rates(self) -> None:
        rates = [r for r in (self.configured_rate, self._window_rate, self._quota_rate) if r is not None]
        self.rate = min(rates) if rates else None
