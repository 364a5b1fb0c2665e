"""The ``scrm`` entry point of scrm-localcrm: the CRM adapter and the ``scrm localcrm`` commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scrm_core import CrmAdapter, hookimpl

from .adapter import LocalCrm


@hookimpl
def scrm_register_crms(register: Callable[[type[CrmAdapter]], None]) -> None:
    register(LocalCrm)


@hookimpl
def scrm_register_commands(cli: Any) -> None:
    # Imported here: typer and rich are only needed when the command line runs.
    from .cli import build_app

    cli.add_typer(build_app(), name="localcrm")
