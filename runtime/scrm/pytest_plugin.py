"""pytest plugin (entry point ``pytest11``) of the runtime, for processing-plugin authors.

* ``scrm_host``: a :class:`~scrm.plugins.PluginHost` with only the built-ins loaded;
  register the plugin under test with ``scrm_host.register(module, "name")``.

The fixtures every adapter author needs (``serve_fake``, ``make_message``) are the core's:
:mod:`scrm_core.testing.pytest_plugin`.
"""

from __future__ import annotations

import pytest

from .plugins import PluginHost


@pytest.fixture
def scrm_host() -> PluginHost:
    return PluginHost(env={}).load(entry_points=False)
