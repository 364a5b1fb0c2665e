"""pytest plugin (entry point ``pytest11``) with fixtures for scrm plugin and adapter authors.

* ``serve_fake``: serves ASGI apps (a fake's ``app``) on 127.0.0.1 for the test and stops
  them after it: ``url = serve_fake(fake.app).url``.
* ``scrm_host`` (from the runtime, ``scrm``'s own pytest plugin): a plugin host with only
  the built-ins loaded; register the plugin under test with ``scrm_host.register(module, "name")``.
* ``make_message``: builds a valid :class:`~scrm_core.Message` from a few keywords.

The conformance suites are classes to subclass: ``scrm_core.testing.network`` and
``scrm_core.testing.crm``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from ..models import Message, SocialProfile

if TYPE_CHECKING:
    from .fakes import FakeServer


@pytest.fixture
def serve_fake() -> Iterator[Callable[..., FakeServer]]:
    """``serve_fake(app, **options)``: a :class:`~scrm_core.testing.FakeServer` serving ``app``
    on 127.0.0.1 (options as for FakeServer: ``tls``, ``port``), stopped when the test ends."""
    from .fakes import FakeServer

    servers: list[FakeServer] = []

    def serve(app: Any, **options: Any) -> FakeServer:
        server = FakeServer(app, **options)
        servers.append(server)
        return server

    try:
        yield serve
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def make_message() -> Callable[..., Message]:
    def make(text: str = "hello", *, network: str = "test", id: str = "1", author: str = "a1", **more: Any) -> Message:
        profile = SocialProfile(network=network, account_id=author, handle=f"user{author}")
        return Message(network=network, id=id, author=profile, text=text, created_at=datetime.now(UTC), **more)

    return make
