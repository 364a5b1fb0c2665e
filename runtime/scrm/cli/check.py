"""``scrm check``: is every configured adapter ready? Each problem with the exact fix.

Logs in to the CRM and each enabled source and runs their ``check()`` (the CRM's fields,
permissions and picklists; each source's credentials): what ``scrm run`` also does
before it sends anything. Writes nothing anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from scrm.plugins import PluginHost
from scrm_core.adapters import CrmAdapter, NetworkAdapter
from scrm_core.config import Config
from scrm_core.errors import ScrmError

from .common import ConfigOption, StrictOption, config_or_exit, console, make_host, setup_logging

if TYPE_CHECKING:  # imported where used: loading the CLI does not load the engine
    from scrm.engine.preflight import AdapterProblems


async def find_problems(config: Config, host: PluginHost) -> list[AdapterProblems]:
    """Start every configured adapter, check it, close it."""
    from scrm.engine import build_crm, build_source
    from scrm.engine.preflight import check_adapters

    crm = build_crm(config, host)
    sources = {s.name: build_source(config, host, s) for s in config.sources if s.enabled}
    opened: list[CrmAdapter | NetworkAdapter] = []
    try:
        adapters: list[CrmAdapter | NetworkAdapter] = [crm, *sources.values()]
        for adapter in adapters:
            await adapter.start()
            opened.append(adapter)
        return await check_adapters(crm, sources)
    finally:
        for adapter in reversed(opened):
            with contextlib.suppress(Exception):
                await adapter.close()


def print_problems(found: list[AdapterProblems]) -> int:
    """Print problems and warnings; returns how many problems block a run."""
    blocking = 0
    for entry in found:
        for p in entry.problems:
            blocking += p.blocking
            label = "[bold red]problem[/]" if p.blocking else "[yellow]warning[/]"
            console.print(f"{label} {entry.adapter}: {p.problem}", highlight=False, markup=True)
            console.print(f"    fix: {p.fix}", highlight=False, markup=False)
    return blocking


def register(app: typer.Typer) -> None:
    @app.command("check")
    def check_command(config: ConfigOption = Path("scrm.toml"), strict: StrictOption = False) -> None:
        """Log in to the CRM and every source and check they are ready; print each problem with its fix.

        Exit code 0 when `scrm run` can start (warnings may remain), 1 when it would refuse.
        """
        host = make_host(strict=strict)
        setup_logging(False)
        cfg = config_or_exit(config, host)
        try:
            found = asyncio.run(find_problems(cfg, host))
        except ScrmError as exc:
            console.print(f"[bold red]problem[/]: {exc.operator_message}", highlight=False)
            raise typer.Exit(1) from None
        blocking = print_problems(found)
        checked = ["crm", *(s.name for s in cfg.sources if s.enabled)]
        if blocking:
            console.print(f"{blocking} problem(s): `scrm run` would refuse to start until they are fixed")
            raise typer.Exit(1)
        console.print(f"[green]ok[/]: {', '.join(checked)} ready", highlight=False)
