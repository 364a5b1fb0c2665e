"""pytest plugin (entry point ``pytest11``) with fixtures for scrm plugin and adapter authors.

* ``scrm_host``: a :class:`~scrm_core.plugins.PluginHost` with only the built-ins loaded;
  register the plugin under test with ``scrm_host.register(module, "name")``.
* ``make_message``: builds a valid :class:`~scrm_core.Message` from a few keywords.

The conformance suites are classes to subclass: ``scrm_core.testing.network`` and
``scrm_core.testing.crm``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from ..models import Message, SocialProfile
from ..plugins import PluginHost


@pytest.fixture
def scrm_host() -> PluginHost:
    return PluginHost(env={}).load(entry_points=False)


@pytest.fixture
def make_message() -> Callable[..., Message]:
    def make(text: str = "hello", *, network: str = "test", id: str = "1", author: str = "a1", **more: Any) -> Message:
        profile = SocialProfile(network=network, account_id=author, handle=f"user{author}")
        return Message(network=network, id=id, author=profile, text=text, created_at=datetime.now(UTC), **more)

    return make
