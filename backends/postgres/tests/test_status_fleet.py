"""``scrm status`` on a PostgreSQL state shows the fleet: workers (alive or dead), the leases
of readers and outbox partitions with their holders, the lag per source and the outbox's
depth per partition; in text and ``--json``. The fleet is made with the store itself (two
workers, one of them stopped renewing), so every figure shown is known beforehand."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
from scrm.cli import app
from scrm.store import PageCommit, WorkerInfo
from scrm_postgres import PostgresStore
from typer.testing import CliRunner

from scrm_core.models import CrmObject, CrmOperation
from scrm_core.store.base import partition_of
from scrm_core.testing.fleet import eventually

LEASE = 30.0


def _config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "scrm.toml"
    config.write_text(
        f'[state]\nurl = "{url}"\nlease_seconds = {LEASE}\n\n'
        '[crm]\nadapter = "localcrm"\nsettings = { path = "crm.db" }\n\n'
        '[[sources]]\nname = "fast"\nadapter = "replay"\nsettings = { paths = ["a.ndjson"] }\n\n'
        '[[sources]]\nname = "idle"\nadapter = "replay"\nsettings = { paths = ["b.ndjson"] }\n'
    )
    return config


def _status(config: Path, *extra: str) -> str:
    result = CliRunner().invoke(app, ["status", "-c", str(config), *extra])
    assert result.exit_code == 0, result.output
    return result.output


def test_status_shows_workers_leases_lag_and_outbox_per_partition(postgres_url: str, tmp_path: Path) -> None:
    a, b = PostgresStore(postgres_url), PostgresStore(postgres_url)
    try:
        for store in (a, b):
            store.migrate()
        a.join_fleet(WorkerInfo("host-a:11:aa", "host-a", 11, "scrm run"))
        b.join_fleet(WorkerInfo("host-b:22:bb", "host-b", 22, "scrm run"))
        (fast,) = a.acquire_leases("host-a:11:aa", ["fast"], 1, LEASE)
        (idle,) = b.acquire_leases("host-b:22:bb", ["idle"], 1, LEASE)
        sink = a.acquire_leases("host-a:11:aa", ["outbox#0", "outbox#1"], 2, LEASE)
        keys = [f"scrm:m{i}" for i in range(40)]
        ops = [CrmOperation(object=CrmObject.message, external_key=k, fields={"text": "x"}) for k in keys]
        for page in range(4):  # four pages of 10 events each
            a.commit_page(
                PageCommit("fast", str(page), event_keys=[f"e{page}-{i}" for i in range(10)], ops=ops[page * 10 :][:10])
            )
        b.commit_page(PageCommit("idle", "0", event_keys=["only"], lease=idle))
        with psycopg.connect(postgres_url, autocommit=True) as conn:  # b died 50 s ago (by the store's clock)
            conn.execute("UPDATE workers SET heartbeat_at = now() - interval '50 seconds' WHERE id = 'host-b:22:bb'")
            conn.execute("UPDATE commit_log SET at = now() - interval '90 seconds' WHERE source = 'idle'")
        config = _config(tmp_path, postgres_url)

        report = json.loads(_status(config, "--json"))
        assert [s["name"] for s in report["sources"]] == ["fast", "idle"] and report["outbox_depth"] == 40
        fleet = report["fleet"]
        workers = {w["id"]: w for w in fleet["workers"]}
        assert workers["host-a:11:aa"]["alive"] and workers["host-a:11:aa"]["host"] == "host-a"
        assert workers["host-a:11:aa"]["pid"] == 11 and workers["host-a:11:aa"]["leases"] == 3
        assert not workers["host-b:22:bb"]["alive"] and workers["host-b:22:bb"]["heartbeat_seconds_ago"] >= 50
        leases = {x["name"]: x for x in fleet["leases"]}
        assert leases["fast"]["kind"] == "reader" and leases["fast"]["worker"] == fast.holder
        assert leases["outbox#1"]["kind"] == "sink" and leases["outbox#1"]["worker"] == sink[1].holder
        assert 0 < leases["fast"]["expires_in_seconds"] <= LEASE
        # The dead worker's lease has not expired yet: it is shown as held by a dead worker.
        assert leases["idle"]["worker"] == idle.holder and leases["idle"]["worker_alive"] is False
        lag = {s["name"]: s for s in fleet["sources"]}
        window_minutes = lag["fast"]["window_seconds"] / 60
        assert lag["fast"]["events"] == 40 and lag["fast"]["reader"] == fast.holder
        assert lag["fast"]["pages_per_minute"] == round(4 / window_minutes, 1)
        assert lag["fast"]["events_per_minute"] == round(40 / window_minutes, 1)
        assert lag["fast"]["last_commit_seconds_ago"] < 30
        assert lag["idle"]["last_commit_seconds_ago"] >= 90 and lag["idle"]["events"] == 1
        parts = PostgresStore.outbox_partitions
        expected: dict[str, int] = {}
        for key in keys:
            part = str(partition_of(key, parts))
            expected[part] = expected.get(part, 0) + 1
        assert fleet["outbox_by_partition"] == dict(sorted(expected.items(), key=lambda kv: int(kv[0])))
        assert fleet["outbox_depth"] == 40

        text = _status(config)
        for shown in ("host-a:11:aa", "host-b:22:bb", "outbox#1", "(dead)", "lag per source", "fast", "idle"):
            assert shown in text, shown
        assert "outbox across the fleet: 40 operation(s) waiting" in text

        # Once the dead worker's lease expires it shows as free; the live one takes it.
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("UPDATE leases SET expires_at = now() - interval '1 second' WHERE name = 'idle'")
        a.release_leases("host-a:11:aa", ["outbox#0"])  # given back: free at once
        after = json.loads(_status(config, "--json"))["fleet"]
        free = {x["name"]: x for x in after["leases"]}
        assert free["idle"]["worker"] is None and free["outbox#0"]["worker"] is None
        assert free["outbox#0"]["expires_in_seconds"] is None and "nobody" in _status(config)
        eventually(lambda: a.acquire_leases("host-a:11:aa", ["idle"], 1, LEASE), "the free lease taken")
        final = json.loads(_status(config, "--json"))["fleet"]
        assert {x["name"]: x["worker"] for x in final["leases"]}["idle"] == "host-a:11:aa"
    finally:
        a.close()
        b.close()


def test_status_of_an_sqlite_state_has_no_fleet(tmp_path: Path) -> None:
    config = tmp_path / "scrm.toml"
    config.write_text(
        '[state]\nurl = "sqlite:///state.db"\n\n[crm]\nadapter = "localcrm"\nsettings = { path = "crm.db" }\n\n'
        '[[sources]]\nname = "s"\nadapter = "replay"\nsettings = { paths = ["a.ndjson"] }\n'
    )
    report = json.loads(_status(config, "--json"))
    assert report["fleet"] is None and report["outbox_depth"] == 0
    assert [s["name"] for s in report["sources"]] == ["s"] and report["sources"][0]["events"] == 0
    assert "fleet workers" not in _status(config)
