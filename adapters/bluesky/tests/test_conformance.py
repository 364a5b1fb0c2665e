"""The bluesky adapter against the network conformance suite, in both listening modes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from bluesky_testkit import TEN_YEARS, Served, make, scenario

from scrm_core import Event, NetworkAdapter
from scrm_core.models import MessageCreated, MessageDeleted, MessageEdited, ProfileUpdated, Visibility
from scrm_core.testing.network import NetworkAdapterConformance


class _Bluesky(NetworkAdapterConformance):
    network: ClassVar[str] = "bluesky"
    mode: ClassVar[str]

    @pytest.fixture(autouse=True)
    def _server(self) -> Iterator[None]:
        self.served: Served | None = None
        yield
        if self.served is not None:
            self.served.server.stop()

    def scenario(self) -> list[Event]:
        return scenario()

    def make_adapter(self, scenario: list[Event], tmp_path: Path) -> NetworkAdapter:
        if self.served is None:  # a second call is a restart over the same network
            self.served = Served()
            self.served.fake.load(scenario)
        extra: dict[str, Any] = {}
        if self.mode == "jetstream":
            dids = sorted({e.message.author.account_id for e in scenario if isinstance(e, MessageCreated)})
            extra = {"mode": "jetstream", "wanted_dids": dids, "backfill_seconds": TEN_YEARS}
        return make(self.served, tmp_path, **extra)

    def rate_limit_next_request(self) -> Callable[[], int]:
        assert self.served is not None
        return self.served.fake.rate_limit_next()

    def lose_next_response(self) -> None:
        assert self.served is not None
        self.served.fake.lose_next_response()


class TestBlueskyPollConformance(_Bluesky):
    """Poll mode sees the network as it is now: what was posted and deleted before the first
    poll is never seen, posts are not editable, handle changes show as the author's current
    handle under the same DID (no profile events), and DMs are another service."""

    mode = "poll"

    def expected_keys(self, scenario: list[Event]) -> list[str]:
        deleted = {e.message_id for e in scenario if isinstance(e, MessageDeleted)}
        return [
            e.key
            for e in scenario
            if isinstance(e, MessageCreated)
            and e.message.id not in deleted
            and e.message.visibility is Visibility.public
        ]


class TestBlueskyJetstreamConformance(_Bluesky):
    """Jetstream replays commits and identity events; resuming rewinds a few seconds, so
    events may come twice (the engine drops repeats). DMs are another service."""

    mode = "jetstream"
    exactly_once = False

    def expected_keys(self, scenario: list[Event]) -> list[str]:
        keep = (MessageCreated, MessageEdited, MessageDeleted, ProfileUpdated)
        return [
            e.key
            for e in scenario
            if isinstance(e, keep) and not (isinstance(e, MessageCreated) and e.message.visibility is Visibility.direct)
        ]
