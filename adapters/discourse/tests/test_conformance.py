"""The Discourse adapter against the core's network conformance suite, over HTTP to the fake."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from scrm_discourse.testing import FakeDiscourse

from scrm_core import Event, MessageCreated, MessageDeleted, NetworkAdapter, ProfileUpdated, Visibility
from scrm_core.testing.fakes import FakeServer
from scrm_core.testing.network import NetworkAdapterConformance
from scrm_core.webhooks import WebhookRequest

from .conftest import BRAND, NETWORK, make_adapter


class TestDiscourseConformance(NetworkAdapterConformance):
    network = NETWORK

    @pytest.fixture(autouse=True)
    def _servers(self) -> Iterator[None]:
        self._running: list[FakeServer] = []
        yield
        for server in self._running:
            server.stop()

    def make_adapter(self, scenario: list[Event], tmp_path: Path) -> NetworkAdapter:
        # One forum per test: a second call (a restart) reaches the same fake.
        if not hasattr(self, "fake"):
            self.fake = FakeDiscourse(staff=[BRAND])
            self.fake.load(scenario)
            self._running.append(FakeServer(self.fake.app))
        return make_adapter(self._running[0].url)

    def expected_keys(self, scenario: list[Event]) -> list[str]:
        """What polling can see. Discourse has no profile events; ``/posts.json`` lists only
        public topics (so not the direct message, a private_message topic) and never a
        deleted post (so the spam post deleted before the first poll is never seen)."""
        deleted = {e.message_id for e in scenario if isinstance(e, MessageDeleted)}
        keep = []
        for event in scenario:
            if isinstance(event, ProfileUpdated | MessageDeleted):
                continue
            if isinstance(event, MessageCreated) and event.message.visibility is Visibility.direct:
                continue
            if not isinstance(event, ProfileUpdated | MessageDeleted) and event.message.id in deleted:
                continue
            keep.append(event.key)
        return keep

    def webhook_expected_keys(self, scenario: list[Event]) -> list[str]:
        """Webhooks carry every post event as it happened, the direct message and the
        deleted post included; only the profile events have no Discourse counterpart."""
        return [e.key for e in scenario if not isinstance(e, ProfileUpdated)]

    def rate_limit_next_request(self) -> Callable[[], int]:
        self.fake.rate_limit_next()
        return lambda: self.fake.statuses(429)

    def lose_next_response(self) -> None:
        self.fake.lose_next_response()

    def webhook_requests(self, scenario: list[Event]) -> list[WebhookRequest]:
        return [
            WebhookRequest("POST", {k.lower(): v for k, v in d.headers.items()}, {}, d.body)
            for d in [self.fake.ping(), *self.fake.webhook_payloads()]
        ]
