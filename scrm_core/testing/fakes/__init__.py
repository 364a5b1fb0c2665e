"""Stateful local fakes of the CRMs scrm writes to, for adapter tests and benchmarks.

Each fake is a Starlette app that keeps its records in memory, speaks the vendor's wire
format and enforces its documented limits and error shapes; :class:`FakeServer` serves
one on 127.0.0.1. They need the ``testing`` extra (``pip install scrm-core[testing]``).

- :class:`~scrm_core.testing.fakes.hubspot.FakeHubSpot` (CRM v3/v4 objects, properties,
  associations, OAuth, rate-limit headers and 429s);
- :class:`~scrm_core.testing.fakes.salesforce.FakeSalesforce` (OAuth JWT / client
  credentials, sObject Collections, SOQL subset, Bulk API 2.0, ``Sforce-Limit-Info``).

``python -m scrm_core.testing.fakes hubspot|salesforce`` serves one by hand.
"""

from .faults import Fault, FaultInjector
from .server import FakeServer

__all__ = ["FakeServer", "Fault", "FaultInjector"]
