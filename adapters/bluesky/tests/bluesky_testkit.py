"""Shared set-up: a FakeBluesky served on 127.0.0.1, and adapters pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scrm_bluesky import BlueskyAdapter, BlueskySettings
from scrm_bluesky.testing import FakeBluesky

from scrm_core import AdapterContext
from scrm_core.testing.fakes.server import FakeServer
from scrm_core.testing.network import default_scenario

BRAND = "brand.bsky.social"
#: Covers every post of the default scenario (the fake's search: all terms in the text).
QUERIES = ["kettle", "X200", "same here", "order number", "done", "agreed"]
TEN_YEARS = 10 * 365 * 86400.0


def scenario() -> list[Any]:
    from scrm_bluesky.testing import bluesky_ids

    return bluesky_ids(default_scenario("bluesky"))


class Served:
    """A fake and its server; stopped by the fixture that made it."""

    def __init__(self) -> None:
        self.fake = FakeBluesky()
        self.server = FakeServer(self.fake.app)
        self.url = self.server.url
        self.ws_url = self.url.replace("http://", "ws://")


def make(served: Served, tmp_path: Path, **overrides: Any) -> BlueskyAdapter:
    settings: dict[str, Any] = {
        "identifier": BRAND,
        "app_password": FakeBluesky.APP_PASSWORD,
        "base_url": served.url,
        "jetstream_url": served.ws_url,
        "search_queries": QUERIES,
        "page_size": 3,
        "session_file": str(tmp_path / "bsky.session"),
        "idle_seconds": 0.3,
        "timeout_seconds": 5.0,
    }
    settings.update(overrides)
    return BlueskyAdapter(BlueskySettings(**settings), AdapterContext(name="t", base_dir=tmp_path))


@pytest.fixture
def served() -> Iterator[Served]:
    s = Served()
    try:
        yield s
    finally:
        s.server.stop()


@pytest.fixture
def loaded(served: Served) -> Served:
    served.fake.load(scenario())
    return served
