"""``scrm state migrate --to postgresql://...``: move an SQLite deployment to PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from scrm.cli import ConfigOption, console, fleet_report, load_for_command, make_host, print_fleet
from scrm.sqlite import sqlite_path
from scrm.store import open_store

from scrm_core.errors import FatalError
from scrm_core.store import FleetStore

from .urls import safe_url

__all__ = ["build_app"]


def _ago(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else round((now - then).total_seconds(), 1)


def build_app() -> typer.Typer:
    app = typer.Typer(help="The state store: move it to another back end.", no_args_is_help=True)

    @app.command("migrate")
    def migrate_command(
        to: Annotated[str, typer.Option("--to", help="The PostgreSQL database: postgresql://user@host/db.")],
        config: ConfigOption = Path("scrm.toml"),
        resume: Annotated[
            bool, typer.Option("--resume", help="Go on with a copy into this database that was interrupted.")
        ] = False,
    ) -> None:
        """Copy the SQLite state of this config into an empty PostgreSQL database.

        Every table is copied row for row (checkpoints, seen events, the outbox, dead
        letters, the webhook inbox, replies, identity links, learning, adapter state, the
        audit log), so the next `scrm run` on PostgreSQL goes on where the last one on
        SQLite stopped, and sends nothing twice. Stop `scrm run` / `scrm serve` first: the
        copy holds the SQLite store's writer lock. Each table is one transaction; an
        interrupted copy goes on with --resume. The SQLite file is left as it was.
        """
        cfg = load_for_command(config, secrets=False)
        source = sqlite_path(cfg.state.url, cfg.base_dir) if cfg.state.url.lower().startswith("sqlite:") else None
        if source is None:
            raise FatalError(
                f"[state] url of {config} is not an SQLite file (sqlite:///path): `scrm state migrate` copies an "
                "SQLite state into PostgreSQL"
            )
        if not to.lower().startswith(("postgresql://", "postgres://")):
            raise FatalError("--to must be a PostgreSQL URL: postgresql://user@host:5432/database")
        with Progress(
            TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), console=console
        ) as progress:
            tasks: dict[str, TaskID] = {}

            def report(table: str, done: int, total: int) -> None:
                if table not in tasks:
                    tasks[table] = progress.add_task(table, total=total or 1)
                progress.update(tasks[table], completed=done if total else 1)

            from .migrate import migrate_state  # psycopg: loaded when a migration runs, not with `scrm --help`

            result = migrate_state(source, to, resume=resume, progress=report)
        if result.already_done:
            console.print(
                f"{safe_url(to)} already holds the complete copy of {source}: nothing to do.",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        else:
            rows = sum(result.copied.values())
            resumed = f" ({len(result.skipped)} table(s) were copied before)" if result.skipped else ""
            console.print(
                f"copied {rows} row(s) of {len(result.copied)} table(s) from {source}{resumed}.",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        console.print(
            f'Next: set [state] url = "{safe_url(to)}" in {config} (password in PGPASSWORD or ~/.pgpass), then '
            f"`scrm run`. Keep {source} as a backup; do not run scrm on it again.",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )

    @app.command("fleet")
    def fleet_command(
        config: ConfigOption = Path("scrm.toml"),
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object instead of tables.")] = False,
    ) -> None:
        """The fleet on this PostgreSQL state: workers, leases (readers and outbox partitions),
        the lag per source and the outbox per partition (one snapshot; `scrm status` shows the
        same below the per-source table)."""
        cfg = load_for_command(config, secrets=False)
        store = open_store(cfg.state.url, cfg.base_dir, make_host().stores)
        try:
            if not isinstance(store, FleetStore):
                raise FatalError(f"[state] url of {config} is not a store shared by a fleet (postgresql://...)")
            store.migrate()
            report = fleet_report(store.fleet(cfg.state.lease_seconds), cfg.state.lease_seconds)
        finally:
            store.close()
        if as_json:
            console.print_json(json.dumps(report))
        else:
            print_fleet(console, report)

    return app
