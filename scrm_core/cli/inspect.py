"""Commands that look at (and mend) a deployment: status, dlq, plugins, config check."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..config import Config
from ..engine.routing import rule_warnings
from ..engine.runner import build_crm, build_source
from ..errors import ScrmError
from ..plugins import PluginHost
from ..store import sqlite_path
from ..store.checks import sqlite_file_problems
from .common import (
    ConfigOption,
    StrictOption,
    config_or_exit,
    console,
    console_err,
    load_for_command,
    make_host,
    setup_logging,
    state_store,
)


def _ago(when: datetime | None) -> str:
    if when is None:
        return "never"
    seconds = (datetime.now(UTC) - when.astimezone(UTC)).total_seconds()
    return f"{seconds:.0f}s ago" if seconds < 120 else f"{seconds / 60:.0f}m ago"


def _local_problems(config: Config, host: PluginHost) -> tuple[list[str], list[str]]:
    """(problems, warnings) about the files the config names: the state store (writable),
    each enabled source's and the CRM's local files (their adapter's ``local_problems``)."""
    problems: list[str] = []
    warnings: list[str] = []
    try:
        path = sqlite_path(config.state.url, config.base_dir)
    except ScrmError as exc:
        problems.append(f"state.url: {exc.operator_message}")
        path = None
    if path is not None:
        found, warned = sqlite_file_problems(path, "the state store")
        problems += [f"state.url: {p}" for p in found]
        warnings += [f"state.url: {w}" for w in warned]
    for i, source in enumerate(config.sources):
        if source.enabled:
            problems += [f"sources[{i}].settings.{p}" for p in build_source(config, host, source).local_problems()]
    problems += [f"crm.settings.{p}" for p in build_crm(config, host).local_problems()]
    return problems, warnings


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status_command(config: ConfigOption = Path("scrm.toml")) -> None:
        """Per source: cursor and how long since it moved; outbox depth; dead letters."""
        cfg = load_for_command(config)
        with state_store(cfg) as store:
            checkpoints = {c.source: c for c in store.checkpoints()}
            depth, dead = store.outbox_depth(), store.dead_letter_count()
        table = Table(title=f"scrm status: {config}")
        for column in ("source", "adapter", "events", "last commit", "cursor"):
            table.add_column(column)
        for source in cfg.sources:
            cp = checkpoints.get(source.name)
            table.add_row(
                source.name + ("" if source.enabled else " (disabled)"),
                source.adapter,
                f"{cp.events:,}" if cp else "0",
                _ago(cp.updated_at if cp else None),
                (cp.cursor or "") if cp else "(from the beginning)",
            )
        console.print(table)
        console.print(f"outbox: {depth:,} operation(s) waiting for the CRM    dead letters: {dead:,}")

    dlq = typer.Typer(help="The dead-letter queue: records that could not be processed, and why.", no_args_is_help=True)
    app.add_typer(dlq, name="dlq")

    @dlq.command("list")
    def dlq_list(
        config: ConfigOption = Path("scrm.toml"),
        limit: Annotated[int, typer.Option(help="Show at most this many.")] = 50,
    ) -> None:
        """List dead letters: where each came from and the reason."""
        cfg = load_for_command(config)
        with state_store(cfg) as store:
            letters, total = store.dead_letters(limit), store.dead_letter_count()
        table = Table(title=f"dead letters ({total:,})")
        for column in ("id", "source", "where", "reason", "retryable"):
            table.add_column(column)
        for d in letters:
            table.add_row(
                str(d.id), d.source, d.locator, d.reason, "yes" if d.op is not None else "no (fix the source)"
            )
        console.print(table)

    @dlq.command("retry")
    def dlq_retry(
        ids: Annotated[list[int] | None, typer.Argument(help="Dead-letter ids; none: every CRM write.")] = None,
        config: ConfigOption = Path("scrm.toml"),
    ) -> None:
        """Put failed CRM writes back in the outbox; the next `scrm run` sends them."""
        cfg = load_for_command(config)
        with state_store(cfg) as store:
            moved = store.requeue_dead_letters(ids or None)
            left = store.dead_letter_count()
        console.print(f"requeued {moved:,} operation(s); {left:,} dead letter(s) remain")

    @app.command("plugins")
    def plugins_command(
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
        strict: StrictOption = False,
    ) -> None:
        """Installed plugins: name, version, hooks, adapters, and load errors."""
        host = make_host(strict=strict)
        infos = sorted(host.plugins.values(), key=lambda p: (not p.builtin, p.name))
        if as_json:
            typer.echo(json.dumps([i.as_dict() for i in infos], indent=2))
            return
        table = Table(title="scrm plugins")
        for column in ("name", "version", "hooks", "adapters", "status"):
            table.add_column(column)
        for i in infos:
            adapters = ", ".join([f"network:{n}" for n in i.networks] + [f"crm:{c}" for c in i.crms])
            status = f"[red]{i.error}[/]" if i.error else ("built-in" if i.builtin else "ok")
            table.add_row(i.name, i.version or "", ", ".join(i.hooks), adapters, status)
        console.print(table)
        if host.load_errors:
            raise typer.Exit(1 if strict else 0)

    config_app = typer.Typer(help="Work with configuration files.", no_args_is_help=True)
    app.add_typer(config_app, name="config")

    @config_app.command("check")
    def config_check(config: ConfigOption = Path("scrm.toml"), strict: StrictOption = False) -> None:
        """Validate a config file (and every adapter's settings); report every problem at once.

        Beyond the file itself: the state store and local databases (localcrm) must be
        writable, and files the sources read (replay paths) must exist.
        """
        host = make_host(strict=strict)
        setup_logging(False)
        cfg = config_or_exit(config, host)
        problems, warnings = _local_problems(cfg, host)
        if problems:
            console_err.print(f"[bold red]{config}[/]: {len(problems)} problem(s)", highlight=False)
            for problem in problems:
                console_err.print(f"  {config}: {problem}", highlight=False, markup=False)
            raise typer.Exit(2)
        enabled = [s.name for s in cfg.sources if s.enabled]
        rules = "built-in defaults" if cfg.routing.rules is None else f"{len(cfg.routing.rules)} rule(s)"
        if cfg.routing.rules is not None:
            names = [q.name for q in cfg.listening.queries]
            warnings += rule_warnings(cfg.routing.rules, names)
        for warning in warnings:
            console_err.print(f"[yellow]warning[/]: {config}: {escape(warning)}", highlight=False)
        console.print(
            f"[green]ok[/]: {config}: {len(enabled)} source(s) ({', '.join(enabled)}), CRM {cfg.crm.adapter}, "
            f"{len(cfg.listening.queries)} listening quer(ies), routing: {rules}",
            highlight=False,
        )
