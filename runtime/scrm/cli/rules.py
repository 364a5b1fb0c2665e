"""``scrm rules test``: which routing rule fires for a message, and why."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import TypeAdapter, ValidationError

from scrm_core.models import Event, Message, MessageCreated, MessageEdited

from .common import ConfigOption, console, console_err, load_for_command, make_host

if TYPE_CHECKING:  # imported where used: loading the CLI does not load the engine
    from scrm.engine.routing import RuleVerdict


def read_message(path: Path) -> Message:
    """A message from a JSON file: a bare message, or a message.created / message.edited event."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise typer.BadParameter(f"{path}: {exc}") from None
    try:
        if isinstance(data, dict) and "kind" in data:
            event = TypeAdapter(Event).validate_python(data)
            if not isinstance(event, MessageCreated | MessageEdited):
                raise typer.BadParameter(f"{path}: a {data['kind']} event carries no message to route")
            return event.message
        return Message.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False))
        raise typer.BadParameter(f"{path}: not a message: {problems}") from None


def _print(message: Message, verdicts: list[RuleVerdict], defaults: bool, addressed: str | None) -> None:
    sentiment = f"{message.sentiment.label} ({message.sentiment.score:+.2f})" if message.sentiment else "none"
    console.print(
        f"message {message.key}: language {message.language or 'unknown'}, sentiment {sentiment}, "
        f"labels {message.labels or '[]'}, queries {message.matched_queries or '[]'}, "
        f"addressed to the company: {f'yes ({addressed})' if addressed else 'no'}",
        highlight=False,
        markup=False,
    )
    if defaults:
        console.print("(no [[routing.rules]] in the config: the built-in defaults)", highlight=False, markup=False)
    for v in verdicts:
        mark = "FIRES" if v.fired else ("not reached" if not v.reached else "no")
        console.print(f"  {mark:>11}  {v.rule}", highlight=False, markup=False)
        for text, ok in v.conditions:
            console.print(f"{'':15}{'yes' if ok else 'NO '}  {text}", highlight=False, markup=False)
        if not v.conditions:
            console.print(f"{'':15}(no conditions: matches everything)", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    rules_app = typer.Typer(help="Routing rules.", no_args_is_help=True)
    app.add_typer(rules_app, name="rules")

    @rules_app.command("test")
    def rules_test(
        message_file: Annotated[Path, typer.Argument(help="JSON: a message, or a message.created event.")],
        config: ConfigOption = Path("scrm.toml"),
        as_json: Annotated[bool, typer.Option("--json", help="Print the verdicts as JSON.")] = False,
    ) -> None:
        """Run a message through understanding and routing; show which rule fires and why.

        The installed plugins (language, sentiment, listening, classification) run first,
        exactly as in ``scrm run``; nothing is written anywhere.
        """
        from scrm.engine.addressing import CompanyAccounts
        from scrm.engine.ingest import Ingestor
        from scrm.engine.routing import DEFAULT_RULES, compile_rules, explain

        cfg = load_for_command(config)
        message = read_message(message_file)
        asyncio.run(Ingestor(None, make_host().hooks_for(cfg), cfg).understand(message))  # type: ignore[arg-type]
        # The parent's author is not looked up here (nothing is read from the state store).
        addressed = "set by the adapter" if message.addressed_to_us else None
        addressed = addressed or CompanyAccounts(cfg.company.accounts).reason(message)
        message.addressed_to_us = addressed is not None
        rules = cfg.routing.rules
        verdicts = explain(
            compile_rules(DEFAULT_RULES if rules is None else rules, cfg.routing.business_hours), message
        )
        fired = [v.rule for v in verdicts if v.fired]
        if as_json:
            out = {
                "message": message.key,
                "language": message.language,
                "sentiment": message.sentiment.model_dump() if message.sentiment else None,
                "labels": message.labels,
                "matched_queries": message.matched_queries,
                "addressed_to_us": addressed,
                "fired": fired,
                "rules": [
                    {"rule": v.rule, "fired": v.fired, "reached": v.reached, "conditions": v.conditions}
                    for v in verdicts
                ],
            }
            typer.echo(json.dumps(out, indent=2))
        else:
            _print(message, verdicts, rules is None, addressed)
            if not fired:
                console_err.print("no rule fires: the message is only logged", highlight=False)
