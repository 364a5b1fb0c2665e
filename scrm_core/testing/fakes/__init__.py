"""Stateful local fakes of the CRMs scrm writes to, for adapter tests and benchmarks.

Each fake is a Starlette app that keeps its records in memory, speaks the vendor's wire
format and enforces its documented limits and error shapes; :class:`FakeServer` serves
one on 127.0.0.1. They need the ``testing`` extra (``pip install scrm-core[testing]``).
"""

from .faults import Fault, FaultInjector
from .server import FakeServer

__all__ = ["FakeServer", "Fault", "FaultInjector"]
