"""Stateful local fakes of the CRMs and networks scrm talks to, for adapter tests and benchmarks.

Each fake is a Starlette app that keeps its records in memory, speaks the vendor's wire
format and enforces its documented limits and error shapes; :class:`FakeServer` serves
one on 127.0.0.1. They need the ``testing`` extra (``pip install scrm-core[testing]``).

- the CRM fakes live beside their adapters and ship with each adapter's ``testing``
  extra: ``scrm_hubspot.testing.FakeHubSpot`` and ``scrm_salesforce.testing.FakeSalesforce``
  (``python -m scrm_hubspot.testing`` / ``python -m scrm_salesforce.testing`` serve one by hand);
- networks: ``mastodon.FakeMastodon`` (REST, Link paging, streaming, ``Idempotency-Key``),
  ``bluesky.FakeBluesky`` (XRPC and a Jetstream websocket), ``reddit.FakeReddit``,
  ``x.FakeX`` (API v2), ``discourse.FakeDiscourse`` and ``meta.FakeMeta`` (with signed
  webhook deliveries), and ``matrix_proxy.MatrixFaultProxy`` (faults in front of a real
  Synapse). Each has ``load(events)`` to seed it from scrm events, a ``faults``
  :class:`FaultInjector`, ``rate_limit_next()`` and ``lose_next_response()``.

A network fake is served with ``FakeServer(FakeMastodon().app)``.
"""

from .faults import Fault, FaultInjector
from .server import FakeServer

__all__ = ["FakeServer", "Fault", "FaultInjector"]
