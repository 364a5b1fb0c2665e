"""Redaction reaches every copy scrm made of a text: case subjects, draft replies, the state store; erase likewise.

Runs the engine into the embedded CRM and reads its SQLite file directly.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import orjson
from scrm.config import load_config
from scrm.engine import Engine, RunStats
from scrm.plugins import PluginHost
from typer.testing import CliRunner

from scrm_core.models import REDACTED_SUBJECT
from tests.e2e import write_config

ROUTING = """
[[routing.rules]]
name = "refunds"
when = { keywords_any = ["refund"] }
actions = [{ kind = "case" }, { kind = "draft_reply", value = "Hello {author}, about: {subject}" }]
"""


def _event(kind: str, mid: str, author: str, text: str = "", **more: Any) -> bytes:
    if kind == "message.deleted":
        return orjson.dumps({"kind": kind, "network": "t", "message_id": mid}) + b"\n"
    profile = {"network": "t", "account_id": author, "display_name": f"Person {author}"}
    message = {"network": "t", "id": mid, "author": profile, "text": text, "created_at": "2026-01-01T00:00:00Z"}
    return orjson.dumps({"kind": kind, "message": {**message, **more}}) + b"\n"


def _run(folder: Path, lines: list[bytes]) -> RunStats:
    data = folder / "t.ndjson"
    with data.open("ab") as fh:
        fh.write(b"".join(lines))
    config = write_config(folder, [data], extra=ROUTING)
    host = PluginHost(env={"SCRM_LOAD_PLUGINS": "replay,localcrm"}).load()
    cfg = load_config(config, env={}, networks=host.networks, crms=host.crms)
    return asyncio.run(Engine(cfg, host).run(follow=False, handle_signals=False))


def _case(folder: Path, key: str) -> dict[str, Any]:
    with sqlite3.connect(folder / "crm.db") as con:
        con.row_factory = sqlite3.Row
        row = con.execute("SELECT * FROM cases WHERE external_key = ?", (key,)).fetchone()
        return dict(row) if row else {}


def _all_text(db: Path) -> str:
    with sqlite3.connect(db) as con:
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return "\n".join(repr(row) for t in tables for row in con.execute(f"SELECT * FROM {t}"))


def test_deleting_a_thread_root_redacts_the_case_subject_and_draft_everywhere(tmp_path: Path) -> None:
    secret = "my card 4111 1111 1111 1111 was charged twice, refund please"
    stats = _run(
        tmp_path,
        [
            _event("message.created", "r1", "a", secret),
            _event("message.created", "x1", "b", "me too", thread_root_id="r1"),
        ],
    )
    assert stats.sink.dead_lettered == 0
    assert "4111" in _case(tmp_path, "scrm:t:r1")["subject"]
    _run(tmp_path, [_event("message.deleted", "r1", "a")])
    case = _case(tmp_path, "scrm:t:r1")
    assert case["subject"] == REDACTED_SUBJECT
    assert "4111" not in _all_text(tmp_path / "crm.db"), "the deleted text survives in the CRM"
    assert "4111" not in _all_text(tmp_path / "state.db"), "the deleted text survives in the state store"


def test_the_case_subject_follows_an_edit_and_old_versions_are_not_applied(tmp_path: Path) -> None:
    _run(tmp_path, [_event("message.created", "r1", "a", "refund for order 12?")])
    v2 = _event("message.edited", "r1", "a", "refund for order 12? (it was 13)", edited_at="2026-01-01T00:09:00Z")
    v1 = _event("message.edited", "r1", "a", "refund for order 12? typo", edited_at="2026-01-01T00:05:00Z")
    stats = _run(tmp_path, [v2, v1])  # the older edit arrives late
    assert stats.ingest.stale_edits == 1
    assert _case(tmp_path, "scrm:t:r1")["subject"] == "refund for order 12? (it was 13)"
    with sqlite3.connect(tmp_path / "crm.db") as con:
        (text,) = con.execute("SELECT text FROM messages WHERE external_key = 'scrm:t:r1'").fetchone()
    assert text == "refund for order 12? (it was 13)"


def test_erasing_a_person_takes_their_words_out_of_other_peoples_cases(tmp_path: Path) -> None:
    # a opens the thread; b's reply re-renders the case's draft reply with b's name.
    root = _event("message.created", "r1", "a", "refund please")
    _run(tmp_path, [root, _event("message.created", "x1", "b", "refund for me too", thread_root_id="r1")])
    assert "Person b" in _case(tmp_path, "scrm:t:r1")["extra"]
    from scrm.cli import app

    done = CliRunner().invoke(app, ["erase", "t:b", "-c", str(tmp_path / "scrm.toml"), "--yes"])
    assert done.exit_code == 0, done.output
    case = _case(tmp_path, "scrm:t:r1")
    assert case["subject"] == "refund please", "a's own words stay"
    assert "Person b" not in _all_text(tmp_path / "crm.db"), "the erased person's name survives in a's case"
    assert "Person b" not in _all_text(tmp_path / "state.db"), "and in the state store"
