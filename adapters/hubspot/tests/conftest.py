"""One fake HubSpot served on 127.0.0.1 per test module; tests reset it or build their own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from scrm_hubspot import HubSpotCrm, HubSpotSettings
from scrm_hubspot.testing import FakeHubSpot

from scrm_core import AdapterContext, AdapterState, MemoryState
from scrm_core.testing.fakes import FakeServer

T = TypeVar("T")


class Switchable:
    """An ASGI app that forwards to the current fake, so one server serves a fresh fake per test."""

    def __init__(self) -> None:
        self.fake = FakeHubSpot()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.fake.app(scope, receive, send)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Switchable, FakeServer]]:
    switch = Switchable()
    with FakeServer(switch) as server:
        yield switch, server


@pytest.fixture
def hubspot(served: tuple[Switchable, FakeServer]) -> Callable[..., FakeHubSpot]:
    """Install a new fake (constructor keywords as given) behind the module's server."""
    switch, _ = served

    def install(**kwargs: Any) -> FakeHubSpot:
        kwargs.setdefault("with_properties", True)
        switch.fake = FakeHubSpot(**kwargs)
        return switch.fake

    return install


@pytest.fixture
def url(served: tuple[Switchable, FakeServer]) -> str:
    return served[1].url


def make_crm(url: str, tmp_path: Path, state: AdapterState | None = None, **settings: Any) -> HubSpotCrm:
    """An adapter on the fake; pass one ``state`` to adapters that stand for one deployment
    across restarts (``scrm run`` keeps it in the state store)."""
    settings.setdefault("access_token", FakeHubSpot.TOKEN)
    context = AdapterContext(name="crm", base_dir=tmp_path, state=state or MemoryState())
    return HubSpotCrm(HubSpotSettings(base_url=url, **settings), context)


def run(coro: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(coro())  # type: ignore[arg-type]
