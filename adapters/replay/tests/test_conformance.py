"""The replay adapter against the network conformance suite."""

from pathlib import Path

from scrm_replay import ReplayAdapter, ReplaySettings, dump_event

from scrm_core import AdapterContext, Event, NetworkAdapter
from scrm_core.testing.network import NetworkAdapterConformance


class TestReplayConformance(NetworkAdapterConformance):
    def make_adapter(self, scenario: list[Event], tmp_path: Path) -> NetworkAdapter:
        (tmp_path / "scenario.ndjson").write_bytes(b"".join(dump_event(e) for e in scenario))
        return ReplayAdapter(
            ReplaySettings(paths=["*.ndjson"], page_size=3), AdapterContext(name="t", base_dir=tmp_path)
        )
