"""What every adapter author tests with: fakes, fault injection, conformance suites, fixtures.

* :class:`FakeServer` serves any ASGI app (a fake network or CRM) on 127.0.0.1 until
  ``stop()`` or the end of its ``with`` block; :class:`FaultInjector` and :class:`Fault`
  make a fake refuse, fail, time out or lose an answer, at random or once on demand.
* The conformance suites: ``scrm_core.testing.network.NetworkAdapterConformance`` and
  ``scrm_core.testing.crm.CrmAdapterConformance``.
* pytest fixtures (the ``scrm`` pytest plugin, installed with scrm-core): ``serve_fake``,
  ``make_message`` (and ``scrm_host`` from the runtime, ``scrm``).

Each vendor's own fake lives with its adapter (``scrm_mastodon.testing.FakeMastodon``,
installed with the adapter's ``testing`` extra).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .fakes import FakeServer, Fault, FaultInjector

__all__ = ["FakeServer", "Fault", "FaultInjector"]


def __getattr__(name: str) -> Any:
    # Lazy: the pytest plugin imports this package, and uvicorn is only needed to serve a fake.
    if name in __all__:
        from . import fakes

        return getattr(fakes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
