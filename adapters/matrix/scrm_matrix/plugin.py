"""The ``matrix`` entry point: registers the adapter."""

from __future__ import annotations

from collections.abc import Callable

from scrm_core import NetworkAdapter, hookimpl

from .adapter import MatrixAdapter

__all__ = ["scrm_register_networks"]


@hookimpl
def scrm_register_networks(register: Callable[[type[NetworkAdapter]], None]) -> None:
    register(MatrixAdapter)
