"""A fake Mastodon served on 127.0.0.1 per test, and an adapter pointed at it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from scrm_mastodon import MastodonAdapter, MastodonSettings
from scrm_mastodon.testing import FakeMastodon

from scrm_core import AdapterContext
from scrm_core.testing.fakes import FakeServer

T = TypeVar("T")


def make_adapter(url: str, token: str = FakeMastodon.TOKEN, **settings: Any) -> MastodonAdapter:
    values: dict[str, Any] = {"base_url": url, "access_token": token, "page_size": 3, **settings}
    return MastodonAdapter(MastodonSettings(**values), AdapterContext(name="mastodon-test"))


def run(make: Callable[[], Awaitable[T]], timeout: float = 20.0) -> T:
    async def go() -> T:
        return await asyncio.wait_for(make(), timeout)

    return asyncio.run(go())


@pytest.fixture
def fake() -> FakeMastodon:
    return FakeMastodon()


@pytest.fixture
def server(fake: FakeMastodon) -> Iterator[FakeServer]:
    with FakeServer(fake.app) as served:
        yield served
