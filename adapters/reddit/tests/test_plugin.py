"""The entry point registers the adapter."""

from __future__ import annotations

from importlib.metadata import entry_points

from scrm_reddit import RedditAdapter, plugin

from scrm_core import NetworkAdapter


def test_registers_the_network() -> None:
    registered: list[type[NetworkAdapter]] = []
    plugin.scrm_register_networks(registered.append)
    assert registered == [RedditAdapter]


def test_entry_point_is_declared() -> None:
    found = [ep for ep in entry_points(group="scrm") if ep.name == "reddit"]
    assert [ep.value for ep in found] == ["scrm_reddit.plugin"]
