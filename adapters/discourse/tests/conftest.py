"""Shared set-up: the fake forum on 127.0.0.1 and adapters pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from scrm_discourse import DiscourseAdapter, DiscourseSettings
from scrm_discourse.testing import FakeDiscourse

from scrm_core import AdapterContext
from scrm_core.testing.fakes import FakeServer
from scrm_core.testing.network import default_scenario

NETWORK = "discourse"
BRAND = "brand"


def make_settings(url: str, **overrides: Any) -> DiscourseSettings:
    values: dict[str, Any] = {
        "base_url": url,
        "api_key": SecretStr(FakeDiscourse.API_KEY),
        "api_username": BRAND,
        "webhook_secret": SecretStr(FakeDiscourse.WEBHOOK_SECRET),
        "page_size": 3,
        "poll_seconds": 0.05,
        "timeout_seconds": 5.0,
    }
    values.update(overrides)
    return DiscourseSettings(**values)


def make_adapter(url: str, **overrides: Any) -> DiscourseAdapter:
    return DiscourseAdapter(make_settings(url, **overrides), AdapterContext(name="forum"))


@pytest.fixture
def fake() -> FakeDiscourse:
    forum = FakeDiscourse(staff=[BRAND], rate_limit_wait=0)
    forum.load(default_scenario(NETWORK))
    return forum


@pytest.fixture
def server(fake: FakeDiscourse) -> Iterator[FakeServer]:
    with FakeServer(fake.app) as running:
        yield running
