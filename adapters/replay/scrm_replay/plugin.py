"""The ``replay`` entry point: registers the adapter and the ``scrm demo`` and
``scrm replay generate`` commands."""

# No ``from __future__ import annotations``: typer reads the command's annotations at run
# time, and ``typer`` is imported inside the hook, out of reach of string annotations.
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from scrm_core import NetworkAdapter, hookimpl

from .adapter import ReplayAdapter

__all__ = ["scrm_register_commands", "scrm_register_networks"]


@hookimpl
def scrm_register_networks(register: Callable[[type[NetworkAdapter]], None]) -> None:
    register(ReplayAdapter)


@hookimpl
def scrm_register_commands(cli: Any) -> None:
    # Imported here: only the command line needs them, not every engine start.
    import typer
    from rich.console import Console
    from rich.table import Table

    from .demo import generate_demo
    from .demo_command import register

    register(cli)  # scrm demo
    app = typer.Typer(help="Replay recorded events; generate a demo stream.", no_args_is_help=True)

    @app.command("generate")
    def generate(
        out_dir: Annotated[Path, typer.Argument(help="Folder to write demo-<network>.ndjson files into.")],
        messages: Annotated[int, typer.Option("--messages", "-n", min=0, help="message.created events in all.")] = 6000,
        seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 7,
        malformed: Annotated[int, typer.Option(min=0, help="Broken lines to insert, to try rejects.")] = 0,
    ) -> None:
        """Write a deterministic demo stream about Acme Kettles on three networks."""
        stats = generate_demo(out_dir, messages=messages, seed=seed, malformed=malformed)
        table = Table(title=f"demo stream in {out_dir}", show_header=False)
        for name in ("messages", "edits", "deletes", "profiles", "threads", "direct", "outbound", "malformed"):
            table.add_row(name, str(getattr(stats, name)))
        for network, count in stats.per_network.items():
            table.add_row(f"network {network}", str(count))
        for intent, count in stats.per_intent.items():
            table.add_row(f"intent {intent}", str(count))
        Console().print(table)
        for path in stats.files:
            Console().print(f"  {path}")

    cli.add_typer(app, name="replay")
