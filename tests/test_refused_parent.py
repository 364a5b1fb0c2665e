"""A record the CRM refuses for good dead-letters that record alone; its children are written without the link.

The persona (Salesforce) or contact (HubSpot) of one author is refused by the CRM (a
validation rule; an email another contact holds). Its messages must still reach the CRM
at once, without that reference and without back-off retries, the refusal must be in the
dead-letter queue as permanent with its code and fix, and the missing links must be
added by themselves once the parent is repaired and `scrm dlq retry` runs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from scrm.config import load_config
from scrm.engine import Engine, RunStats
from scrm.plugins import PluginHost
from scrm.store import open_store

from tests.crm_checks import KEY, make_crm
from tests.e2e import write_config

REFUSED, FINE = "refused-author", "fine-author"


def _stream(path: Path, emails: dict[str, str] | None = None) -> Path:
    lines = []
    for n in range(6):
        account = REFUSED if n % 2 == 0 else FINE
        author = {"network": "t", "account_id": account, "handle": account, "display_name": f"Name {account}"}
        if emails and account in emails:
            author["email"] = emails[account]
        message = {
            "network": "t",
            "id": f"m{n}",
            "author": author,
            "text": f"post {n}",
            "created_at": "2026-01-01T00:00:00Z",
        }
        lines.append(orjson.dumps({"kind": "message.created", "message": message}) + b"\n")
    path.write_bytes(b"".join(lines))
    return path


def _run(config: Path) -> RunStats:
    host = PluginHost(env={"SCRM_LOAD_PLUGINS": "replay,hubspot,salesforce"}).load()
    cfg = load_config(config, env={}, networks=host.networks, crms=host.crms)
    return asyncio.run(Engine(cfg, host, preflight=True).run(follow=False, handle_signals=False))


def _letters(folder: Path) -> list[object]:
    store = open_store("sqlite:///state.db", folder)
    try:
        store.migrate()
        return list(store.dead_letters())
    finally:
        store.close()


def _requeue(folder: Path) -> int:
    store = open_store("sqlite:///state.db", folder)
    try:
        return store.requeue_dead_letters()
    finally:
        store.close()


def test_a_refused_persona_leaves_its_posts_written_and_linked_after_the_repair(tmp_path: Path) -> None:
    crm = make_crm("salesforce")
    try:
        crm.fake.add_validation_rule(
            "SocialPersona", "Personas need a verified account", lambda r: r.get("ExternalId") == REFUSED
        )
        config = write_config(tmp_path, [_stream(tmp_path / "t.ndjson")], crm="salesforce", crm_settings=crm.settings())
        stats = _run(config)
        assert stats.sink.record_retries == 0, "a deterministic refusal is not retried with back-off"
        posts = {p["ExternalPostId"]: p for p in crm.fake.records("SocialPost")}
        assert len(posts) == 6, "every message is written, whoever's persona was refused"
        assert all(posts[f"m{n}"]["PersonaId"] is None for n in (0, 2, 4))
        assert all(posts[f"m{n}"]["PersonaId"] for n in (1, 3, 5))
        (letter,) = _letters(tmp_path)
        assert letter.code == "FIELD_CUSTOM_VALIDATION_EXCEPTION" and letter.retryable is False  # type: ignore[attr-defined]
        assert "Validation Rules" in letter.fix  # type: ignore[attr-defined]
        assert stats.sink.links_deferred == 3

        crm.fake.validation_rules["SocialPersona"].clear()  # an admin relaxes the rule
        assert _requeue(tmp_path) == 1
        _run(config)
        persona = crm.fake.find("SocialPersona", KEY, f"scrm:t:{REFUSED}")
        assert persona is not None
        posts = {p["ExternalPostId"]: p for p in crm.fake.records("SocialPost")}
        assert all(posts[f"m{n}"]["PersonaId"] == persona["Id"] for n in (0, 2, 4)), "the links were added"
        assert _letters(tmp_path) == []
    finally:
        crm.server.stop()


@pytest.mark.parametrize("crm_name", ["hubspot"])
def test_a_refused_contact_leaves_its_notes_written_and_associated_after_the_repair(
    tmp_path: Path, crm_name: str
) -> None:
    crm = make_crm(crm_name)
    try:
        holder = crm.fake.create("contacts", {"email": "taken@example.org", "firstname": "Someone"})
        stream = _stream(tmp_path / "t.ndjson", emails={REFUSED: "taken@example.org"})
        config = write_config(tmp_path, [stream], crm=crm_name, crm_settings=crm.settings())
        stats = _run(config)
        assert stats.sink.record_retries == 0
        notes = {n["scrm_message_id"]: n for n in crm.fake.records("notes")}
        assert len(notes) == 6
        refused_notes = [crm.fake.find("notes", "scrm_message_id", f"m{n}") for n in (0, 2, 4)]
        assert all(n is not None for n in refused_notes)
        for n in (0, 2, 4):
            note_id = notes[f"m{n}"]["hs_object_id"]
            assert crm.fake.associations("notes", note_id, "contacts") == {}
        letters = _letters(tmp_path)
        assert {getattr(letter, "code", None) for letter in letters} == {"CONFLICT"}
        assert all(getattr(letter, "retryable", True) is False for letter in letters)

        crm.fake.archive("contacts", holder)  # the duplicate is merged away in HubSpot
        assert _requeue(tmp_path) == len(letters)
        _run(config)
        contact = crm.fake.find("contacts", "scrm_key", f"scrm:t:{REFUSED}")
        assert contact is not None and contact["scrm_profile_key"] == f"scrm:t:{REFUSED}"
        for n in (0, 2, 4):
            note_id = notes[f"m{n}"]["hs_object_id"]
            assert set(crm.fake.associations("notes", note_id, "contacts")) == {contact["hs_object_id"]}
        assert crm.fake.count("notes") == 6
        assert _letters(tmp_path) == []
    finally:
        crm.server.stop()
