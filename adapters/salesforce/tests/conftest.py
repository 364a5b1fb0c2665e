"""A fake Salesforce org on 127.0.0.1 over TLS, and adapters logged in to it."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from scrm_salesforce import SalesforceCrm, SalesforceSettings
from scrm_salesforce.testing import FakeSalesforce, make_rsa_key_pair

from scrm_core import AdapterContext
from scrm_core.testing.fakes import FakeServer


@pytest.fixture(scope="session")
def rsa_keys() -> tuple[str, str]:
    """(private PEM, public PEM), made once: RSA key generation is the slow part."""
    return make_rsa_key_pair()


class Org:
    """A fake org and the server that serves it."""

    def __init__(self, fake: FakeSalesforce, server: FakeServer) -> None:
        self.fake = fake
        self.server = server

    def settings(self, **overrides: Any) -> SalesforceSettings:
        values: dict[str, Any] = {
            "auth": "client_credentials",
            "login_url": self.server.url,
            "client_id": self.fake.consumer_key,
            "client_secret": self.fake.client_secret,
            "ca_bundle": self.server.ca_file,
            "bulk_poll_seconds": 0,
            "timeout_seconds": 5,
        }
        return SalesforceSettings(**(values | overrides))

    def adapter(self, tmp_path: Path, **overrides: Any) -> SalesforceCrm:
        return SalesforceCrm(self.settings(**overrides), AdapterContext(name="crm", base_dir=tmp_path))


@pytest.fixture
def make_org(rsa_keys: tuple[str, str]) -> Iterator[Callable[..., Org]]:
    servers: list[FakeServer] = []

    def make(**fake_args: Any) -> Org:
        fake = FakeSalesforce(jwt_public_key=rsa_keys[1], **fake_args)
        server = FakeServer(fake.app, tls=True)
        servers.append(server)
        return Org(fake, server)

    yield make
    # Exceptions a test caught keep requests' responses (and their TLS sockets) alive in
    # reference cycles; FakeServer.stop() would wait 10 s for those connections to close.
    gc.collect()
    for server in servers:
        server.stop()


@pytest.fixture
def org(make_org: Callable[..., Org]) -> Org:
    return make_org()
