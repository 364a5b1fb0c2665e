"""A stateful fake of HubSpot's CRM API for tests, benchmarks and trying a config by hand.

Shipped with the adapter (``pip install scrm-hubspot[testing]``) so an adapter author or
an operator tests against the same adversary scrm's own suite uses::

    from scrm_core.testing.fakes import FakeServer
    from scrm_hubspot.testing import FakeHubSpot

    fake = FakeHubSpot(with_properties=True)
    with FakeServer(fake.app) as server:
        ...  # base_url = server.url, access_token = FakeHubSpot.TOKEN

``python -m scrm_hubspot.testing`` serves one on 127.0.0.1 until Ctrl-C and prints the
``[crm.settings]`` that point the adapter at it.
"""

from .fake import BATCH_LIMIT, FakeHubSpot, HubSpotRequest

__all__ = ["BATCH_LIMIT", "FakeHubSpot", "HubSpotRequest"]
