"""``scrm state migrate``: an SQLite state the engine really wrote moves to PostgreSQL with
nothing lost or repeated; the next runs on PostgreSQL go on from there, exactly once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import scrm_postgres.migrate as migrate_module
from scrm.store import (
    NewDeadLetter,
    NewLabelExample,
    NewReply,
    PageCommit,
    Settlement,
    SqliteStore,
    StateStore,
)
from scrm_postgres import PostgresStore
from scrm_postgres.migrate import migrate_state
from scrm_replay.demo import generate_demo

from scrm_core.errors import FatalError
from scrm_core.models import CrmObject, CrmOperation
from scrm_core.testing.store import person_page
from tests.e2e import crm_state, expected_messages, expected_profiles, write_config

from .state_snapshot import snapshot

TIMEOUT = 300.0  # a safety net for a hung child, never a wait


def _scrm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scrm", *args], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def _crm_rows(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table of the embedded CRM (timestamps of writes included)."""
    con = sqlite3.connect(db)
    try:
        tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        con.close()


def _more_state(store: StateStore) -> None:
    """What a demo run does not write: a webhook, adapter state, a correction, a model, a reply,
    a held-back write, and one CRM write still waiting in the outbox."""
    store.store_webhook("hooks", "d1", {"X-Sig": "abc"}, b'{"id": 1}')
    store.adapter_state_put("mastodon", {"since": "42", "nul\x00key": "v"})
    store.save_label_examples([NewLabelExample("mastodon:1", "intent", "intent:complaint", "broken", "localcrm")])
    store.save_model("intent", b"\x00model-bytes", {"f1": 0.9}, 1)
    store.enqueue_replies([NewReply("r1", "cli", "mastodon:1", "1", "thanks")])
    waiting = CrmOperation(object=CrmObject.contact, external_key="scrm:person:migrated", fields={"name": "Migrated"})
    refused = CrmOperation(object=CrmObject.contact, external_key="scrm:person:refused", fields={"x": 1})
    store.commit_page(
        PageCommit(
            "extra",
            "1",
            ops=[waiting],
            dead_letters=[NewDeadLetter("sink", "refused", "scrm:x", op=refused, code="E1", retryable=False)],
        )
    )


@pytest.mark.slow
def test_a_migrated_demo_state_goes_on_exactly_once_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    generate_demo(tmp_path / "data", messages=240, seed=3, malformed=3)
    files = sorted((tmp_path / "data").glob("*.ndjson"))
    config = write_config(tmp_path, files[:2])
    first = _scrm("run", "--once", "-c", str(config))
    assert first.returncode == 0, first.stderr[-3000:]
    lite = SqliteStore(tmp_path / "state.db")
    lite.migrate()
    _more_state(lite)
    message_keys = [k.removeprefix("scrm:") for k in expected_messages(files)]
    before = snapshot(lite, message_keys, adapters=("mastodon",))
    lite.close()
    assert before["dead_letters"] and before["outbox"] and before["counts"]["messages"] > 100

    moved = _scrm("state", "migrate", "--to", postgres_url, "-c", str(config))
    assert moved.returncode == 0, moved.stderr[-3000:]
    assert "copied" in moved.stdout and "seen_events" in moved.stdout, moved.stdout  # progress per table
    pg = PostgresStore(postgres_url)
    assert snapshot(pg, message_keys, adapters=("mastodon",)) == before
    pg.close()
    again = _scrm("state", "migrate", "--to", postgres_url, "-c", str(config))
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout + again.stderr

    # The same sources on PostgreSQL: only the write that was waiting in the outbox is sent.
    crm_before = _crm_rows(tmp_path / "crm.db")
    config.write_text(config.read_text().replace('url = "sqlite:///state.db"', f'url = "{postgres_url}"'))
    second = _scrm("run", "--once", "-c", str(config))
    assert second.returncode == 0, second.stderr[-3000:]
    crm_after = _crm_rows(tmp_path / "crm.db")
    new_contacts = [row for row in crm_after["contacts"] if row not in crm_before["contacts"]]
    assert len(new_contacts) == 1 and "Migrated" in repr(new_contacts[0])
    written = {"contacts", "localcrm_ids"}  # the new contact and the contacts' id counter
    assert {t: rows for t, rows in crm_after.items() if t not in written} == {
        t: rows for t, rows in crm_before.items() if t not in written
    }, "a run after the migration rewrote records the SQLite runs had written"

    # A third source, on PostgreSQL only: everything exactly once.
    third_source = f'\n[[sources]]\nname = "src-2"\nadapter = "replay"\nsettings = {{ paths = ["{files[2]}"] }}\n'
    config.write_text(config.read_text() + third_source)
    third = _scrm("run", "--once", "-c", str(config))
    assert third.returncode == 0, third.stderr[-3000:]
    crm = crm_state(tmp_path / "crm.db")
    expected = expected_messages(files)
    assert crm.message_rows == len(crm.messages) == len(expected)
    assert crm.messages == expected
    assert crm.profiles == expected_profiles(files) and crm.profile_rows == len(crm.profiles)


