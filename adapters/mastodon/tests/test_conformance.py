"""MastodonAdapter against the network conformance suite, over HTTP, with the real Mastodon.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from scrm_mastodon.testing import FakeMastodon

from scrm_core import Event, NetworkAdapter
from scrm_core.models import MessageCreated, MessageDeleted, ProfileUpdated
from scrm_core.testing.fakes import FakeServer
from scrm_core.testing.network import NetworkAdapterConformance

from .conftest import make_adapter


class TestMastodonConformance(NetworkAdapterConformance):
    network = "mastodon"
    fake: FakeMastodon
    server: FakeServer

    @pytest.fixture(autouse=True)
    def _served(self) -> Iterator[None]:
        self.fake = FakeMastodon()
        self._loaded = False
        with FakeServer(self.fake.app) as server:
            self.server = server
            yield

    def make_adapter(self, scenario: list[Event], tmp_path: Path) -> NetworkAdapter:
        if not self._loaded:  # a second call is a restart over the same network
            self.fake.load(scenario)
            self._loaded = True
        return make_adapter(self.server.url)

    def expected_keys(self, scenario: list[Event]) -> list[str]:
        """Mastodon has no profile-change events, and a status deleted before anyone polled is
        gone with its notification: its creation and deletion are never seen."""
        gone = {e.message_id for e in scenario if isinstance(e, MessageDeleted)}
        keys = []
        for event in scenario:
            if isinstance(event, (ProfileUpdated, MessageDeleted)):
                continue
            if isinstance(event, MessageCreated) and event.message.id in gone:
                continue
            keys.append(event.key)
        return keys

    def rate_limit_next_request(self) -> Callable[[], int]:
        self.fake.rate_limit_next()
        return lambda: self.fake.rate_limited

    def lose_next_response(self) -> None:
        self.fake.lose_next_response()
