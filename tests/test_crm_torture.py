"""The 3,000-message torture stream into HubSpot and Salesforce, in process, with and without faults.

The stream (scrm_replay.torture) carries 300-character display names, 60,000- and
66,000-character texts, deleted thread roots that opened a case, SOQL-like names and old
versions delivered after an edit. Against the strict fakes (field lengths, create-only
fields, restricted picklists, property options), what must hold is in
tests/crm_checks.py: every live message and author once, final texts, author links, no
deleted text anywhere, nothing left in the outbox or the dead-letter queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from scrm.config import load_config
from scrm.engine import Engine, RunStats
from scrm.plugins import PluginHost
from scrm_replay.torture import TORTURE_ROUTING, expected_torture, generate_torture

from scrm_core.testing.fakes import Fault, FaultInjector
from tests.crm_checks import CrmUnderTest, assert_state_settled, assert_torture_landed, make_crm
from tests.e2e import write_config

pytestmark = pytest.mark.slow

MESSAGES = 3000


@pytest.fixture(scope="module")
def torture(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("torture")
    return generate_torture(folder, messages=MESSAGES, seed=4).files


def _run(config: Path) -> RunStats:
    host = PluginHost(env={"SCRM_LOAD_PLUGINS": "replay,intent,hubspot,salesforce"}).load()
    cfg = load_config(config, env={}, networks=host.networks, crms=host.crms)
    return asyncio.run(Engine(cfg, host, preflight=True).run(follow=False, handle_signals=False))


@pytest.fixture(params=["hubspot", "salesforce"])
def crm_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clean_crm(crm_name: str) -> Iterator[CrmUnderTest]:
    crm = make_crm(crm_name)
    yield crm
    crm.server.stop()


_REQUEST_FAULTS = (Fault.rate_limited, Fault.server_error, Fault.timeout)


@pytest.fixture
def faulty_crm(crm_name: str) -> Iterator[CrmUnderTest]:
    # 5% 429 (Salesforce: 403 REQUEST_LIMIT_EXCEEDED), 5% 5xx, 5% of records refused as
    # transient, 3% of requests applied and then stalled past the client's timeout.
    faults = FaultInjector(rate_429=0.05, rate_5xx=0.05, partial_rate=0.05, rate_timeout=0.03, timeout_seconds=1.5)
    faults.seed = 13
    # One of each request fault for sure, whatever the dice: the run makes few enough calls
    # (~80 into HubSpot) that a 3% or 5% rate can miss a kind altogether.
    for fault in _REQUEST_FAULTS:
        faults.arm(fault)
    crm = make_crm(crm_name, faults)
    yield crm
    crm.server.stop()


def test_the_torture_stream_lands_exactly_once(clean_crm: CrmUnderTest, torture: list[Path], tmp_path: Path) -> None:
    config = write_config(
        tmp_path, torture, crm=clean_crm.name, crm_settings=clean_crm.settings(), extra=TORTURE_ROUTING
    )
    stats = _run(config)
    assert stats.ingest.stale_edits > 0, "the stream's old versions were not delivered"
    assert stats.sink.dead_lettered == 0
    assert_torture_landed(clean_crm, expected_torture(torture))
    assert_state_settled(tmp_path / "state.db")


def test_the_torture_stream_lands_exactly_once_through_faults(
    faulty_crm: CrmUnderTest, torture: list[Path], tmp_path: Path
) -> None:
    engine = "max_attempts = 30"
    config = write_config(
        tmp_path, torture, crm=faulty_crm.name, crm_settings=faulty_crm.settings(), extra=TORTURE_ROUTING, engine=engine
    )
    stats = _run(config)
    faults = faulty_crm.fake.faults
    assert faults.counts["partial"], faults.counts
    assert all(faults.counts[f.value] + faults.taken[f] for f in _REQUEST_FAULTS), (faults.counts, faults.taken)
    assert stats.sink.retried_calls > 0 and stats.sink.record_retries > 0
    faulty_crm.fake.faults.clear()
    assert_torture_landed(faulty_crm, expected_torture(torture))
    assert_state_settled(tmp_path / "state.db")
