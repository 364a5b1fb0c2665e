"""The ``telegram`` entry point."""

from collections.abc import Callable

from scrm_core import NetworkAdapter, hookimpl

from .adapter import TelegramAdapter


@hookimpl
def scrm_register_networks(register: Callable[[type[NetworkAdapter]], None]) -> None:
    register(TelegramAdapter)
