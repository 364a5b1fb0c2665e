"""The `scrm` command as an operator uses it: real processes, real files, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.e2e import crm_state, write_config

pytestmark = pytest.mark.slow


def scrm(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scrm", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_demo_prints_a_summary_and_a_second_run_adds_nothing(tmp_path: Path) -> None:
    first = scrm("demo", "--messages", "400", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "messages" in first.stdout and "dead letters" in first.stdout and "conversations" in first.stdout
    before = crm_state(tmp_path / "scrm-demo" / "crm.db")
    assert before.message_rows > 350
    second = scrm("demo", "--messages", "400", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "events 0 " in second.stdout and "CRM writes 0 in 0 calls" in second.stdout
    assert crm_state(tmp_path / "scrm-demo" / "crm.db") == before
    status = scrm("status", "-c", "scrm-demo/scrm.toml", cwd=tmp_path)
    assert status.returncode == 0 and "demo-mastodon" in status.stdout and "outbox: 0" in status.stdout


def test_config_check_reports_every_mistake_with_file_and_key(tmp_path: Path) -> None:
    good = write_config(tmp_path, [tmp_path / "x.ndjson"])
    missing = scrm("config", "check", "-c", str(good), cwd=tmp_path)  # the replay file is not there yet
    assert missing.returncode == 2 and "sources[0].settings.paths[0]: replay: no file matches" in missing.stderr
    (tmp_path / "x.ndjson").write_text("")
    ok = scrm("config", "check", "-c", str(good), cwd=tmp_path)
    assert ok.returncode == 0 and "ok" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(
        good.read_text()
        .replace('adapter = "localcrm"', 'adapter = "nosuchcrm"')
        .replace("page_size = 200", "page_size = -1")
        .replace("[engine]", "[engine]\nbatch_windw_ms = 5")
    )
    result = scrm("config", "check", "-c", str(bad), cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith(f"  {bad}: ")]
    assert len(lines) == 3, result.stderr
    assert any("crm.adapter" in line and "nosuchcrm" in line for line in lines)
    assert any("sources[0].settings.page_size" in line for line in lines)
    assert any("engine.batch_windw_ms" in line for line in lines)


def test_run_once_then_dlq_list_and_retry(tmp_path: Path) -> None:
    data = tmp_path / "posts.ndjson"
    good = {
        "kind": "message.created",
        "message": {
            "network": "t",
            "id": "1",
            "author": {"network": "t", "account_id": "a"},
            "text": "hi",
            "created_at": "2026-01-01T00:00:00Z",
        },
    }
    data.write_bytes(orjson.dumps(good) + b"\n" + b'{"kind": "message.created", "message": {"network": "t"}}\n')
    config = write_config(tmp_path, [data])
    run = scrm("run", "--once", "-c", str(config), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert set(crm_state(tmp_path / "crm.db").messages) == {"scrm:t:1"}
    listing = scrm("dlq", "list", "-c", str(config), cwd=tmp_path)
    assert listing.returncode == 0
    assert "posts.ndjson:2" in listing.stdout and "fix the source" in listing.stdout
    retry = scrm("dlq", "retry", "-c", str(config), cwd=tmp_path)
    assert retry.returncode == 0 and "requeued 0 operation(s); 1 dead letter(s) remain" in retry.stdout


def test_an_unknown_config_file_is_a_clear_error(tmp_path: Path) -> None:
    result = scrm("run", "--once", "-c", "missing.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert "missing.toml: file not found" in result.stderr
