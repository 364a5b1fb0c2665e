"""RateBudget: the one request budget per CRM account, reshaped by the service's signals.

A fake clock drives it, so nothing here sleeps or depends on the machine's speed.
"""

from __future__ import annotations

import asyncio

import pytest

from scrm_core.ratelimit import RateBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def take(budget: RateBudget, n: int) -> None:
    """Spend n tokens that are available now (fails if any call would have to wait)."""
    for _ in range(n):
        assert budget.delay() == 0
        asyncio.run(budget.acquire())


def test_unlimited_budget_never_waits() -> None:
    budget = RateBudget(None, 1, clock=Clock())
    take(budget, 1000)


def test_configured_rate_allows_the_burst_then_spaces_calls() -> None:
    clock = Clock()
    budget = RateBudget(10.0, 5, clock=clock)
    take(budget, 5)
    assert budget.delay() == pytest.approx(0.1)
    clock.now += 0.1
    take(budget, 1)


def test_reported_window_caps_tokens_before_the_service_refuses() -> None:
    clock = Clock()
    budget = RateBudget(None, 100, clock=clock)
    # "100 per 10 s, 12 left": keep 10% for others, so only 2 calls may go now.
    budget.observe_window(limit=100, remaining=12, window_seconds=10)
    take(budget, 2)
    assert budget.delay() > 0
    # The steady rate is 90 per 10 s.
    assert budget.rate == pytest.approx(9.0)


def test_window_with_nothing_left_waits_for_refill() -> None:
    clock = Clock()
    budget = RateBudget(None, 100, clock=clock)
    budget.observe_window(limit=100, remaining=0, window_seconds=10)
    # 10 tokens in debt (the margin) plus the one wanted, at 9 per second.
    assert budget.delay() == pytest.approx(11 / 9)


def test_a_configured_rate_lower_than_the_window_wins() -> None:
    budget = RateBudget(2.0, 5, clock=Clock())
    budget.observe_window(limit=100, remaining=100, window_seconds=10)
    assert budget.rate == 2.0


def test_pause_blocks_calls_until_the_wait_is_over() -> None:
    clock = Clock()
    budget = RateBudget(None, 10, clock=clock)
    budget.pause(30)
    assert budget.delay() == pytest.approx(30)
    clock.now += 30
    take(budget, 1)
    assert budget.stats.pauses == 1


def test_quota_spreads_the_rest_of_the_period_once_the_reserve_is_used() -> None:
    clock = Clock()
    budget = RateBudget(None, 10, clock=clock)
    budget.observe_quota(used=100, limit=15_000, period_seconds=86_400)
    assert budget.rate is None  # well inside the quota: full speed
    budget.observe_quota(used=14_000, limit=15_000, period_seconds=86_400)
    assert budget.rate == pytest.approx(1000 / 86_400)
    assert budget.stats.slowdowns == 1
    budget.observe_quota(used=15_000, limit=15_000, period_seconds=86_400)
    assert budget.delay() > 0  # spent: paused


def test_acquire_waits_through_a_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    budget = RateBudget(None, 1, clock=clock)
    budget.pause(5)
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep_on_the_fake_clock(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds
        await real_sleep(0)

    monkeypatch.setattr("scrm_core.ratelimit.asyncio.sleep", sleep_on_the_fake_clock)
    asyncio.run(budget.acquire())
    assert slept == [pytest.approx(5)]
    assert budget.stats.waited_seconds == pytest.approx(5)
