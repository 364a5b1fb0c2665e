"""``scrm identity ...`` (links between profiles, on evidence) and ``scrm customer show``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from scrm import identity
from scrm.store import IdentityLink, LinkStatus

from .common import ConfigOption, console, console_err, load_for_command, make_host, state_store


def _links_table(title: str, links: list[IdentityLink]) -> Table:
    table = Table(title=title)
    for column in ("#", "profile", "person", "status", "verified", "evidence"):
        table.add_column(column, overflow="fold")
    for x in links:
        table.add_row(str(x.id), x.profile_key, x.person_key, x.status.value, "yes" if x.verified else "no", x.evidence)
    return table


def _fail(message: str) -> typer.Exit:
    console_err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(1)


def register(app: typer.Typer) -> None:
    ident = typer.Typer(help="Which profiles are one person: scan for evidence, link, undo.", no_args_is_help=True)
    app.add_typer(ident, name="identity")

    @ident.command("scan")
    def scan_command(config: ConfigOption = Path("scrm.toml")) -> None:
        """Look for evidence across stored profiles; link or suggest as [identity] policies say."""
        cfg = load_for_command(config)
        with state_store(cfg) as store:
            result = asyncio.run(identity.scan(store, make_host().hooks_for(cfg), cfg))
        console.print(
            f"{result.profiles:,} profile(s) scanned: {len(result.linked)} linked on verified evidence, "
            f"{len(result.suggested)} new suggestion(s)",
            highlight=False,
        )
        if result.suggested:
            console.print("review them with: scrm identity suggestions", highlight=False)

    @ident.command("suggestions")
    def suggestions_command(
        config: ConfigOption = Path("scrm.toml"),
        show_all: Annotated[bool, typer.Option("--all", help="Every link and suggestion, any status.")] = False,
    ) -> None:
        """Suggested links waiting for an operator (accept with `link`, refuse with `reject`)."""
        cfg = load_for_command(config)
        with state_store(cfg) as store:
            links = store.identity_links(None if show_all else LinkStatus.suggested)
        console.print(_links_table("identity links" if show_all else "suggested links", links))

    @ident.command("link")
    def link_command(
        profile: Annotated[str, typer.Argument(help="Profile key, e.g. mastodon:109...")],
        person: Annotated[str, typer.Argument(help="Person key, or a profile key of that person.")],
        evidence: Annotated[str, typer.Option(help="Why: what shows these are one person (stored with the link).")],
        config: ConfigOption = Path("scrm.toml"),
    ) -> None:
        """Link a profile to a person. Stored with its evidence; undo with `unlink`."""
        cfg = load_for_command(config)
        with state_store(cfg) as store:
            target = identity.person_of(store, person)
            try:
                made = identity.link(store, profile, target, evidence, verified=True)
            except KeyError as exc:
                raise _fail(str(exc.args[0])) from None
        console.print(
            f"linked {made.profile_key} to {made.person_key} (link #{made.id}); undo: scrm identity unlink {made.id}"
        )

    @ident.command("unlink")
    def unlink_command(link_id: int, config: ConfigOption = Path("scrm.toml")) -> None:
        """Undo a link: the profile goes back to the person it had before."""
        cfg = load_for_command(config)
        with state_store(cfg) as store:
            try:
                undone = identity.undo(store, link_id)
            except (KeyError, ValueError) as exc:
                raise _fail(str(exc.args[0])) from None
        console.print(f"link #{undone.id} undone: {undone.profile_key} belongs to {undone.previous_person_key} again")

    @ident.command("reject")
    def reject_command(link_id: int, config: ConfigOption = Path("scrm.toml")) -> None:
        """Refuse a suggestion; the same pair is not suggested again."""
        cfg = load_for_command(config)
        with state_store(cfg) as store:
            try:
                store.reject_suggestion(link_id)
            except (KeyError, ValueError) as exc:
                raise _fail(str(exc.args[0])) from None
        console.print(f"suggestion #{link_id} rejected")

    customer = typer.Typer(help="One person across networks.", no_args_is_help=True)
    app.add_typer(customer, name="customer")

    @customer.command("show")
    def show_command(
        key: Annotated[str, typer.Argument(help="Person key or any of the person's profile keys.")],
        config: ConfigOption = Path("scrm.toml"),
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """The 360° view: every profile, conversation, case and lead of one person."""
        cfg = load_for_command(config)
        with state_store(cfg) as store:
            view = store.person(identity.person_of(store, key))
        if not view.profiles:
            raise _fail(f"no person or profile {key!r} in the state store")
        cases = [c for c in view.conversations if c.needs_case]
        leads = [p.profile.key for p in view.profiles if f"lead:scrm:{p.profile.key}" in view.crm_ids]
        if as_json:
            out = {
                "person": view.person_key,
                "profiles": [p.profile.model_dump(mode="json") for p in view.profiles],
                "conversations": [c.model_dump(mode="json") | {"key": c.key} for c in view.conversations],
                "cases": [c.key for c in cases],
                "leads": leads,
                "messages": view.message_count,
                "links": [
                    {
                        "id": x.id,
                        "profile": x.profile_key,
                        "person": x.person_key,
                        "status": x.status.value,
                        "evidence": x.evidence,
                    }
                    for x in view.links
                ],
                "crm_ids": view.crm_ids,
            }
            typer.echo(json.dumps(out, indent=2))
            return
        console.print(f"[bold]{view.person_key}[/]: {len(view.profiles)} profile(s), {view.message_count} message(s)")
        profiles = Table(title="profiles")
        for column in ("profile", "handle", "name", "followers", "CRM id"):
            profiles.add_column(column)
        for p in view.profiles:
            crm_id = view.crm_ids.get(f"profile:scrm:{p.profile.key}", "")
            profiles.add_row(
                p.profile.key,
                p.profile.handle or "",
                p.profile.display_name or "",
                str(p.profile.followers or 0),
                crm_id,
            )
        console.print(profiles)
        threads = Table(title="conversations")
        for column in ("conversation", "messages", "last", "case", "priority", "labels"):
            threads.add_column(column, overflow="fold")
        for c in sorted(view.conversations, key=lambda c: str(c.last_at or c.first_at or ""), reverse=True):
            threads.add_row(
                c.key,
                str(c.message_count),
                str(c.last_at or ""),
                "yes" if c.needs_case else "",
                c.priority or "",
                ", ".join(c.labels),
            )
        console.print(threads)
        console.print(f"cases: {len(cases)}    leads: {len(leads)}", highlight=False)
        if view.links:
            console.print(_links_table("identity links", view.links))
