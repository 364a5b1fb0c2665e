"""bench/bench_growth.py builds its big states without the engine: they must hold what the engine writes."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path
from typing import Any

import orjson
from pydantic import TypeAdapter
from scrm.config import load_config
from scrm.engine import Engine
from scrm.plugins import PluginHost
from scrm.store import open_store
from scrm_localcrm import LocalCrm, db
from scrm_localcrm.schema import migrate
from scrm_localcrm.writer import Writer
from scrm_replay.demo import generate_demo

from scrm_core.models import Event, MessageCreated

sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
import bench_growth

# What both must agree on: the rows of the tables the hot path writes, by key.
STATE_QUERIES = {
    "seen_events": "SELECT key FROM seen_events",
    "messages": "SELECT key, conversation_key, author_key, deleted, in_crm, version FROM messages",
    "profiles": "SELECT key, person_key, fingerprint FROM profiles",
    "conversations": "SELECT key, started_by FROM conversations",
    "crm_ids": "SELECT object, external_key FROM crm_ids",
    "outbox": "SELECT external_key FROM outbox",
}
CRM_QUERIES = {
    table: f"SELECT external_key FROM {table}" for table in ("contacts", "profiles", "cases", "leads", "messages")
}


def rows(path: Path, queries: dict[str, str]) -> dict[str, set[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {name: set(conn.execute(sql).fetchall()) for name, sql in queries.items()}
    finally:
        conn.close()


def test_a_seeded_state_holds_what_the_engine_writes_for_the_same_messages(tmp_path: Path) -> None:
    # The demo stream's creations only (the seeder writes history: no edits or deletions).
    generate_demo(tmp_path / "demo", messages=600, seed=3)
    lines = [
        line
        for path in sorted((tmp_path / "demo").glob("*.ndjson"))
        for line in path.read_bytes().splitlines(keepends=True)
        if orjson.loads(line)["kind"] == "message.created"
    ]
    (tmp_path / "created.ndjson").write_bytes(b"".join(lines))

    engine_dir = tmp_path / "engine"
    engine_dir.mkdir()
    (engine_dir / "scrm.toml").write_text(
        '[state]\nurl = "sqlite:///state.db"\n[crm]\nadapter = "localcrm"\nsettings = { path = "crm.db" }\n'
        f'[[sources]]\nname = "demo"\nadapter = "replay"\nsettings = {{ paths = ["{tmp_path / "created.ndjson"}"] }}\n'
    )
    host = PluginHost(env={"SCRM_LOAD_PLUGINS": "replay,localcrm"}).load()  # no routing: every thread logged
    config = load_config(engine_dir / "scrm.toml", env={}, networks=host.networks, crms=host.crms)
    stats = asyncio.run(Engine(config, host).run(follow=False, handle_signals=False))
    assert stats.ingest.messages == 600

    seeded_dir = tmp_path / "seeded"
    seeded_dir.mkdir()
    store = open_store("sqlite:///state.db", seeded_dir)
    store.migrate()
    conn = db.connect(seeded_dir / "crm.db", create=True)
    migrate(conn, db.utc_now())
    writer = Writer(conn, LocalCrm.limits)
    events: TypeAdapter[Any] = TypeAdapter(Event)
    created = [events.validate_json(line) for line in lines]
    assert all(isinstance(e, MessageCreated) for e in created)
    try:
        assert bench_growth.seed(store, writer, iter(created), case_every=0) == 600
    finally:
        writer.close()
        store.close()

    engine_state = rows(engine_dir / "state.db", STATE_QUERIES)
    seeded_state = rows(seeded_dir / "state.db", STATE_QUERIES)
    for table in STATE_QUERIES:
        assert seeded_state[table] == engine_state[table], table
    assert len(seeded_state["messages"]) == 600 and not seeded_state["outbox"]
    assert rows(seeded_dir / "crm.db", CRM_QUERIES) == rows(engine_dir / "crm.db", CRM_QUERIES)
