"""`scrm localcrm show` and `scrm localcrm reply`, through the plugin's command hook."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import typer
from scrm_localcrm import LocalCrm, LocalCrmReader, plugin
from typer.testing import CliRunner

from scrm_core import AdapterContext
from scrm_core.testing.crm import case_op, contact_op, message_op, profile_op


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    plugin.scrm_register_commands(app)
    return app


@pytest.fixture
def db(tmp_path: Path) -> Path:
    async def fill() -> None:
        crm = LocalCrm(LocalCrm.Settings(path="crm.db"), AdapterContext(name="crm", base_dir=tmp_path))
        await crm.start()
        contact = contact_op(1)
        await crm.apply([contact])
        await crm.apply([profile_op(1, contact=contact.external_key)])
        await crm.apply([case_op(1, contact=contact.external_key, subject="Parcel never arrived")])
        refs = {"contact": contact.external_key, "profile": profile_op(1).external_key, "case": case_op(1).external_key}
        long = "where is my parcel " * 20
        await crm.apply([message_op(n, refs=refs, conversation=1, text=long) for n in range(3)])
        await crm.close()

    asyncio.run(fill())
    return tmp_path / "crm.db"


def invoke(cli: typer.Typer, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["localcrm", *args], env={"COLUMNS": "160"})
    return result.exit_code, result.output


def test_show_prints_counts_and_recent_records(cli: typer.Typer, db: Path) -> None:
    code, out = invoke(cli, "show", "--db", str(db))
    assert code == 0, out
    lines = {
        line.split("│")[1].strip(): line.split("│")[2].strip() for line in out.splitlines() if line.count("│") == 3
    }
    assert lines["contacts"] == "1" and lines["profiles"] == "1" and lines["cases"] == "1"
    assert lines["messages"] == "3" and lines["leads"] == "0" and lines["replies"] == "0"
    assert "Parcel never arrived" in out and "recent messages" in out and "person1" in out


def test_show_table_prints_its_last_rows_truncated(cli: typer.Typer, db: Path) -> None:
    code, out = invoke(cli, "show", "messages", "--db", str(db), "--limit", "2")
    assert code == 0, out
    assert "messages (last 2)" in out
    assert out.count("where is my parcel") == 2 * 4 and "…" in out  # 80 characters of text per row, two rows
    code, out = invoke(cli, "show", "nonsense", "--db", str(db))
    assert code == 2 and "unknown table" in out


def test_reply_queues_a_pending_reply(cli: typer.Typer, db: Path) -> None:
    code, out = invoke(cli, "reply", case_op(1).external_key, "Sorry, sending a new one today.", "--db", str(db))
    assert code == 0, out
    assert "reply #1 is pending" in out
    with LocalCrmReader(db) as crm:
        (row,) = crm.rows("outbound_replies")
    assert (row["conversation_key"], row["in_reply_to"], row["status"]) == ("conformance:root1", "m2", "pending")
    code, out = invoke(cli, "reply", "mastodon:unknown", "hello", "--db", str(db))
    assert code == 1 and "no inbound message" in out


def test_db_from_a_config_file(cli: typer.Typer, db: Path, tmp_path: Path) -> None:
    config = tmp_path / "scrm.toml"
    base = '[[sources]]\nname = "s"\nadapter = "replay"\n\n[crm]\n'
    config.write_text(base + 'adapter = "localcrm"\nsettings = { path = "crm.db" }\n')
    code, out = invoke(cli, "show", "-c", str(config))
    assert code == 0, out
    assert "messages" in out and "3" in out
    config.write_text(base + 'adapter = "hubspot"\n')
    code, out = invoke(cli, "show", "-c", str(config))
    assert code == 2 and "not 'localcrm'" in out


def test_without_a_database_it_says_what_to_pass(
    cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = invoke(cli, "show")
    assert code == 2 and "--db PATH or -c CONFIG" in out
    code, out = invoke(cli, "show", "--db", str(tmp_path / "missing.db"))
    assert code == 1 and "no localcrm database" in out
