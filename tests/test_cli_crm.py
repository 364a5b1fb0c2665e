"""First contact with a production CRM, as an operator meets it: real `scrm` processes against the fakes.

`scrm check` names every problem with its fix; `scrm run` refuses an incomplete set-up
before it sends anything; `scrm run --dry-run` writes nothing and changes no state;
read-only commands run without the CRM's secrets; `scrm config check` refuses a
Salesforce URL it cannot use; `scrm dlq list` says which refusals a retry cannot fix.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from scrm_hubspot.testing import FakeHubSpot

from scrm_core.testing.fakes import FakeServer
from tests.crm_checks import make_crm
from tests.e2e import toml_inline

pytestmark = pytest.mark.slow

WRITES = ("/batch/create", "/batch/upsert", "/batch/update", "/batch/archive")


def scrm(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scrm", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"COLUMNS": "250", "PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})},
        check=False,
    )


def _stream(path: Path, n: int = 12) -> Path:
    lines = []
    for i in range(n):
        author = {"network": "t", "account_id": f"a{i % 3}", "display_name": f"Person {i % 3}"}
        text = f"my order {i} is broken, I want a refund" if i % 4 == 0 else f"hello {i}"
        message = {"network": "t", "id": str(i), "author": author, "text": text, "created_at": "2026-01-01T00:00:00Z"}
        lines.append(orjson.dumps({"kind": "message.created", "message": message}) + b"\n")
    path.write_bytes(b"".join(lines))
    return path


def _config(folder: Path, crm: str, settings: dict[str, object]) -> Path:
    data = _stream(folder / "t.ndjson")
    path = folder / "scrm.toml"
    path.write_text(
        f'[state]\nurl = "sqlite:///state.db"\n\n[crm]\nadapter = "{crm}"\nsettings = {toml_inline(settings)}\n\n'
        f'[[sources]]\nname = "t"\nadapter = "replay"\nsettings = {{ paths = ["{data}"] }}\n\n'
        '[[routing.rules]]\nname = "refunds"\nwhen = { keywords_any = ["refund"] }\nactions = [{ kind = "case" }]\n'
    )
    return path


@pytest.fixture
def hubspot() -> Iterator[tuple[FakeHubSpot, FakeServer]]:
    fake = FakeHubSpot(with_properties=False)
    with FakeServer(fake.app) as server:
        yield fake, server


def _writes(fake: FakeHubSpot) -> list[str]:
    return [r.path for r in fake.requests if any(w in r.path for w in WRITES)]


def test_an_incomplete_hubspot_account_is_refused_before_any_write_then_set_up(
    hubspot: tuple[FakeHubSpot, FakeServer], tmp_path: Path
) -> None:
    fake, server = hubspot
    config = _config(tmp_path, "hubspot", {"base_url": server.url, "access_token": "${HUBSPOT_TOKEN}"})
    env = {"HUBSPOT_TOKEN": FakeHubSpot.TOKEN}

    check = scrm("check", "-c", str(config), cwd=tmp_path, env=env)
    assert check.returncode == 1, check.stdout + check.stderr
    assert "HubSpot contacts lack the scrm properties" in check.stdout
    assert "fix: run `scrm hubspot setup -c <your scrm.toml>`" in check.stdout

    run = scrm("run", "--once", "-c", str(config), cwd=tmp_path, env=env)
    assert run.returncode == 1
    assert "the set-up is not ready" in run.stderr and "scrm hubspot setup" in run.stderr
    assert _writes(fake) == [], "a refused run sends nothing"

    setup = scrm("hubspot", "setup", "-c", str(config), cwd=tmp_path, env=env)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    ok = scrm("check", "-c", str(config), cwd=tmp_path, env=env)
    assert ok.returncode == 0 and "ok: crm, t ready" in ok.stdout, ok.stdout + ok.stderr


def test_a_dry_run_writes_nothing_and_changes_no_state_then_a_run_writes_it(tmp_path: Path) -> None:
    fake = FakeHubSpot(with_properties=True)
    with FakeServer(fake.app) as server:
        config = _config(tmp_path, "hubspot", {"base_url": server.url, "access_token": FakeHubSpot.TOKEN})
        dry = scrm("run", "--dry-run", "-c", str(config), cwd=tmp_path)
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert "the state store and the CRM are unchanged" in dry.stdout
        assert "contact" in dry.stdout and "message" in dry.stdout and "case" in dry.stdout
        assert "create" in dry.stdout and "hs_note_body" in dry.stdout
        assert _writes(fake) == [] and fake.count("contacts") == 0
        assert not (tmp_path / "state.db").exists(), "the dry run touched the state store"

        run = scrm("run", "--once", "-c", str(config), cwd=tmp_path)
        assert run.returncode == 0, run.stdout + run.stderr
        assert fake.count("notes") == 12 and fake.count("contacts") == 3 and fake.count("tickets") == 3
        with sqlite3.connect(tmp_path / "state.db") as con:
            cursors = con.execute("SELECT source, cursor FROM checkpoints").fetchall()
        again = scrm("preview", "-c", str(config), cwd=tmp_path)
        assert again.returncode == 0 and "nothing to write" in again.stdout, again.stdout
        with sqlite3.connect(tmp_path / "state.db") as con:
            assert con.execute("SELECT source, cursor FROM checkpoints").fetchall() == cursors


def test_read_only_commands_run_without_the_crms_secrets(tmp_path: Path) -> None:
    config = _config(tmp_path, "hubspot", {"base_url": "https://api.hubapi.com", "access_token": "${HUBSPOT_TOKEN}"})
    for command in (["status"], ["dlq", "list"], ["config", "check"]):
        done = scrm(*command, "-c", str(config), cwd=tmp_path)
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
    check = scrm("config", "check", "-c", str(config), cwd=tmp_path)
    assert "environment variable HUBSPOT_TOKEN is not set" in check.stderr and "ok" in check.stdout
    refused = scrm("check", "-c", str(config), cwd=tmp_path)
    assert refused.returncode == 2 and "HUBSPOT_TOKEN is not set" in refused.stderr, "a command that logs in needs it"


def test_config_check_refuses_a_salesforce_url_it_cannot_use(tmp_path: Path) -> None:
    settings = {
        "auth": "client_credentials",
        "client_id": "id",
        "client_secret": "s",
        "login_url": "http://acme.my.salesforce.com",
    }
    config = _config(tmp_path, "salesforce", settings)
    done = scrm("config", "check", "-c", str(config), cwd=tmp_path)
    assert done.returncode == 2
    assert "crm.settings.login_url" in done.stderr and "https://" in done.stderr and "HTTPS only" in done.stderr


def test_dlq_list_tells_permanent_refusals_from_retryable_ones(tmp_path: Path) -> None:
    crm = make_crm("salesforce")
    try:
        crm.fake.add_validation_rule("Contact", "Contacts need a company", lambda r: r.get("LastName") == "Person 1")
        config = _config(tmp_path, "salesforce", crm.settings())
        run = scrm("run", "--once", "-c", str(config), cwd=tmp_path)
        assert run.returncode == 0, run.stdout + run.stderr
        listing = scrm("dlq", "list", "-c", str(config), cwd=tmp_path)
        assert listing.returncode == 0, listing.stderr
        assert "FIELD_CUSTOM_VALIDATION_EXCEPTION" in listing.stdout and "Contacts need a company" in listing.stdout
        assert "only after the fix" in listing.stdout and "Validation Rules" in listing.stdout
        assert "yes, as things are" not in listing.stdout
        assert crm.fake.count("SocialPost") == 12, "the refused contact's messages are written anyway"
    finally:
        crm.server.stop()
