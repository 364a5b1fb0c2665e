"""``scrm reply`` (answer a conversation from the command line) and ``scrm replies ...``."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from scrm.store import AuditEntry, NewReply, ReplyRecord, ReplyStatus, StateStore, StoreInUse
from scrm_core.adapters import NetworkCapability
from scrm_core.config import Config

from .common import ConfigOption, console, console_err, load_for_command, make_host, state_store


def _fail(message: str) -> typer.Exit:
    console_err.print(f"[bold red]error:[/] {message}", highlight=False, markup=False)
    return typer.Exit(1)


def _check_can_reply(config: Config, network: str) -> None:
    from scrm.engine.runner import build_source

    host = make_host()
    for source in config.sources:
        capable = source.enabled and NetworkCapability.reply in host.networks[source.adapter].capabilities
        if capable and build_source(config, host, source).network == network:
            return
    raise _fail(
        f"no enabled source can send replies on {network!r}: configure a [[sources]] entry for it "
        "whose adapter can reply"
    )


def _send_queued(config: Config) -> None:
    """Send every due reply and flush the outbox (an engine run that does not listen). If a
    `scrm serve` or `scrm run` holds the state, it sends the reply itself at its next look."""
    from scrm.engine import Engine

    try:
        asyncio.run(Engine(config, make_host()).run(follow=False, listen=False))
    except StoreInUse as exc:
        console.print(f"queued; the scrm process that holds the state sends it: {exc.owner}", highlight=False)


def _outcome(reply: ReplyRecord) -> None:
    if reply.status is ReplyStatus.sent:
        console.print(f"reply {reply.id} sent: network id {reply.network_message_id}", highlight=False)
    elif reply.status is ReplyStatus.held:
        console.print(
            f"reply {reply.id} is held for approval by a plugin; send it with: scrm replies approve {reply.id}",
            highlight=False,
        )
    elif reply.status in (ReplyStatus.refused, ReplyStatus.failed):
        raise _fail(f"reply {reply.id} {reply.status.value}: {reply.error}")
    else:
        console.print(
            f"reply {reply.id} is not sent yet ({reply.error or reply.status.value}); it goes out, once, with the "
            "next `scrm run` or `scrm serve`",
            highlight=False,
        )


def _find(store: StateStore, reply_id: int) -> ReplyRecord:
    try:
        return store.reply(reply_id)
    except KeyError:
        raise _fail(f"there is no reply #{reply_id} (see: scrm replies list)") from None


def register(app: typer.Typer) -> None:
    @app.command("reply")
    def reply_command(
        conversation: Annotated[str, typer.Argument(help="Conversation key, e.g. mastodon:109876 (its root).")],
        text: Annotated[str, typer.Argument(help="The reply.")],
        to: Annotated[
            str | None, typer.Option("--to", help="Network id of the message to answer (default: the latest inbound).")
        ] = None,
        config: ConfigOption = Path("scrm.toml"),
    ) -> None:
        """Answer a conversation on its network; sent once, then synced to the CRM as outbound."""
        cfg = load_for_command(config)
        if not text.strip():
            raise _fail("the reply text is empty")
        with state_store(cfg) as store:
            found = store.conversations([conversation]).get(conversation)
            if found is None:
                raise _fail(f"there is no conversation {conversation!r} in the state store")
            _check_can_reply(cfg, found.network)
            target = to or found.last_inbound_id or found.root_id
            queued = NewReply(
                idempotency_key=f"cli-{uuid.uuid4().hex}",
                origin="cli",
                conversation_key=conversation,
                in_reply_to=target,
                text=text,
            )
            (reply,) = store.enqueue_replies([queued])
        _send_queued(cfg)
        with state_store(cfg) as store:
            _outcome(store.reply(reply.id))

    replies = typer.Typer(help="Replies going out: list, approve held ones, cancel.", no_args_is_help=True)
    app.add_typer(replies, name="replies")

    @replies.command("list")
    def list_command(
        config: ConfigOption = Path("scrm.toml"),
        status: Annotated[list[ReplyStatus] | None, typer.Option("--status", help="Only these (repeatable).")] = None,
        limit: Annotated[int, typer.Option(min=1)] = 100,
    ) -> None:
        """Replies with their status, oldest first."""
        cfg = load_for_command(config)
        with state_store(cfg) as store:
            rows = store.replies(status or [], limit=limit)
        table = Table(title="replies")
        for column in ("#", "status", "origin", "conversation", "to", "tries", "network id", "text / reason"):
            table.add_column(column, overflow="fold")
        for r in rows:
            note = r.error if r.status in (ReplyStatus.refused, ReplyStatus.failed) else r.text
            table.add_row(
                str(r.id),
                r.status.value,
                r.origin,
                r.conversation_key,
                r.in_reply_to,
                str(r.attempts),
                r.network_message_id or "",
                note or "",
            )
        console.print(table)

    @replies.command("approve")
    def approve_command(
        reply_id: Annotated[int, typer.Argument(help="The held reply's number.")],
        config: ConfigOption = Path("scrm.toml"),
    ) -> None:
        """Approve a held reply and send it now (plugins are not asked again)."""
        cfg = load_for_command(config)
        with state_store(cfg) as store:
            reply = _find(store, reply_id)
            if reply.status is not ReplyStatus.held:
                raise _fail(f"reply #{reply_id} is {reply.status.value}, not held")
            store.update_reply(
                reply_id,
                ReplyStatus.pending,
                approved=True,
                audit=[AuditEntry("reply.approved", reply.conversation_key, f"reply {reply_id} approved")],
            )
        _send_queued(cfg)
        with state_store(cfg) as store:
            _outcome(store.reply(reply_id))

    @replies.command("cancel")
    def cancel_command(
        reply_id: Annotated[int, typer.Argument(help="The reply's number.")],
        config: ConfigOption = Path("scrm.toml"),
    ) -> None:
        """Cancel a reply that has not gone out (pending or held)."""
        cfg = load_for_command(config)
        with state_store(cfg) as store:
            reply = _find(store, reply_id)
            if reply.status not in (ReplyStatus.pending, ReplyStatus.held):
                raise _fail(f"reply #{reply_id} is {reply.status.value}: only pending or held replies can be cancelled")
            store.update_reply(
                reply_id,
                ReplyStatus.refused,
                error="cancelled by the operator",
                audit=[AuditEntry("reply.cancelled", reply.conversation_key, f"reply {reply_id} cancelled")],
            )
        console.print(f"reply {reply_id} cancelled", highlight=False)
