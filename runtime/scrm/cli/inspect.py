"""Commands that look at (and mend) a deployment: status, dlq, plugins, config check."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from scrm.plugins import PluginHost
from scrm.store import DeadLetter, FleetStore
from scrm_core.config import Config
from scrm_core.errors import ScrmError

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
from .fleet import fleet_report, print_fleet


def _retry_verdict(letter: DeadLetter) -> str:
    if letter.op is None:
        return "no: fix the source"
    if letter.retryable is None:
        return "unknown (kept before scrm recorded it)"
    return "yes, as things are" if letter.retryable else "only after the fix"


def _default_fix(letter: DeadLetter) -> str:
    if letter.op is None:
        return "correct the record at its source; it is read again from there"
    return "see the reason; then `scrm dlq retry <id>`"


def _ago(when: datetime | None) -> str:
    if when is None:
        return "never"
    seconds = (datetime.now(UTC) - when.astimezone(UTC)).total_seconds()
    return f"{seconds:.0f}s ago" if seconds < 120 else f"{seconds / 60:.0f}m ago"


def _local_problems(config: Config, host: PluginHost) -> tuple[list[str], list[str]]:
    """(problems, warnings) about the files the config names: the state store (writable),
    each enabled source's and the CRM's local files (their adapter's ``local_problems``)."""
    from scrm.engine.runner import build_crm, build_source

    problems: list[str] = []
    warnings: list[str] = []
    try:
        found, warned = host.stores.backend(config.state.url).local_problems(config.state.url, config.base_dir)
    except ScrmError as exc:
        found, warned = [exc.operator_message], []
    problems += [f"state.url: {p}" for p in found]
    warnings += [f"state.url: {w}" for w in warned]
    for i, source in enumerate(config.sources):
        if source.enabled:
            problems += [f"sources[{i}].settings.{p}" for p in build_source(config, host, source).local_problems()]
    problems += [f"crm.settings.{p}" for p in build_crm(config, host).local_problems()]
    return problems, warnings


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status_command(
        config: ConfigOption = Path("scrm.toml"),
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object instead of tables.")] = False,
    ) -> None:
        """Per source: cursor and how long since it moved; outbox depth; dead letters. On a store
        shared by a fleet, also the workers, the leases, the lag per source and the outbox per
        partition. Reads the state store only."""
        cfg = load_for_command(config, secrets=False)
        fleet: dict[str, Any] | None = None
        with state_store(cfg) as store:
            checkpoints = {c.source: c for c in store.checkpoints()}
            depth, dead = store.outbox_depth(), store.dead_letter_count()
            waiting_links = len(store.pending_links(1_000_000))
            if isinstance(store, FleetStore):
                fleet = fleet_report(store.fleet(cfg.state.lease_seconds), cfg.state.lease_seconds)
        if as_json:
            sources = []
            for source in cfg.sources:
                cp = checkpoints.get(source.name)
                sources.append(
                    {
                        "name": source.name,
                        "adapter": source.adapter,
                        "enabled": source.enabled,
                        "events": cp.events if cp else 0,
                        "last_commit": cp.updated_at.isoformat() if cp and cp.updated_at else None,
                        "cursor": cp.cursor if cp else None,
                    }
                )
            report = {
                "sources": sources,
                "outbox_depth": depth,
                "dead_letters": dead,
                "waiting_links": waiting_links,
                "fleet": fleet,
            }
            typer.echo(json.dumps(report, indent=2))
            return
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
        if waiting_links:
            console.print(
                f"{waiting_links:,} reference(s) wait for a refused record to be repaired (`scrm dlq list`)",
                highlight=False,
            )
        if fleet is not None:
            print_fleet(console, fleet)

    dlq = typer.Typer(help="The dead-letter queue: records that could not be processed, and why.", no_args_is_help=True)
    app.add_typer(dlq, name="dlq")

    @dlq.command("list")
    def dlq_list(
        config: ConfigOption = Path("scrm.toml"),
        limit: Annotated[int, typer.Option(help="Show at most this many.")] = 50,
    ) -> None:
        """List dead letters: where each came from, the CRM's code and reason, whether a retry can
        work as things are, and the fix. Reads local state only."""
        cfg = load_for_command(config, secrets=False)
        with state_store(cfg) as store:
            letters, total = store.dead_letters(limit), store.dead_letter_count()
            links = store.pending_links(limit)
        table = Table(title=f"dead letters ({total:,})")
        for column in ("id", "source", "where", "code", "reason", "retry", "fix"):
            table.add_column(column)
        for d in letters:
            table.add_row(
                str(d.id), d.source, d.locator, d.code or "", d.reason, _retry_verdict(d), d.fix or _default_fix(d)
            )
        console.print(table)
        if links:
            console.print(
                f"{len(links):,} record(s) were written without a reference to a refused record; the reference "
                "is added once that record is repaired and `scrm dlq retry` sends it:",
                highlight=False,
            )
            for link in links[:10]:
                console.print(
                    f"  {link.child_object.value} {link.child_key} -> {link.ref} {link.parent_key}",
                    highlight=False,
                    markup=False,
                )

    @dlq.command("retry")
    def dlq_retry(
        ids: Annotated[list[int] | None, typer.Argument(help="Dead-letter ids; none: every CRM write.")] = None,
        config: ConfigOption = Path("scrm.toml"),
    ) -> None:
        """Put failed CRM writes back in the outbox; the next `scrm run` sends them, fitted again to the
        CRM's metadata as it is then (so a picklist value or field length fixed in the CRM is used)."""
        cfg = load_for_command(config, secrets=False)
        with state_store(cfg) as store:
            moved = store.requeue_dead_letters(ids or None)
            left = store.dead_letter_count()
        console.print(f"requeued {moved:,} operation(s); {left:,} dead letter(s) remain")
        if moved:
            console.print("the next `scrm run` sends them (records they refer to first; links left out are added)")

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
            adapters = ", ".join(
                [f"network:{n}" for n in i.networks] + [f"crm:{c}" for c in i.crms] + [f"state:{s}" for s in i.stores]
            )
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
        from scrm.engine.routing import rule_warnings

        host = make_host(strict=strict)
        setup_logging(False)
        cfg = config_or_exit(config, host, secrets=False)
        for unset in cfg.missing_env:
            console_err.print(
                f"[yellow]warning[/]: {config}: {unset} (fine for this check; `scrm run` and `scrm check` need it)",
                highlight=False,
            )
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
            warnings += rule_warnings(cfg.routing.rules, names, company_accounts=bool(cfg.company.accounts))
        for warning in warnings:
            console_err.print(f"[yellow]warning[/]: {config}: {escape(warning)}", highlight=False)
        console.print(
            f"[green]ok[/]: {config}: {len(enabled)} source(s) ({', '.join(enabled)}), CRM {cfg.crm.adapter}, "
            f"{len(cfg.listening.queries)} listening quer(ies), routing: {rules}",
            highlight=False,
        )
