"""Shared pieces of the CLI: plugin host, config loading, consoles, logging."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.highlighter import NullHighlighter
from rich.logging import RichHandler

from scrm.config import load_config
from scrm.logs import install_logging
from scrm.plugins import PluginHost
from scrm.store import StateStore, open_store
from scrm_core.config import Config
from scrm_core.errors import ConfigError

console = Console()
console_err = Console(stderr=True)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The scrm TOML file.", show_default=True)]
StrictOption = Annotated[bool, typer.Option("--strict", help="A plugin that fails to load is an error, not a warning.")]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log what the engine does.")]

_host: PluginHost | None = None


def make_host(*, strict: bool = False) -> PluginHost:
    """The process's plugin host (loaded once; ``--strict`` is decided at first use)."""
    global _host
    if _host is None:
        _host = PluginHost(strict=strict).load()
    return _host


@contextmanager
def state_store(config: Config, *, writer: bool = False) -> Iterator[StateStore]:
    """The configured state store, migrated, closed on exit (for commands that read or mend it).

    ``writer``: this command must be the store's only writer (erase): refused, naming the
    other process, while a ``scrm run`` or ``scrm serve`` holds the state."""
    store = open_store(config.state.url, config.base_dir, make_host().stores)
    try:
        if writer:
            store.claim_writer()
        store.migrate()
        yield store
    finally:
        store.close()


def setup_logging(verbose: bool) -> None:
    """Log to stderr, every record redacted and one line (:mod:`scrm_core.redaction`).

    No highlighting: rich's highlighter regexes take time quadratic in the length of some
    lines, and a log line may quote what a stranger sent.
    """
    install_logging()
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=console_err, show_time=False, show_path=False, highlighter=NullHighlighter())],
        force=True,
    )
    for name, error in make_host().load_errors.items():
        logging.getLogger("scrm.plugins").warning("plugin %s was skipped: %s", name, error)


def load_for_command(path: Path, *, secrets: bool = True) -> Config:
    """The config for a command that reads or mends a deployment: quiet logging, exit 2 on problems.

    ``secrets=False`` for commands that only read local state (``status``, ``dlq list``):
    they run where the CRM's secrets are not set."""
    host = make_host()
    setup_logging(False)
    return config_or_exit(path, host, secrets=secrets)


def config_or_exit(path: Path, host: PluginHost, *, secrets: bool = True) -> Config:
    """Load and validate the config; print every problem and exit 2 if there are any.

    ``secrets=False``: an unset ``${VAR}`` is not a problem (see ``load_config``)."""
    try:
        return load_config(
            path, networks=host.networks, crms=host.crms, check=host.config_problems, allow_missing_env=not secrets
        )
    except ConfigError as exc:
        console_err.print(f"[bold red]{exc.path}[/]: {len(exc.problems)} problem(s)", highlight=False)
        for problem in exc.problems:
            console_err.print(f"  {exc.path}: {problem}", highlight=False, markup=False)
        raise typer.Exit(2) from None
