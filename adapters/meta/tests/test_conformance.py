"""The Meta adapter (Facebook platform) against the network conformance suite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from scrm_meta.testing import FakeMeta

from scrm_core import (
    Event,
    Message,
    MessageCreated,
    MessageDeleted,
    MessageEdited,
    NetworkAdapter,
    ProfileUpdated,
    Visibility,
)
from scrm_core.testing.fakes import FakeServer
from scrm_core.testing.network import NetworkAdapterConformance, default_scenario
from scrm_core.webhooks import WebhookRequest

from .conftest import graph_ids, make_adapter


def _webhook_keys(scenario: list[Event]) -> list[str]:
    """What a Page's feed webhooks can say: no profile events (Facebook shows a Page names,
    not handles, and sends no profile notifications) and no direct messages (those belong to
    the Messenger API and its ``messages`` webhook field, not to the feed)."""
    keys = []
    for event in scenario:
        if isinstance(event, ProfileUpdated):
            continue
        if isinstance(event, MessageCreated | MessageEdited) and event.message.visibility is Visibility.direct:
            continue
        keys.append(event.key)
    return keys


class TestMetaFacebookConformance(NetworkAdapterConformance):
    network = "facebook"

    def scenario(self) -> list[Event]:
        return graph_ids(default_scenario(self.network))

    def make_adapter(self, scenario: list[Event], tmp_path: Path) -> NetworkAdapter:
        if not hasattr(self, "server"):
            self.fake = FakeMeta()
            self.fake.load(scenario)
            self.server = FakeServer(self.fake.app)
        return make_adapter(self.server.url)

    def teardown_method(self) -> None:
        if hasattr(self, "server"):
            self.server.stop()

    def expected_keys(self, scenario: list[Event]) -> list[str]:
        """What polling can see, on top of the webhook limits: a deleted post or comment has
        vanished from the Graph (its creation and its deletion reach scrm by webhook only),
        and comments have no ``updated_time``, so their edits come by webhook only."""
        deleted = {e.message_id for e in scenario if isinstance(e, MessageDeleted)}
        comments = {e.message.id for e in scenario if isinstance(e, MessageCreated) and e.message.parent_id}
        keys = []
        for event in scenario:
            if isinstance(event, MessageDeleted):
                continue
            if isinstance(event, MessageCreated | MessageEdited) and event.message.id in deleted:
                continue
            if isinstance(event, MessageEdited) and event.message.id in comments:
                continue
            keys.append(event.key)
        return [k for k in keys if k in set(_webhook_keys(scenario))]

    def webhook_expected_keys(self, scenario: list[Event]) -> list[str]:
        return _webhook_keys(scenario)

    def rate_limit_next_request(self) -> Callable[[], int]:
        self.fake.rate_limit_next()
        return lambda: self.fake.refusals

    def lose_next_response(self) -> None:
        self.fake.lose_next_response()

    def webhook_requests(self, scenario: list[Event]) -> list[WebhookRequest]:
        payloads = self.fake.webhook_payloads(scenario)
        return [self.fake.verification_request(), *(self.fake.signed_delivery(p) for p in payloads)]


class TestMetaInstagramConformance(TestMetaFacebookConformance):
    """Instagram: roots become the account's own media (outbound), replies comments two levels deep.

    Instagram shows neither edits nor deletions (no ``updated_time``; deleted comments
    vanish; the ``comments`` webhook notifies new comments only), and media are not
    notified at all: they come by polling.
    """

    network = "instagram"

    def scenario(self) -> list[Event]:
        return default_scenario(self.network)

    def make_adapter(self, scenario: list[Event], tmp_path: Path) -> NetworkAdapter:
        if not hasattr(self, "server"):
            self.fake = FakeMeta()
            self.fake.load(scenario, platform="instagram")
            self.server = FakeServer(self.fake.app)
        return make_adapter(self.server.url, platform="instagram")

    def expected_keys(self, scenario: list[Event]) -> list[str]:
        deleted = {e.message_id for e in scenario if isinstance(e, MessageDeleted)}
        return [
            k
            for e in scenario
            if isinstance(e, MessageCreated) and e.message.id not in deleted
            for k in [e.key]
            if k in set(_webhook_keys(scenario))
        ]

    def webhook_expected_keys(self, scenario: list[Event]) -> list[str]:
        return [
            e.key
            for e in scenario
            if isinstance(e, MessageCreated) and e.message.parent_id and e.message.visibility is not Visibility.direct
        ]

    def reply_target(self, messages: list[Message]) -> Message:
        """The first inbound top-level comment (the roots are the account's own media)."""
        return next(m for m in messages if m.direction.value == "inbound" and m.parent_id == m.thread_root_id)

    def webhook_requests(self, scenario: list[Event]) -> list[WebhookRequest]:
        payloads = self.fake.webhook_payloads(scenario, platform="instagram")
        return [self.fake.verification_request(), *(self.fake.signed_delivery(p) for p in payloads)]
