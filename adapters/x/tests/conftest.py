"""One fake X served on 127.0.0.1 per test module; each test installs a fresh FakeX behind it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from scrm_x import XAdapter, XSettings
from scrm_x.testing import FakeX

from scrm_core import AdapterContext
from scrm_core.testing.fakes import FakeServer


class Switchable:
    """An ASGI app that forwards to the current fake, so one server serves a fresh fake per test."""

    def __init__(self) -> None:
        self.fake = FakeX()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.fake.app(scope, receive, send)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Switchable, FakeServer]]:
    switch = Switchable()
    with FakeServer(switch) as server:
        yield switch, server


def make(url: str, **overrides: Any) -> XAdapter:
    """An adapter on the fake, with OAuth 2.0 user context and an app bearer token."""
    settings: dict[str, Any] = {
        "base_url": url,
        "bearer_token": FakeX.APP_TOKEN,
        "user_access_token": FakeX.USER_TOKEN,
        # Everyone in the default scenario, by user id: alice renames herself to alice_new
        # during it, and from: takes a numeric id as well as a username.
        "query": "from:1000 OR from:1001 OR from:1002 OR from:1003 OR from:1004",
        "max_results": 10,
        "page_size": 3,
        **overrides,
    }
    return XAdapter(XSettings.model_validate(settings), AdapterContext(name="x-test"))
