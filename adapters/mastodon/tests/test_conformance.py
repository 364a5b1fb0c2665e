"""MastodonAdapter against the network conformance suite, over HTTP, with the real Mastodon.py."""

from __future__ import annotations

from pathlib import Path

from scrm_mastodon.testing import FakeMastodon

from scrm_core import Event, NetworkAdapter
from scrm_core.models import MessageCreated, MessageDeleted, ProfileUpdated
from scrm_core.testing.network import NetworkAdapterConformance

from .conftest import make_adapter


class TestMastodonConformance(NetworkAdapterConformance):
    """The suite serves the fake (``make_fake``) and arms its rate limits and lost answers
    through ``fake.faults``: no hook of our own."""

    network = "mastodon"

    def make_fake(self, scenario: list[Event]) -> FakeMastodon:
        fake = FakeMastodon()
        fake.load(scenario)
        return fake

    def make_adapter(self, scenario: list[Event], tmp_path: Path) -> NetworkAdapter:
        return make_adapter(self.fake_url)

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
