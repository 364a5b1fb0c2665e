"""The entry-point module registers the adapter and the ``replay generate`` command."""

from __future__ import annotations

from pathlib import Path

import typer
from scrm_replay import ReplayAdapter, plugin
from typer.testing import CliRunner

from scrm_core import NetworkAdapter


def test_registers_the_network() -> None:
    registered: list[type[NetworkAdapter]] = []
    plugin.scrm_register_networks(registered.append)
    assert registered == [ReplayAdapter]


def test_generate_command(tmp_path: Path) -> None:
    cli = typer.Typer()

    @cli.command()
    def version() -> None:  # a second command, so typer keeps sub-commands by name
        """Print nothing."""

    plugin.scrm_register_commands(cli)
    result = CliRunner().invoke(cli, ["replay", "generate", str(tmp_path), "--messages", "200", "--malformed", "2"])
    assert result.exit_code == 0, result.output
    assert "messages" in result.output and "200" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "demo-bluesky.ndjson",
        "demo-mastodon.ndjson",
        "demo-reddit.ndjson",
    ]


def test_entry_point_is_declared() -> None:
    from importlib.metadata import entry_points

    (ep,) = [ep for ep in entry_points(group="scrm") if ep.name == "replay"]
    assert ep.value == "scrm_replay.plugin"
