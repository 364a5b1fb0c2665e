"""After ``scrm erase``, no table scrm wrote holds the person's account id, display name or a
phrase of their messages, except other people's messages that quote them (documented)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from scrm_core.testing.fakes import FakeServer
from tests.e2e import toml_inline
from tests.serving import scrm, start_serve, wait_until
from tests.webhook_kits import PAGE_ID, body_of, meta_kit

ALICE, ALICE_NAME = "4242424242", "Alice Liddell"
BOB, BOB_NAME = "5151515151", "Bob Stone"
PHRASES = ("whistles off-key", "wonderful spout", "lid came off")
T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _hits(db: Path, needles: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(table, column, value excerpt) of every cell that contains one of ``needles``."""
    con = sqlite3.connect(db)
    found: list[tuple[str, str, str]] = []
    try:
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = [c[1] for c in con.execute(f"PRAGMA table_info({table})")]
            for row in con.execute(f"SELECT * FROM {table}"):
                for column, value in zip(columns, row, strict=True):
                    text = bytes(value).decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                    if any(n.lower() in text.lower() for n in needles):
                        found.append((table, column, text[:400]))
    finally:
        con.close()
    return found


def _comment(comment_id: str, who: str, name: str, text: str, verb: str = "add", **more: Any) -> dict[str, Any]:
    value = {
        "item": "comment",
        "verb": verb,
        "post_id": f"{PAGE_ID}_1",
        "comment_id": comment_id,
        "parent_id": f"{PAGE_ID}_1",
        "from": {"id": who, "name": name},
        "message": text,
        "created_time": int(T.timestamp()),
    }
    return value | more


def _feed(*values: dict[str, Any], time: int | float = int(T.timestamp()) + 60) -> dict[str, Any]:
    changes = [{"field": "feed", "value": v} for v in values]
    return {"object": "page", "entry": [{"id": PAGE_ID, "time": time, "changes": changes}]}


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[Path, Any, Any]]:
    kit = meta_kit()
    fake = kit.fake
    fake.people |= {ALICE: (ALICE_NAME, ALICE_NAME), BOB: (BOB_NAME, BOB_NAME)}
    fake.add_post(PAGE_ID, "Our new kettle is out", T, post_id=f"{PAGE_ID}_1")
    for comment_id, who, text in (
        ("1_11", BOB, "first!"),
        ("1_12", ALICE, "my kettle whistles off-key since tuesday"),
        ("1_13", ALICE, "and the lid came off"),
        ("1_14", BOB, f"@{ALICE_NAME} agreed, mine too"),
    ):
        fake.add_comment(f"{PAGE_ID}_1", who, text, T, comment_id=comment_id)
    fake.add_post(ALICE, "My kettle review: wonderful spout", T, post_id=f"{PAGE_ID}_2")  # a visitor post
    with FakeServer(fake.app) as server:
        yield tmp_path, kit, server


@pytest.mark.slow
def test_erase_leaves_nothing_of_the_person_in_any_table(deployment: tuple[Path, Any, Any]) -> None:
    folder, kit, server = deployment
    (source, settings), _ = kit.sources(server.url)
    rules = (
        '[[routing.rules]]\nname = "all"\n'
        'actions = [{ kind = "case" }, { kind = "draft_reply", value = "Hi {author}, about {subject}" }]\n'
    )
    config = folder / "scrm.toml"
    config.write_text(
        '[state]\nurl = "sqlite:///state.db"\n[crm]\nadapter = "localcrm"\nsettings = { path = "crm.db" }\n'
        f'[[sources]]\nname = "{source}"\nadapter = "meta"\nsettings = {toml_inline(settings)}\n'
        f"[engine]\nbatch_window_ms = 0\n{rules}"
    )
    served = start_serve(config)
    db = folder / "state.db"
    try:
        deliveries = [
            _feed(_comment("1_12", ALICE, ALICE_NAME, "my kettle whistles off-key since tuesday")),
            _feed(_comment("1_12", ALICE, ALICE_NAME, "my kettle whistles off-key since tuesday!!", "edited")),
            _feed(_comment("1_14", BOB, BOB_NAME, f"@{ALICE_NAME} agreed, mine too")),
            _feed(_comment("1_13", ALICE, ALICE_NAME, "and the lid came off", "remove")),
            _feed(_comment("1_15", ALICE, ALICE_NAME, "one more thing", created_time=1e30)),  # a dead letter
        ]
        for document in deliveries:
            body = body_of(document)
            answer = httpx.post(
                f"{served.url}/webhooks/{source}", content=body, headers=kit.headers(source, body, ""), timeout=30
            )
            assert answer.status_code == 200, answer.text
            payload_id = answer.json()["stored"]
            wait_until(lambda payload_id=payload_id: _processed(db, source, payload_id), what=f"payload #{payload_id}")
    finally:
        assert served.stop() == 0, served.output()
    reply = scrm(
        "reply", f"facebook:{PAGE_ID}_1", f"Sorry {ALICE_NAME}, a new lid is on its way", "--to", "1_12",
        "-c", str(config), cwd=folder,
    )  # fmt: skip
    assert reply.returncode == 0, reply.stdout + reply.stderr
    needles = (ALICE, ALICE_NAME, *PHRASES)
    assert {t for t, _, _ in _hits(db, needles)} >= {"profiles", "webhook_inbox", "replies", "conversations"}

    erase = scrm("erase", f"facebook:{ALICE}", "--yes", "-c", str(config), cwd=folder)
    assert erase.returncode == 0, erase.stdout + erase.stderr
    said = " ".join((erase.stdout + erase.stderr).split())
    assert "not removed: webhook_inbox: 1 row(s) still contain text that matches them" in said, said

    # Only Bob's quote is left: his payload in the inbox, his message in the CRM.
    left = _hits(db, needles)
    assert [(t, c) for t, c, _ in left] == [("webhook_inbox", "body")], left
    assert "agreed, mine too" in left[0][2]
    crm_left = _hits(folder / "crm.db", needles)
    assert all(f"@{ALICE_NAME} agreed" in text for _, _, text in crm_left), crm_left
    audit = sqlite3.connect(db).execute("SELECT action, subject FROM audit_log ORDER BY id").fetchall()
    assert ("subject.erased", "(erased)") in audit and ("message.redacted", "(erased)") in audit
    # a second erase finds no one, and a run afterwards does not bring her back
    assert scrm("erase", f"facebook:{ALICE}", "--yes", "-c", str(config), cwd=folder).returncode == 1
    assert scrm("run", "--once", "-c", str(config), cwd=folder).returncode == 0
    assert [(t, c) for t, c, _ in _hits(db, needles)] == [("webhook_inbox", "body")]


def _processed(db: Path, source: str, payload_id: int) -> bool:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT cursor FROM checkpoints WHERE source = ?", (f"{source}@webhooks",)).fetchone()
    finally:
        con.close()
    return row is not None and int(row[0] or 0) >= payload_id
