"""Kits for adapter and plugin authors: conformance suites and fixtures.

Import each suite from its own module, e.g.
``from scrm_core.testing.network import NetworkAdapterConformance``.
"""
