"""Config: every mistake at once, with file and key; ${ENV} secrets never echoed."""

from __future__ import annotations

from pathlib import Path

import pytest
from scrm.config import load_config
from scrm.plugins import PluginHost

from scrm_core import ConfigError

GOOD = """
[state]
url = "sqlite:///state.db"

[[sources]]
name = "demo"
adapter = "replay"
settings = { paths = ["data/*.ndjson"] }

[crm]
adapter = "localcrm"
settings = { path = "crm.db" }
"""


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return PluginHost(env={}).load()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scrm.toml"
    path.write_text(text)
    return path


def problems(path: Path, host: PluginHost, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env or {}, networks=host.networks, crms=host.crms)
    assert info.value.path == str(path)
    return info.value.problems


def test_a_good_config_loads_with_paths_relative_to_the_file(tmp_path: Path, host: PluginHost) -> None:
    cfg = load_config(write(tmp_path, GOOD), env={}, networks=host.networks, crms=host.crms)
    assert cfg.base_dir == tmp_path.resolve()
    assert cfg.sources[0].settings == {"paths": ["data/*.ndjson"]}
    assert cfg.routing.rules is None  # the built-in defaults


def test_three_mistakes_are_all_reported_with_their_keys(tmp_path: Path, host: PluginHost) -> None:
    text = (
        GOOD.replace('adapter = "replay"', 'adapter = "replay"\nenabeld = true')  # typo'd key
        .replace(
            'settings = { paths = ["data/*.ndjson"] }', "settings = { paths = 5 }"
        )  # wrong type in adapter settings
        .replace('adapter = "localcrm"', 'adapter = "salesforse"')  # unknown adapter
    )
    found = problems(write(tmp_path, text), host)
    assert len(found) == 3, found
    assert any(p.startswith("sources[0].enabeld:") and "Extra inputs" in p for p in found)
    assert any(p.startswith("sources[0].settings.paths:") for p in found)
    assert any(p.startswith("crm.adapter:") and "salesforse" in p and "localcrm" in p for p in found)


def test_config_error_message_names_the_file_and_every_key(tmp_path: Path, host: PluginHost) -> None:
    path = write(tmp_path, GOOD.replace('name = "demo"', 'name = "Demo Source"').replace("[crm]", "[crm]\nmystery = 1"))
    with pytest.raises(ConfigError) as info:
        load_config(path, env={}, networks=host.networks, crms=host.crms)
    message = str(info.value)
    assert str(path) in message and "sources[0].name" in message and "crm.mystery" in message


def test_env_vars_are_expanded_and_a_missing_one_is_named(tmp_path: Path, host: PluginHost) -> None:
    text = GOOD.replace('path = "crm.db"', 'path = "${CRM_DB}"')
    cfg = load_config(write(tmp_path, text), env={"CRM_DB": "other.db"}, networks=host.networks, crms=host.crms)
    assert cfg.crm.settings["path"] == "other.db"
    assert problems(write(tmp_path, text), host) == ["crm.settings.path: environment variable CRM_DB is not set"]
    literal = GOOD.replace('path = "crm.db"', 'path = "$${NOT_A_VAR}.db"')
    cfg = load_config(write(tmp_path, literal), env={}, networks=host.networks, crms=host.crms)
    assert cfg.crm.settings["path"] == "${NOT_A_VAR}.db"


def test_values_are_never_echoed_in_errors(tmp_path: Path, host: PluginHost) -> None:
    text = GOOD.replace('url = "sqlite:///state.db"', 'url = "sqlite:///state.db"\npassword = "${SECRET}"')
    found = problems(write(tmp_path, text), host, env={"SECRET": "hunter2-very-secret"})
    assert found and not any("hunter2" in p for p in found)


def test_toml_syntax_and_missing_file(tmp_path: Path, host: PluginHost) -> None:
    assert problems(tmp_path / "nope.toml", host) == ["file not found"]
    (syntax,) = problems(write(tmp_path, "[[sources]\nname ="), host)
    assert syntax.startswith("not valid TOML") and "line 1" in syntax


def test_semantic_checks(tmp_path: Path, host: PluginHost) -> None:
    text = (
        GOOD
        + '\n[[sources]]\nname = "demo"\nadapter = "replay"\nsettings = { paths = ["x.ndjson"] }\n'
        + '\n[[routing.rules]]\nname = "r"\nwhen = { queries_any = ["brand"] }\nactions = [{ kind = "case" }]\n'
    )
    found = problems(write(tmp_path, text), host)
    assert any(p.startswith("sources[1].name:") and "unique" in p for p in found)
    assert any(p.startswith("routing.rules[0].when.queries_any:") for p in found)


def test_every_problem_comes_in_one_pass(tmp_path: Path, host: PluginHost) -> None:
    """A bad setting elsewhere never hides a duplicate name, an unknown query, an unknown
    priority or a query that does not parse: one `config check` lists them all."""
    text = (
        GOOD.replace('settings = { paths = ["data/*.ndjson"] }', "settings = { paths = 5 }")  # a wrong type
        + '\n[[sources]]\nname = "demo"\nadapter = "replay"\nsettings = { paths = ["x.ndjson"] }\n'
        + '\n[[listening.queries]]\nname = "brand"\nquery = "acme AND ("\n'
        + '\n[[routing.rules]]\nname = "r"\nwhen = { queries_any = ["brnad"] }\n'
        + 'actions = [{ kind = "priority", value = "urgnet" }]\n'
    )
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={}, networks=host.networks, crms=host.crms, check=host.config_problems)
    found = info.value.problems
    assert any(p.startswith("sources[0].settings.paths:") for p in found)
    assert any(p.startswith("sources[1].name:") and "unique" in p for p in found)
    assert any(p.startswith("routing.rules[0].when.queries_any:") and "'brnad'" in p for p in found)
    assert any(p.startswith("routing.rules[0].actions[0].value:") and "'urgnet'" in p for p in found)
    assert any(p.startswith("listening.queries[0].query") for p in found), found


def test_a_password_in_the_state_url_is_never_shown() -> None:
    from scrm.config import _register_url_password

    from scrm_core.redaction import redact

    _register_url_password("postgresql://scrm:pw-0f9e8d7c@db/scrm")  # what load_config does with [state] url
    assert "pw-0f9e8d7c" not in redact("could not connect with pw-0f9e8d7c")
