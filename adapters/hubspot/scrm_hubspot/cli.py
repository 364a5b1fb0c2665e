"""``scrm hubspot setup``: create the custom properties scrm needs, or list them with --dry-run."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from scrm_core import AdapterContext
from scrm_core.errors import ScrmError

from .adapter import HubSpotCrm
from .schema import OBJECT_SCOPES
from .settings import HubSpotSettings
from .setup import SetupPlan, apply_setup, plan_setup

__all__ = ["build_app"]

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The scrm TOML file whose [crm] is hubspot.")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Print what is missing; change nothing.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False, markup=False)
    return typer.Exit(code)


def _adapter(config: Path) -> HubSpotCrm:
    from scrm.cli import config_or_exit, make_host

    cfg = config_or_exit(config, make_host())
    if cfg.crm.adapter != HubSpotCrm.name:
        raise _fail(f"{config}: the CRM adapter is {cfg.crm.adapter!r}, not 'hubspot'", 2)
    try:
        settings = HubSpotSettings.model_validate(cfg.crm.settings)
    except ValidationError as e:
        raise _fail(f"{config}: [crm.settings] is not valid for hubspot:\n{e}", 2) from e
    return HubSpotCrm(settings, AdapterContext(name="crm", base_dir=Path(cfg.base_dir)))


async def _setup(adapter: HubSpotCrm, dry_run: bool) -> tuple[SetupPlan, list[str]]:
    await adapter.start()
    plan = await plan_setup(adapter.api, adapter.key)
    if dry_run or plan.complete:
        return plan, []
    return plan, await apply_setup(adapter.api, plan)


def build_app() -> typer.Typer:
    app = typer.Typer(help="HubSpot: prepare the account for scrm.", no_args_is_help=True)

    @app.command()
    def setup(config: ConfigOption = Path("scrm.toml"), dry_run: DryRunOption = False) -> None:
        """Create the scrm property group and custom properties on contacts, tickets and notes."""
        adapter = _adapter(config)
        try:
            plan, created = asyncio.run(_setup(adapter, dry_run))
        except ScrmError as e:
            raise _fail(e.operator_message) from e
        console = Console(highlight=False)
        if plan.complete:
            console.print("HubSpot has every property scrm needs.", markup=False)
        elif dry_run:
            console.print("Missing in HubSpot (nothing was changed):", markup=False)
            for line in plan.lines():
                console.print(f"  {line}", markup=False)
        else:
            for name in created:
                console.print(f"created {name}", markup=False)
            for line in plan.lines():
                if "delete it" in line:
                    console.print(f"  still to do by hand: {line}", markup=False)
        console.print(f"scrm also writes records with the scopes: {', '.join(OBJECT_SCOPES)}", markup=False)
        if dry_run and not plan.complete:
            raise typer.Exit(1)

    return app
