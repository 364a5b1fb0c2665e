"""Fault injection shared by the fake services: a seeded dice roll per request.

A fake asks :meth:`FaultInjector.roll` once per request it serves and answers with the
fault drawn, in its vendor's own error shape. Rates are probabilities per request and
can be changed while the fake runs (``fake.faults.rate_429 = 0.2``).

A test that needs one fault at one moment arms it instead (``faults.arm(Fault.rate_limited)``,
what the fakes' ``rate_limit_next()`` and ``lose_next_response()`` do); the fake takes it
with :meth:`FaultInjector.take_armed` at the request that can suffer it (any request for a
rate limit, a write for a lost answer).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Fault", "FaultInjector"]


class Fault(StrEnum):
    none = "none"
    rate_limited = "rate_limited"  # the vendor's rate-limit refusal (429, Salesforce 403)
    server_error = "server_error"  # 500/503, nothing applied
    timeout = "timeout"  # the request IS applied, then the response is delayed past the client's timeout
    lost_response = "lost_response"  # the request IS applied, then answered with a 502 (a proxy dropped it)


@dataclass
class FaultInjector:
    """Per-request fault probabilities; ``partial_rate`` is per *record* of a batch call."""

    rate_429: float = 0.0
    rate_5xx: float = 0.0
    rate_timeout: float = 0.0
    rate_lost_response: float = 0.0
    partial_rate: float = 0.0
    timeout_seconds: float = 5.0
    seed: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    #: Armed faults taken so far, by kind (what a test checks to know its fault really happened).
    taken: Counter[Fault] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self._armed: Counter[Fault] = Counter()

    def arm(self, fault: Fault, times: int = 1) -> None:
        """Make the next ``times`` requests that can suffer ``fault`` suffer it, whatever the rates."""
        with self._lock:
            self._armed[fault] += times

    def take_armed(self, fault: Fault) -> bool:
        """Whether this request suffers an armed ``fault`` (and disarm one). Not in ``counts``:
        those tally the faults drawn by chance."""
        with self._lock:
            if self._armed[fault] <= 0:
                return False
            self._armed[fault] -= 1
            self.taken[fault] += 1
            return True

    def roll(self) -> Fault:
        """The fault for this request (``Fault.none`` most of the time), counted."""
        with self._lock:
            x = self._random.random()
        for fault, rate in (
            (Fault.rate_limited, self.rate_429),
            (Fault.server_error, self.rate_5xx),
            (Fault.timeout, self.rate_timeout),
            (Fault.lost_response, self.rate_lost_response),
        ):
            if x < rate:
                self.counts[fault.value] += 1
                return fault
            x -= rate
        return Fault.none

    def reject_record(self) -> bool:
        """Whether to fail this one record of a batch with a transient per-record error."""
        if self.partial_rate <= 0:
            return False
        with self._lock:
            hit = self._random.random() < self.partial_rate
        if hit:
            self.counts["partial"] += 1
        return hit

    def clear(self) -> None:
        """No more faults: rates to zero, armed faults disarmed."""
        self.rate_429 = self.rate_5xx = self.rate_timeout = self.rate_lost_response = self.partial_rate = 0.0
        with self._lock:
            self._armed.clear()
