"""The ``scrm`` entry point of scrm-hubspot: the CRM adapter and ``scrm hubspot setup``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scrm_core import CrmAdapter, hookimpl

from .adapter import HubSpotCrm


@hookimpl
def scrm_register_crms(register: Callable[[type[CrmAdapter]], None]) -> None:
    register(HubSpotCrm)


@hookimpl
def scrm_register_commands(cli: Any) -> None:
    # Imported here: typer and rich are only needed when the command line runs.
    from .cli import build_app

    cli.add_typer(build_app(), name="hubspot")
