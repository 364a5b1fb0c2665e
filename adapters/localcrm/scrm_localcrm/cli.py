"""``scrm localcrm ...``: look inside the embedded CRM, and write a reply as an agent would."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from scrm_core.errors import ScrmError

from .adapter import LocalCrm
from .db import TABLES, LocalCrmReader, add_label_correction, add_reply

__all__ = ["DEFAULT_DB", "build_app", "resolve_db"]

DEFAULT_DB = Path("scrm-demo/crm.db")
_TRUNCATE = 80

# Short names people type -> tables.
_ALIASES = {
    **{t: t for t in TABLES},
    **{t.rstrip("s"): t for t in TABLES if t.endswith("s")},
    "replies": "outbound_replies",
    "reply": "outbound_replies",
    "labels": "label_corrections",
    "corrections": "label_corrections",
}
_LABELS = {"outbound_replies": "replies", "label_corrections": "labels"}
# The columns worth a glance per table; `show TABLE` prints these, newest first.
_DISPLAY: dict[str, tuple[str, ...]] = {
    "contacts": ("id", "name", "email", "external_key"),
    "profiles": ("id", "handle", "network", "followers", "contact_id", "external_key"),
    "cases": ("id", "subject", "status", "priority", "contact_id", "conversation_key"),
    "leads": ("id", "name", "status", "network", "contact_id"),
    "messages": ("id", "created_at", "direction", "profile_id", "case_id", "text"),
    "outbound_replies": ("id", "status", "conversation_key", "in_reply_to", "text"),
    "label_corrections": ("id", "crm_created_at", "object", "external_key", "label", "corrected_by"),
}

_ONE_LINE = frozenset(
    {"id", "created_at", "status", "priority", "direction", "followers", "network", "message_count", "email"}
    | {"profile_id", "contact_id", "case_id", "in_reply_to"}
)
_HEADERS = {
    "message_count": "msgs",
    "conversation_key": "conversation",
    "profile_id": "profile",
    "contact_id": "contact",
    "case_id": "case",
}

DbOption = Annotated[Path | None, typer.Option("--db", help="The localcrm SQLite file.")]
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="An scrm config whose [crm] is localcrm.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _cell(value: Any, column: str = "") -> str:
    if value is None:
        return ""
    if column.endswith("_at") and isinstance(value, str):
        return value[:16].replace("T", " ")  # to the minute: enough to tell records apart
    text = str(value).replace("\n", " ")
    return text if len(text) <= _TRUNCATE else text[: _TRUNCATE - 1] + "…"


def resolve_db(db: Path | None, config: Path | None) -> Path:
    """The database to open: ``--db``, else the config's ``[crm.settings] path``, else the demo's."""
    if db is not None and config is not None:
        raise _fail("give --db or --config, not both", 2)
    if db is not None:
        return db
    if config is not None:
        from scrm.cli import load_config

        try:  # the sources' settings are not checked: only [crm] is read here
            cfg = load_config(config, allow_missing_env=True)
        except ScrmError as e:
            raise _fail(e.operator_message, 2) from e
        if cfg.crm.adapter != LocalCrm.name:
            raise _fail(
                f"{config}: the CRM adapter is {cfg.crm.adapter!r}, not 'localcrm'; "
                "`scrm localcrm` only reads the embedded CRM",
                2,
            )
        try:
            settings = LocalCrm.Settings.model_validate(cfg.crm.settings)
        except ValidationError as e:
            raise _fail(f"{config}: [crm.settings] is not valid for localcrm:\n{e}", 2) from e
        path = Path(settings.path).expanduser()
        return path if path.is_absolute() else Path(cfg.base_dir) / path
    if DEFAULT_DB.exists():
        return DEFAULT_DB
    raise _fail(f"which CRM? pass --db PATH or -c CONFIG ({DEFAULT_DB} does not exist here)", 2)


def _open(path: Path) -> LocalCrmReader:
    try:
        return LocalCrmReader(path)
    except FileNotFoundError as e:
        raise _fail(f"{e}; run scrm once with this CRM to create it, or check the path") from e


def _rows_table(title: str, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in columns:
        header = _HEADERS.get(col, col)
        # Short values (ids, times, statuses) stay on one line; text and keys wrap.
        wraps = col not in _ONE_LINE
        table.add_column(header, no_wrap=not wraps, overflow="fold", min_width=12 if wraps else min(len(header), 8))
    for row in rows:
        table.add_row(*(_cell(row.get(col), col) for col in columns))
    return table


def build_app() -> typer.Typer:
    app = typer.Typer(help="The embedded CRM: look inside, write replies, correct labels.", no_args_is_help=True)

    @app.command()
    def show(
        table: Annotated[
            str | None, typer.Argument(help="contacts, profiles, cases, leads, messages or replies.")
        ] = None,
        db: DbOption = None,
        config: ConfigOption = None,
        limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Rows to print with TABLE.")] = 20,
    ) -> None:
        """Counts and the latest cases and messages; with TABLE, that table's last rows."""
        path = resolve_db(db, config)
        console = Console()
        with _open(path) as crm:
            if table is not None:
                name = _ALIASES.get(table.lower())
                if name is None:
                    raise _fail(
                        f"unknown table {table!r}; choose from: {', '.join(_LABELS.get(t, t) for t in TABLES)}", 2
                    )
                console.print(
                    _rows_table(f"{_LABELS.get(name, name)} (last {limit})", crm.rows(name, limit), _DISPLAY[name])
                )
                return
            console.print(f"localcrm [bold]{path}[/bold]", highlight=False)
            counts = Table()
            counts.add_column("table")
            counts.add_column("rows", justify="right")
            for name, n in crm.counts().items():
                counts.add_row(_LABELS.get(name, name), f"{n:,}")
            console.print(counts)
            console.print(
                _rows_table(
                    "recent cases",
                    crm.recent_cases(5),
                    ("id", "subject", "status", "priority", "message_count", "conversation_key"),
                )
            )
            console.print(
                _rows_table(
                    "recent messages", crm.recent_messages(5), ("id", "created_at", "author", "direction", "text")
                )
            )

    @app.command()
    def reply(
        key: Annotated[str, typer.Argument(help="A case (external key or id) or a conversation key.")],
        text: Annotated[str, typer.Argument(help="The reply.")],
        db: DbOption = None,
        config: ConfigOption = None,
        in_reply_to: Annotated[
            str | None, typer.Option(help="Network id of the message to answer; default: the latest inbound one.")
        ] = None,
    ) -> None:
        """Write a reply in the CRM as an agent would; scrm sends it on its next poll."""
        path = resolve_db(db, config)
        if not path.exists():
            raise _fail(f"no localcrm database at {path}")
        try:
            reply_id = add_reply(path, key, text, in_reply_to=in_reply_to)
        except (LookupError, ValueError) as e:
            raise _fail(str(e)) from e
        Console().print(f"reply #{reply_id} is pending in {path}; scrm sends it on its next poll")

    @app.command()
    def label(
        key: Annotated[
            str,
            typer.Argument(
                help="A message (scrm:<network>:<id> or <network>:<id>), or a case (key, id or conversation key)."
            ),
        ],
        label: Annotated[
            str,
            typer.Argument(help="complaint, question, purchase, praise, spam, none, or namespace:label of your own."),
        ],
        db: DbOption = None,
        config: ConfigOption = None,
        by: Annotated[str | None, typer.Option("--by", help="Who corrected it (kept with the correction).")] = None,
    ) -> None:
        """Correct a label as an agent would; scrm learns from it (`scrm intent train`)."""
        path = resolve_db(db, config)
        if not path.exists():
            raise _fail(f"no localcrm database at {path}")
        try:
            correction_id = add_label_correction(path, key, label, by=by)
        except (LookupError, ValueError) as e:
            raise _fail(str(e)) from e
        Console().print(
            f"correction #{correction_id} recorded in {path}; scrm reads it back on its next poll "
            "and learns from it with `scrm intent train`",
            highlight=False,
        )

    return app
