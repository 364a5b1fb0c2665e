"""``scrm understand [-c FILE] MESSAGES.jsonl``: what the installed plugins make of a sample of posts.

The engine's own understanding step (:class:`scrm.engine.understand.Understander`),
with the installed plugins, the config's listening queries and the deployment's trained
models when ``-c`` is given: how an operator checks the classifier on their own traffic
before trusting it. Nothing is sent, and nothing is stored beyond the state store's
schema (brought up to date, as every command that opens it does).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from pydantic import ValidationError

from scrm.plugins import PluginHost
from scrm.store import AsyncStore, StateStore, open_store
from scrm_core.config import Config
from scrm_core.models import Message, SocialProfile

from .common import console_err, load_for_command, make_host

_FIELDS = frozenset({"id", "text", "network", "author", "language", "created_at"})


class _BadLine(ValueError):
    pass


def _message(row: object, n: int) -> Message:
    if not isinstance(row, dict):
        raise _BadLine("expected a JSON object")
    unknown = set(row) - _FIELDS
    if unknown:
        raise _BadLine(f"unknown field(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_FIELDS))}")
    text = row.get("text")
    if not isinstance(text, str):
        raise _BadLine("'text' is missing or not a string")
    network = str(row.get("network") or "sample")
    author = str(row.get("author") or "someone")
    try:
        return Message(
            network=network,
            id=str(row.get("id") or n),
            author=SocialProfile(network=network, account_id=author, handle=author),
            text=text,
            created_at=row.get("created_at") or datetime.now(UTC),
            language=row.get("language") or None,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False))
        raise _BadLine(problems) from None


def _lines(source: TextIO) -> Iterator[tuple[int, str]]:
    for n, line in enumerate(source, 1):
        if line.strip():
            yield n, line


def _result(message: Message, stated_language: bool) -> dict[str, Any]:
    sentiment = message.sentiment
    return {
        "id": message.id,
        "network": message.network,
        "language": message.language,
        "language_from": ("network" if stated_language else "detected") if message.language else None,
        "sentiment": {"score": sentiment.score, "label": sentiment.label} if sentiment else None,
        "labels": {label: message.label_confidence.get(label) for label in message.labels},
        "matched_queries": message.matched_queries,
    }


async def _run(source: TextIO, name: str, host: PluginHost, cfg: Config, store: AsyncStore | None) -> int:
    from scrm.engine.learning import load_models
    from scrm.engine.understand import Understander

    if store is not None:
        await store.call(StateStore.migrate)
        await load_models(store, host.classifiers)
    understander = Understander(host.hooks_for(cfg), {q.name: q.query for q in cfg.listening.queries})
    bad = 0
    out = sys.stdout
    for n, line in _lines(source):
        try:
            message = _message(json.loads(line), n)
        except (json.JSONDecodeError, _BadLine) as exc:
            bad += 1
            console_err.print(f"{name}:{n}: skipped: {exc}", highlight=False, markup=False, soft_wrap=True)
            continue
        stated = message.language is not None
        await understander.understand(message)
        out.write(json.dumps(_result(message, stated), ensure_ascii=False) + "\n")
    return bad


def register(app: typer.Typer) -> None:
    @app.command()
    def understand(
        messages: Annotated[
            Path,
            typer.Argument(
                help="JSON lines, one message each: text (required), and optionally id, network, author, "
                "language, created_at. '-' reads standard input."
            ),
        ],
        config: Annotated[
            Path | None,
            typer.Option(
                "--config",
                "-c",
                help="Use this deployment's listening queries and trained models (nothing is written).",
            ),
        ] = None,
    ) -> None:
        """Print what the installed plugins make of each message: language, sentiment, labels with
        confidence, matched queries (one JSON line per message)."""
        host = make_host()
        cfg = Config.model_construct(sources=[])  # no deployment: the defaults (no queries, the shipped models)
        store: AsyncStore | None = None
        if config is not None:
            cfg = load_for_command(config)
            store = AsyncStore(lambda: open_store(cfg.state.url, cfg.base_dir, host.stores))

        async def main(source: TextIO, name: str) -> int:
            try:
                return await _run(source, name, host, cfg, store)
            finally:
                if store is not None:
                    await store.close()

        if str(messages) == "-":
            bad = asyncio.run(main(sys.stdin, "<stdin>"))
        else:
            if not messages.is_file():
                console_err.print(f"[bold red]error:[/] {messages}: no such file", highlight=False)
                raise typer.Exit(2)
            with messages.open(encoding="utf-8") as fh:
                bad = asyncio.run(main(fh, str(messages)))
        if bad:
            raise typer.Exit(1)
