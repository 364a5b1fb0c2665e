"""MatrixAdapter against the network conformance suite, over HTTP, against a real Synapse.

The adapter talks to Synapse through :class:`MatrixFaultProxy`, which injects the rate
limit and the lost answer the suite asks for. The default scenario is loaded into fresh
users and rooms (:mod:`.world`); ``make_adapter`` may be called several times in a test
and always points at the same world. Tests that only read share one loaded world (a
drain changes nothing on the homeserver); the tests that post replies each load their own,
so the replies never show up in another test's drain.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import pytest
from scrm_matrix import MatrixAdapter, MatrixSettings
from scrm_matrix.testing import MatrixFaultProxy

from scrm_core import AdapterContext
from scrm_core.models import Event
from scrm_core.testing.network import NetworkAdapterConformance, default_scenario

from .conftest import Homeserver
from .world import World, load


class TestMatrixConformance(NetworkAdapterConformance):
    network = "matrix"
    min_pages = 3

    hs: Homeserver
    proxy: MatrixFaultProxy
    proxy_url: str
    world: World | None = None
    loaded: list[Event] | None = None
    #: The world the read-only tests share (class level: pytest makes a new instance per test).
    shared: ClassVar[dict[str, World]] = {}

    @pytest.fixture(autouse=True)
    def _homeserver(
        self, request: pytest.FixtureRequest, synapse: Homeserver, proxy: MatrixFaultProxy, proxy_url: str
    ) -> None:
        self.hs, self.proxy, self.proxy_url = synapse, proxy, proxy_url
        self.writes = request.node.name.startswith("test_reply_")

    def scenario(self) -> list[Event]:
        # Event ids and times are Synapse's: the scenario is what loading it produced.
        if self.loaded is None:
            if self.writes:
                self.world = load(self.hs, default_scenario(self.network), self.network)
            else:
                key = self.hs.url
                if key not in self.shared:
                    self.shared[key] = load(self.hs, default_scenario(self.network), self.network)
                self.world = self.shared[key]
            self.loaded = self.world.events
        return self.loaded

    def make_adapter(self, scenario: list[Event], tmp_path: Path) -> MatrixAdapter:
        assert self.world is not None and scenario is self.loaded, "call scenario() first"
        settings = MatrixSettings(
            base_url=self.proxy_url,
            access_token=self.world.brand.token,
            rooms=self.world.rooms,
            page_size=3,
        )
        return MatrixAdapter(settings, AdapterContext(name="matrix-test", base_dir=tmp_path))

    def rate_limit_next_request(self) -> Callable[[], int]:
        self.proxy.rate_limit_next()
        return lambda: self.proxy.refusals

    def lose_next_response(self) -> None:
        self.proxy.lose_next_response()

    # Matrix has no webhooks (an application service is a different kind of client, not
    # a source of signed deliveries), so these skip without loading a world first.
    def test_webhooks_verify_and_parse(self, tmp_path: Path) -> None:
        pytest.skip("Matrix delivers no webhooks: the adapter listens with /sync")

    def test_webhooks_refuse_forgeries(self, tmp_path: Path) -> None:
        pytest.skip("Matrix delivers no webhooks: the adapter listens with /sync")
