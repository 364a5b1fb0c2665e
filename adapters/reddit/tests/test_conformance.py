"""RedditAdapter against the network conformance suite, over HTTP, with the real praw."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from scrm_reddit.testing import FakeReddit

from scrm_core import Event, NetworkAdapter
from scrm_core.testing.fakes import FakeServer
from scrm_core.testing.network import NetworkAdapterConformance

from .conftest import Switchable, make_adapter, new_fake, reddit_scenario


class TestRedditConformance(NetworkAdapterConformance):
    network = "reddit"
    fake: FakeReddit
    url: str

    @pytest.fixture(autouse=True)
    def _fresh_fake(self, served: tuple[Switchable, FakeServer]) -> Iterator[None]:
        switch, server = served
        type(self).url = server.url
        self.switch = switch
        self.loaded: list[Event] | None = None
        yield

    def make_adapter(self, scenario: list[Event], tmp_path: Path) -> NetworkAdapter:
        # A restart (same scenario again) keeps the fake and what was posted to it.
        if self.loaded is not scenario:
            self.fake = new_fake()
            self.fake.load(scenario)
            self.switch.fake = self.fake
            self.loaded = scenario
        return make_adapter(self.url, tmp_path)

    def scenario(self) -> list[Event]:
        return reddit_scenario()

    def rate_limit_next_request(self) -> Callable[[], int]:
        self.fake.rate_limit_next()
        return lambda: self.fake.statuses(429)

    def lose_next_response(self) -> None:
        self.fake.lose_next_response()
