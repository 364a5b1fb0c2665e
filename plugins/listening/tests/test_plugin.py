"""The scrm_listening_match hook, through the plugin host and its dispatcher as the engine calls it."""

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

from scrm_core import Message
from scrm_core.plugins import PluginHost

QUERIES = {"billing": "acme (refund* OR charged)", "praise": "acme (love OR great)", "reddit": "network:reddit acme"}


def dispatch(host: PluginHost, message: Message, queries: dict[str, str]) -> list[list[str]]:
    result: list[list[str]] = asyncio.run(
        host.dispatch.call_all("scrm_listening_match", message=message, queries=queries)
    )
    return result


def test_the_hook_returns_matching_names_through_the_dispatcher(msg: Callable[..., Message]) -> None:
    host = PluginHost(env={"SCRM_LOAD_PLUGINS": ""}).load()
    host.register(plugin, "listening")
    assert host.dispatch.has("scrm_listening_match")
    assert dispatch(host, msg("ACME refunded me, love it"), QUERIES) == [["billing", "praise"]]
    assert dispatch(host, msg("acme rocks", network="reddit"), QUERIES) == [["reddit"]]
    assert dispatch(host, msg("nothing to see"), QUERIES) == []  # None is not a result
    assert host.dispatch.failures == {}


def test_the_entry_point_loads_the_plugin(msg: Callable[..., Message]) -> None:
    names = {ep.name: ep.value for ep in metadata.entry_points(group="scrm")}
    assert names.get("listening") == "scrm_listening.plugin"
    host = PluginHost(env={"SCRM_LOAD_PLUGINS": "listening"}).load()
    assert host.plugins["listening"].error is None
    assert host.plugins["listening"].hooks == ["scrm_check_config", "scrm_listening_match"]
    assert dispatch(host, msg("acme is great"), QUERIES) == [["praise"]]


def test_queries_are_compiled_once_per_distinct_set(msg: Callable[..., Message]) -> None:
    queries = dict(QUERIES)
    first = plugin.matcher_for(queries)
    assert plugin.matcher_for(queries) is first  # same dict: found by identity
    assert plugin.matcher_for(dict(QUERIES)) is first  # equal content: reused
    queries["new"] = "globex"
    assert plugin.matcher_for(queries) is not first  # changed: recompiled
    assert plugin.scrm_listening_match(msg("globex"), queries) == ["new"]


def test_a_bad_query_is_left_out_and_logged_once(msg: Callable[..., Message], caplog: pytest.LogCaptureFixture) -> None:
    queries = {"good": "acme", "bad": "acme AND (refund"}
    with caplog.at_level(logging.ERROR, logger="scrm.listening"):
        for _ in range(3):
            assert plugin.scrm_listening_match(msg("acme refund"), queries) == ["good"]
    errors = [r.getMessage() for r in caplog.records]
    assert len(errors) == 1
    assert "'bad'" in errors[0] and "unbalanced parenthesis" in errors[0] and "column 10" in errors[0]


def test_no_queries_no_result(msg: Callable[..., Message]) -> None:
    assert plugin.scrm_listening_match(msg("acme"), {}) is None


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
        [sys.executable, "-m", "scrm_core", "config", "check", "-c", str(config)],
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
