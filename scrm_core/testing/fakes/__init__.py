"""What every fake needs: :class:`FakeServer` and :class:`FaultInjector` (``pip install scrm-core[testing]``).

A fake is a Starlette app that keeps its records in memory, speaks the vendor's wire
format and enforces its documented limits and error shapes; :class:`FakeServer` serves it
on 127.0.0.1 until ``stop()`` or the end of its ``with`` block. Each vendor's fake lives with
its adapter and ships with the adapter's ``testing`` extra: ``scrm_mastodon.testing.FakeMastodon``
(REST, Link paging, streaming, ``Idempotency-Key``), ``scrm_bluesky.testing.FakeBluesky``
(XRPC and a Jetstream websocket), ``scrm_reddit.testing.FakeReddit``, ``scrm_x.testing.FakeX``
(API v2), ``scrm_discourse.testing.FakeDiscourse`` and ``scrm_meta.testing.FakeMeta`` (with
signed webhook deliveries), ``scrm_matrix.testing.MatrixFaultProxy`` (faults in front of a
real Synapse). The network fakes take the conformance scenario's events with
``load(events)``, and have a ``faults`` :class:`FaultInjector`, ``rate_limit_next()`` and
``lose_next_response()``. docs/writing-adapters.md, "Write a fake", shows how to write one.

The CRM fakes, ``scrm_hubspot.testing.FakeHubSpot`` and ``scrm_salesforce.testing.FakeSalesforce``,
are served by hand with ``python -m scrm_hubspot.testing`` / ``python -m scrm_salesforce.testing``.
"""

from .faults import Fault, FaultInjector
from .server import FakeServer

__all__ = ["FakeServer", "Fault", "FaultInjector"]
