"""The scrm_listening_match hook, through the plugin host as the engine calls it."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest
import scrm_listening.plugin as plugin
from scrm.plugins import PluginHost

from scrm_core import Message
from scrm_core.config import Config, ListeningConfig, ListeningQuery

QUERIES = {"billing": "acme (refund* OR charged)", "praise": "acme (love OR great)", "reddit": "network:reddit acme"}


def config(queries: dict[str, str]) -> Config:
    listening = ListeningConfig(queries=[ListeningQuery(name=k, query=v) for k, v in queries.items()])
    return Config.model_construct(sources=[], listening=listening)


def match(host: PluginHost, message: Message, queries: dict[str, str]) -> list[str]:
    return asyncio.run(host.hooks_for(config(queries)).listening_match(message, queries))


def test_the_hook_returns_matching_names_through_the_host(msg: Callable[..., Message]) -> None:
    host = PluginHost(env={"SCRM_LOAD_PLUGINS": ""}).load()
    host.register(plugin, "listening")
    hooks = host.hooks_for(config(QUERIES))
    assert hooks.has("scrm_listening_match") and not host.hooks.has("scrm_listening_match")
    assert asyncio.run(hooks.listening_match(msg("ACME refunded me, love it"), QUERIES)) == ["billing", "praise"]
    assert asyncio.run(hooks.listening_match(msg("acme rocks", network="reddit"), QUERIES)) == ["reddit"]
    assert asyncio.run(hooks.listening_match(msg("nothing to see"), QUERIES)) == []
    assert hooks.failures == {}


def test_the_entry_point_loads_the_plugin(msg: Callable[..., Message]) -> None:
    names = {ep.name: ep.value for ep in metadata.entry_points(group="scrm")}
    assert names.get("listening") == "scrm_listening.plugin"
    host = PluginHost(env={"SCRM_LOAD_PLUGINS": "listening"}).load()
    assert host.plugins["listening"].error is None
    assert host.plugins["listening"].hooks == ["scrm_check_config", "scrm_register_processors"]
    assert match(host, msg("acme is great"), QUERIES) == ["praise"]


def test_queries_are_compiled_once_per_configuration(msg: Callable[..., Message]) -> None:
    built: list[object] = []
    plugin.scrm_register_processors(config(QUERIES), built.append)
    (listener,) = built
    assert isinstance(listener, plugin.Listener)
    matcher = listener.matcher
    for _ in range(3):
        assert listener.scrm_listening_match(msg("acme refund")) == ["billing"]
    assert listener.matcher is matcher
    plugin.scrm_register_processors(config({}), built.append)
    assert len(built) == 1, "no queries: nothing to build"


def test_a_bad_query_is_left_out_and_logged_once(msg: Callable[..., Message], caplog: pytest.LogCaptureFixture) -> None:
    queries = {"good": "acme", "bad": "acme AND (refund"}
    with caplog.at_level(logging.ERROR, logger="scrm.listening"):
        listener = plugin.Listener(queries)
        for _ in range(3):
            assert listener.scrm_listening_match(msg("acme refund")) == ["good"]
    errors = [r.getMessage() for r in caplog.records]
    assert len(errors) == 1
    assert "'bad'" in errors[0] and "unbalanced parenthesis" in errors[0] and "column 10" in errors[0]


def test_two_configurations_in_one_process_keep_their_own_queries(msg: Callable[..., Message]) -> None:
    host = PluginHost(env={"SCRM_LOAD_PLUGINS": ""}).load()
    host.register(plugin, "listening")
    first, second = host.hooks_for(config({"a": "acme"})), host.hooks_for(config({"b": "globex"}))
    message = msg("acme and globex")
    assert asyncio.run(first.listening_match(message, {})) == ["a"]
    assert asyncio.run(second.listening_match(message, {})) == ["b"]


def test_config_check_refuses_a_bad_query_with_its_column(tmp_path: Path) -> None:
    config = tmp_path / "scrm.toml"
    config.write_text(
        '[[sources]]\nname = "s"\nadapter = "replay"\nsettings = { paths = ["x.ndjson"] }\n'
        '[[listening.queries]]\nname = "brand"\nquery = "acme OR #acme"\n'
        '[[listening.queries]]\nname = "broken"\nquery = "(refund OR money"\n'
        '[[listening.queries]]\nname = "mixed"\nquery = "a OR b AND c"\n'
        '[[listening.queries]]\nname = "odd"\nquery = "acme or globex"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "scrm", "config", "check", "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "listening.queries[1].query ('broken')" in result.stderr
    assert "at column 1" in result.stderr and "^" in result.stderr
    assert "listening.queries[2].query ('mixed')" in result.stderr and "AND and OR mixed" in result.stderr
    assert "listening.queries[3]" in result.stderr, "the lower-case operator warning is shown"
    assert "queries[0]" not in result.stderr
