"""The ``bluesky`` entry point: registers the adapter."""

from collections.abc import Callable

from scrm_core import NetworkAdapter, hookimpl

from .adapter import BlueskyAdapter

__all__ = ["scrm_register_networks"]


@hookimpl
def scrm_register_networks(register: Callable[[type[NetworkAdapter]], None]) -> None:
    register(BlueskyAdapter)
