"""``scrm serve``: the webhook receiver and a following sync in one process.

The work is in :mod:`scrm.cli.serving`, imported when the command runs: uvicorn and
starlette cost every other command (``scrm status``, ``scrm --help``) nothing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from .common import ConfigOption, StrictOption, VerboseOption, config_or_exit, console, make_host, setup_logging


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve_command(
        config: ConfigOption = Path("scrm.toml"),
        address: Annotated[str | None, typer.Option("--host", help="Listen address (default: [serve] host).")] = None,
        port: Annotated[int | None, typer.Option("--port", help="Port (default: [serve] port; 0: any).")] = None,
        strict: StrictOption = False,
        verbose: VerboseOption = False,
    ) -> None:
        """Receive webhooks (verified, stored, then 200) and keep syncing, until Ctrl-C."""
        plugins = make_host(strict=strict)
        setup_logging(verbose)
        cfg = config_or_exit(config, plugins)
        from scrm.engine import tune_gc_for_throughput

        from .run import describe, exit_if_sources_failed
        from .serving import serve

        tune_gc_for_throughput()
        stats, counts = asyncio.run(
            serve(cfg, plugins, address=address or cfg.serve.host, port=cfg.serve.port if port is None else port)
        )
        console.print(describe(stats) + f"  ({stats.seconds:.1f}s)", highlight=False)
        console.print(f"webhooks: {counts.as_dict()}", highlight=False)
        exit_if_sources_failed(stats)
