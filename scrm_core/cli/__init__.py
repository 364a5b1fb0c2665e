"""The ``scrm`` command line (typer + rich).

Core commands live in this package; plugins add theirs through ``scrm_register_commands``.
Errors meant for the operator are printed plainly and end with a non-zero exit code;
``SCRM_RAISE_ERRORS=1`` shows the traceback instead (for bug reports).
"""

from __future__ import annotations

import os
import sys

import typer

from ..errors import ScrmError
from . import check, demo, erase, identity, inspect, intent, new, preview, reply, rules, run, serve, understand
from .common import console_err, make_host

app = typer.Typer(
    name="scrm", help="Listen where customers talk; keep the CRM you already run current.", no_args_is_help=True
)
for module in (run, preview, check, serve, reply, demo, inspect, rules, identity, erase, understand, intent, new):
    module.register(app)


def main() -> None:
    host = make_host(strict="--strict" in sys.argv)
    host.register_commands(app)
    try:
        app()
    except ScrmError as exc:
        if os.environ.get("SCRM_RAISE_ERRORS"):
            raise
        console_err.print(f"[bold red]error:[/] {exc.operator_message}", highlight=False)
        sys.exit(1)
