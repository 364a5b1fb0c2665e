"""``scrm erase``: an erase request (right to erasure) for one person, in the CRM and in scrm."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from scrm.identity import person_of
from scrm.plugins import PluginHost
from scrm.store import ErasePlan
from scrm_core.config import Config
from scrm_core.errors import FatalError, ScrmError
from scrm_core.models import REDACTED_SUBJECT, CrmObject

from .common import ConfigOption, console, console_err, load_for_command, make_host, state_store


async def _erase_in_crm(config: Config, host: PluginHost, plan: ErasePlan) -> int:
    """Delete the person's records, then take their words out of other people's cases
    (a subject or draft reply made from one of their messages)."""
    from scrm.engine import build_crm
    from scrm.engine.mapping import case_redaction_op

    crm = build_crm(config, host)
    await crm.start()
    try:
        erased = await crm.erase(plan.records)
        ops = [
            case_redaction_op(cv, subject=cv.subject == REDACTED_SUBJECT, draft=cv.draft_reply is None)
            for cv in plan.derived
            if cv.needs_case
        ]
        for start in range(0, len(ops), crm.limits.batch_size(CrmObject.case)):
            results = await crm.apply(ops[start : start + crm.limits.batch_size(CrmObject.case)])
            refused = [f"{r.external_key}: {r.error}" for r in results if not r.ok]
            if refused:
                raise FatalError(f"the CRM refused to redact {len(refused)} case(s): {'; '.join(refused[:3])}")
        return erased
    finally:
        await crm.close()


def register(app: typer.Typer) -> None:
    @app.command("erase")
    def erase_command(
        key: Annotated[str, typer.Argument(help="Person key, or any profile key of the person.")],
        config: ConfigOption = Path("scrm.toml"),
        yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    ) -> None:
        """Erase a person: their contact, profiles, cases, leads and messages in the CRM, then in scrm.

        The CRM goes first: if it fails, nothing in scrm is touched and the same command
        can be run again (erasing is idempotent). Then the state store forgets the person
        in every table: their profiles, messages, threads, identity links, pending and
        failed CRM writes, the webhook payloads that name them, replies to them; the audit
        log keeps its entries about them, without the identifier. What cannot be removed is
        listed with the reason (other people's messages that quote them stay: they are
        those people's). Refused while `scrm run` or `scrm serve` holds the state.
        """
        cfg = load_for_command(config)
        with state_store(cfg, writer=True) as store:
            person = person_of(store, key)
            plan = store.erase_plan(person)
            total = sum(len(keys) for keys in plan.records.values())
            if not total:
                console_err.print(f"[bold red]error:[/] no person or profile {key!r} in the state store")
                raise typer.Exit(1)
            summary = ", ".join(f"{len(keys)} {obj.value}(s)" for obj, keys in plan.records.items() if keys)
            if not yes and not typer.confirm(f"erase {person}: {summary}?"):
                raise typer.Exit(1)
            try:
                erased = asyncio.run(_erase_in_crm(cfg, make_host(), plan))
            except ScrmError as exc:
                console_err.print(
                    f"[bold red]error:[/] the CRM did not erase: {exc.operator_message}. "
                    "Nothing was changed in scrm; run the command again.",
                    highlight=False,
                )
                raise typer.Exit(1) from None
            done = store.erase_person(person)
        console.print(f"erased {person}: {erased} CRM record(s) deleted; scrm forgot {summary}", highlight=False)
        removed = ", ".join(f"{table} {n}" for table, n in done.removed.items() if n)
        console.print(f"state store rows removed or scrubbed: {removed or 'none'}", highlight=False)
        for reason in done.kept:
            console_err.print(f"[yellow]not removed[/]: {escape(reason)}", highlight=False)
