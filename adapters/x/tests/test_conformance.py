"""The X adapter against the network conformance suite, over HTTP against FakeX."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from scrm_x.testing import FakeX

from scrm_core import Direction, Event, Message, MessageCreated, MessageEdited, NetworkAdapter, Visibility
from scrm_core.testing.fakes import FakeServer
from scrm_core.testing.network import NetworkAdapterConformance

from .conftest import Switchable, make


class TestXConformance(NetworkAdapterConformance):
    network = "x"

    @pytest.fixture(autouse=True)
    def _server(self, served: tuple[Switchable, FakeServer]) -> None:
        self.switch, self.server = served

    def make_adapter(self, scenario: list[Event], tmp_path: Path) -> NetworkAdapter:
        self.fake = FakeX()  # the same scenario gives the same ids: a restart sees the same data
        self.fake.load(scenario)
        self.switch.fake = self.fake
        return make(self.server.url)

    def expected_keys(self, scenario: list[Event]) -> list[str]:
        """What a poller can see of the scenario on X:

        * no ``profile.updated``: X has no profile events; the author object on each post
          carries the current handle;
        * no direct messages: they live in X's separate DM API, not in posts;
        * nothing of a post deleted before the first poll (106): neither its creation nor
          its deletion is visible any more. Deletions of posts already seen are covered in
          ``test_adapter.py``.
        """
        gone = {e.message_id for e in scenario if e.kind == "message.deleted"}
        keys = []
        for event in scenario:
            if event.kind in ("profile.updated", "message.deleted"):
                continue
            if isinstance(event, MessageCreated | MessageEdited) and (
                event.message.visibility is Visibility.direct or event.message.id in gone
            ):
                continue
            keys.append(event.key)
        return keys

    def reply_target(self, messages: list[Message]) -> Message:
        """A post that mentions the brand: on self-serve access X takes replies to nothing else."""
        for m in messages:
            if m.direction is Direction.inbound and "brand" in m.mentions:
                return m
        raise AssertionError("the scenario has no post mentioning the brand")

    def rate_limit_next_request(self) -> Callable[[], int]:
        return self.fake.rate_limit_next()

    def lose_next_response(self) -> None:
        self.fake.lose_next_response()
