"""The ``scrm`` command line (typer + rich), and the kit a plugin's commands use.

Core commands live in this package; plugins add theirs through ``scrm_register_commands``
(``scrm demo`` comes with scrm-replay, ``scrm localcrm`` with scrm-localcrm). Errors meant
for the operator are printed plainly and end with a non-zero exit code;
``SCRM_RAISE_ERRORS=1`` shows the traceback instead (for bug reports).

The names in ``__all__`` are the public command kit; a plugin's command is written with
them as the core's own are::

    from scrm.cli import ConfigOption, config_or_exit, console, make_host

    @hookimpl
    def scrm_register_commands(cli):
        @cli.command("hello")
        def hello(config: ConfigOption = Path("scrm.toml")) -> None:
            cfg = config_or_exit(config, make_host())  # problems printed, exit 2
            console.print(f"{len(cfg.sources)} source(s)")

The modules of this package are private: import from ``scrm.cli`` only.
"""

from __future__ import annotations

import os
import sys

import typer
from rich.markup import escape

from scrm.config import load_config
from scrm.logs import install_logging, install_streams
from scrm_core.config import Config
from scrm_core.errors import ScrmError
from scrm_core.redaction import printable, redacted_traceback

from . import check, erase, identity, inspect, intent, new, preview, reply, rules, run, serve, understand
from .common import (
    ConfigOption,
    StrictOption,
    VerboseOption,
    config_or_exit,
    console,
    console_err,
    load_for_command,
    make_host,
    setup_logging,
    state_store,
)
from .fleet import fleet_report, print_fleet
from .run import summary_table, sync

__all__ = [
    "Config",
    "ConfigOption",
    "StrictOption",
    "VerboseOption",
    "app",
    "config_or_exit",
    "console",
    "console_err",
    "fleet_report",
    "load_config",
    "load_for_command",
    "main",
    "make_host",
    "print_fleet",
    "setup_logging",
    "state_store",
    "summary_table",
    "sync",
]

app = typer.Typer(
    name="scrm",
    help="Listen where customers talk; keep the CRM you already run current.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals hold tokens in headers; main() prints errors itself
)
for module in (run, preview, check, serve, reply, inspect, rules, identity, erase, understand, intent, new):
    module.register(app)


def main() -> None:
    # Everything the process prints or logs goes through the redaction layer, tracebacks too.
    install_streams()
    install_logging()
    host = make_host(strict="--strict" in sys.argv)
    host.register_commands(app)
    try:
        app()
    except Exception as exc:
        if os.environ.get("SCRM_RAISE_ERRORS"):
            sys.stderr.write(redacted_traceback(exc))
            sys.exit(1)
        if isinstance(exc, ScrmError):
            console_err.print(f"[bold red]error:[/] {escape(exc.operator_message)}", highlight=False)
        else:  # a bug: say so plainly; the traceback is one variable away
            console_err.print(
                f"error: unexpected {type(exc).__name__}: {printable(str(exc), 500)} "
                "(set SCRM_RAISE_ERRORS=1 for the traceback, and please report it)",
                highlight=False,
                markup=False,
            )
        sys.exit(1)
