"""`scrm hubspot setup`, through the plugin's command hook, against the fake."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer
from scrm_hubspot import plugin
from scrm_hubspot.testing import FakeHubSpot
from typer.testing import CliRunner

from scrm_core.testing.fakes import Fault

from .conftest import make_crm, run


def _config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "scrm.toml"
    config.write_text(
        '[[sources]]\nname = "s"\nadapter = "replay"\nsettings = { paths = ["x.jsonl"] }\n\n'
        f'[crm]\nadapter = "hubspot"\nsettings = {{ access_token = "${{HUBSPOT_TOKEN}}", base_url = "{url}" }}\n'
    )
    return config


def invoke(config: Path, *args: str) -> tuple[int, str]:
    app = typer.Typer()
    plugin.scrm_register_commands(app)
    env = {"HUBSPOT_TOKEN": FakeHubSpot.TOKEN, "COLUMNS": "200"}
    result = CliRunner().invoke(app, ["hubspot", "setup", "-c", str(config), *args], env=env)
    return result.exit_code, result.output


def test_dry_run_lists_what_is_missing_then_setup_creates_it(
    hubspot: Callable[..., FakeHubSpot], url: str, tmp_path: Path
) -> None:
    fake = hubspot(with_properties=False)
    config = _config(tmp_path, url)

    code, out = invoke(config, "--dry-run")
    assert code == 1, out
    assert (
        "contacts: property scrm_key (unique values) is missing; creating it needs scope crm.schemas.contacts.write"
        in out
    )
    assert "notes: property scrm_key is missing" in out and "notes: property scrm_key (unique" not in out
    assert not any(r.method == "POST" and "/properties/" in r.path for r in fake.requests), "a dry run changes nothing"

    code, out = invoke(config)
    assert code == 0, out
    assert "created contacts.scrm_key" in out and "created notes.scrm_direction" in out
    assert fake.properties["contacts"]["scrm_key"]["hasUniqueValue"] is True

    code, out = invoke(config, "--dry-run")
    assert code == 0 and "every property scrm needs" in out
    assert run(make_crm(url, tmp_path).check) == []


def test_setup_refuses_a_config_for_another_crm(tmp_path: Path) -> None:
    config = tmp_path / "scrm.toml"
    source = '[[sources]]\nname = "s"\nadapter = "replay"\nsettings = { paths = ["x.jsonl"] }\n\n'
    config.write_text(source + '[crm]\nadapter = "localcrm"\n')
    code, out = invoke(config)
    assert code == 2 and "not 'hubspot'" in out


def test_setup_waits_out_rate_limits_and_server_errors(
    hubspot: Callable[..., FakeHubSpot], url: str, tmp_path: Path
) -> None:
    fake = hubspot(with_properties=False, rate_limit=(100, 0.2))
    fake.faults.arm(Fault.rate_limited)  # the first request: 429, wait one (0.2 s) window
    config = _config(tmp_path, url)
    code, out = invoke(config)
    assert code == 0, out
    fake.faults.arm(Fault.server_error, times=2)
    fake.properties["tickets"].pop("scrm_labels")
    code, out = invoke(config)
    assert code == 0, out
    assert "created tickets.scrm_labels" in out
    assert [r.status for r in fake.requests].count(429) == 1 and [r.status for r in fake.requests].count(503) == 2
    assert run(make_crm(url, tmp_path).check) == []