def test_an_interrupted_copy_resumes_and_copies_each_row_once(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lite = SqliteStore(tmp_path / "state.db")
    lite.migrate()
    for i in range(30):
        lite.commit_page(person_page(f"p{i}", str(i)))
    settled = [i.seq for i in lite.outbox_take(6)[1:]]
    lite.outbox_settle(Settlement(done=settled))  # behind a waiting row: kept in SQLite, not copied
    _more_state(lite)
    keys = [f"demo:m-p{i}" for i in range(30)]
    before = snapshot(lite, keys, adapters=("mastodon",))
    highest_seq = max(seq for seq, _, _ in before["outbox"])
    lite.close()

    monkeypatch.setattr(migrate_module, "_BATCH", 7)

    def crash(table: str, done: int, total: int) -> None:
        if table == "messages" and 0 < done < total:
            raise KeyboardInterrupt  # the operator's Ctrl-C, half-way through a table

    with pytest.raises(KeyboardInterrupt):
        migrate_state(tmp_path / "state.db", postgres_url, progress=crash)
    with pytest.raises(FatalError, match="--resume"):
        migrate_state(tmp_path / "state.db", postgres_url)
    report = migrate_state(tmp_path / "state.db", postgres_url, resume=True)
    assert report.skipped == ["checkpoints", "seen_events", "profiles", "conversations"]
    assert report.copied["messages"] == 30

    pg = PostgresStore(postgres_url)
    assert snapshot(pg, keys, adapters=("mastodon",)) == before
    assert not {seq for seq, _, _ in before["outbox"]} & set(settled)
    # Numbers SQLite handed out are never handed out again.
    (seq,) = pg.commit_page(PageCommit("demo", "x", ops=[CrmOperation(object=CrmObject.contact, external_key="k")]))
    assert seq > highest_seq
    pg.close()


def test_a_target_holding_other_state_is_refused(postgres_url: str, tmp_path: Path) -> None:
    lite = SqliteStore(tmp_path / "state.db")
    lite.migrate()
    lite.commit_page(person_page("alice", "1"))
    lite.close()
    pg = PostgresStore(postgres_url)
    pg.migrate()
    pg.commit_page(person_page("bob", "9"))
    pg.close()
    with pytest.raises(FatalError, match="already holds scrm state"):
        migrate_state(tmp_path / "state.db", postgres_url)
    with pytest.raises(FatalError, match="no SQLite state store"):
        migrate_state(tmp_path / "missing.db", postgres_url)


def test_the_copy_knows_every_table_and_column_of_the_sqlite_schema(postgres_url: str, tmp_path: Path) -> None:
    """A table or column added to one schema and not the other fails here, not in a migration."""
    lite = SqliteStore(tmp_path / "state.db")
    lite.migrate()
    lite.close()
    con = sqlite3.connect(tmp_path / "state.db")
    tables = {
        t: {row[1] for row in con.execute(f"PRAGMA table_info({t})")}
        for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if t not in ("schema_version", "sqlite_sequence", *migrate_module.SQLITE_ONLY)
    }
    con.close()
    assert set(tables) == set(migrate_module.TABLES)
    pg = PostgresStore(postgres_url)
    pg.migrate()
    for table, columns in tables.items():
        assert columns <= set(migrate_module._target_types(pg, table)), table
    pg.close()
