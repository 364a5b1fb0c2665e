"""``scrm run``: sync the configured sources into the CRM, with a live progress line."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from scrm.plugins import PluginHost
from scrm_core.config import Config

from .common import (
    ConfigOption,
    StrictOption,
    VerboseOption,
    config_or_exit,
    console,
    console_err,
    make_host,
    setup_logging,
)

if TYPE_CHECKING:  # imported where used: loading the CLI does not load the engine
    from scrm.engine import RunStats


def describe(stats: RunStats) -> str:
    i, s, r = stats.ingest, stats.sink, stats.replies
    line = (
        f"events {i.events:,}  new messages {i.messages:,}  edits {i.edits:,}  deletions {i.deletions:,}  "
        f"CRM writes {s.applied:,} in {s.calls:,} calls  dead letters {i.rejects + s.dead_lettered:,}"
    )
    if i.filtered:
        line += f"  dropped by the listening filter {i.filtered:,}"
    if r.sent or r.held or r.refused or r.failed:
        line += f"  replies sent {r.sent:,} held {r.held:,} refused {r.refused:,} failed {r.failed:,}"
    return line


def sync(
    config: Config, host: PluginHost, *, follow: bool, total: int | None = None, preflight: bool = True
) -> RunStats:
    """Run the engine with a progress bar (a bar when the number of events is known).

    ``preflight``: every adapter's ``check()`` first; the run refuses to start, listing
    each problem with its fix, when the set-up would make every write fail."""
    from scrm.engine import Engine, tune_gc_for_throughput

    tune_gc_for_throughput()
    columns = [SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("starting", total=total)

        def report(stats: RunStats) -> None:
            progress.update(task, completed=stats.ingest.events, description=describe(stats))

        engine = Engine(config, host, progress=report, preflight=preflight)
        stats = asyncio.run(engine.run(follow=follow))
    console.print(describe(stats) + f"  ({stats.seconds:.1f}s)", highlight=False)
    if stats.plugin_failures:
        console.print(f"[yellow]plugin failures:[/] {stats.plugin_failures}")
    return stats


def exit_if_sources_failed(stats: RunStats) -> None:
    """Name every source that stopped (the others were synced) and exit 1."""
    if not stats.failed_sources:
        return
    for name, reason in sorted(stats.failed_sources.items()):
        console_err.print(f"[bold red]error:[/] source {name} stopped: {escape(reason)}", highlight=False)
    console_err.print(
        f"{len(stats.failed_sources)} source(s) failed; the others were synced. A failed source resumes from its "
        "last saved position with the next run.",
        highlight=False,
    )
    raise typer.Exit(1)


def summary_table(counts: dict[str, int], title: str) -> Table:
    table = Table(title=title)
    table.add_column("")
    table.add_column("count", justify="right")
    for name, value in counts.items():
        table.add_row(name, f"{value:,}")
    return table


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run_command(
        config: ConfigOption = Path("scrm.toml"),
        once: Annotated[bool, typer.Option("--once", help="Stop when every source is drained.")] = False,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Show what would be written to the CRM; write nothing.")
        ] = False,
        skip_check: Annotated[
            bool, typer.Option("--skip-check", help="Do not run every adapter's check() before starting.")
        ] = False,
        strict: StrictOption = False,
        verbose: VerboseOption = False,
    ) -> None:
        """Sync the configured sources into the CRM (continuously, or --once until drained).

        Every adapter is checked first (as `scrm check` does); a set-up that would make
        every write fail stops the run before anything is sent, with the fixes.
        """
        if dry_run:
            from .preview import run_dry

            run_dry(config, strict, verbose, samples=3)
            return
        host = make_host(strict=strict)
        setup_logging(verbose)
        cfg = config_or_exit(config, host)
        stats = sync(cfg, host, follow=not once, preflight=not skip_check)
        if stats.stopped_by_signal:
            console.print("stopped: progress is saved; the next run goes on from here")
        exit_if_sources_failed(stats)
