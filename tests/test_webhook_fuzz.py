"""A property-based fuzzer against every webhook network, through the real ``scrm serve``.

Hypothesis sends signed bodies with hostile structure and types (the right shape with wrong
types, numbers out of every range, nesting where scalars belong, any JSON at all) to each
webhook source. Whatever it sends:

* the answer is 2xx (stored) or 4xx (refused at the door), never 5xx;
* every acknowledged body is read by the engine: it syncs, or it is exactly one dead letter
  naming it (``webhook payload #N of source 'x'``);
* ``scrm serve`` never exits and never logs a traceback; ``/health`` stays ok;
* a valid delivery afterwards syncs to the CRM; ``scrm run --once`` on the state then ends 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from scrm.plugins import PluginHost

from scrm_core.adapters import NetworkCapability
from scrm_core.testing.fakes import FakeServer
from tests.e2e import toml_inline
from tests.serving import Served, query, scrm, start_serve, wait_until
from tests.webhook_kits import KITS, Kit, body_of

pytestmark = pytest.mark.slow

EXAMPLES = 100  # per network; a few seconds each on a quiet machine


@dataclass
class Deployment:
    folder: Path
    config: Path
    served: Served
    kits: dict[str, Kit]
    http: httpx.Client
    acknowledged: list[tuple[str, int]] = field(default_factory=list)  # (source, payload id)
    refused: int = 0

    @property
    def db(self) -> Path:
        return self.folder / "state.db"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    folder = tmp_path_factory.mktemp("fuzz")
    kits = {name: make() for name, make in KITS.items()}
    with ExitStack() as stack:
        text = '[state]\nurl = "sqlite:///state.db"\n[crm]\nadapter = "localcrm"\nsettings = { path = "crm.db" }\n'
        for name, kit in kits.items():
            server = stack.enter_context(FakeServer(kit.fake.app))
            for source, values in kit.sources(server.url):
                text += f'[[sources]]\nname = "{source}"\nadapter = "{name}"\nsettings = {toml_inline(values)}\n'
        text += "[engine]\nbatch_window_ms = 0\nretry_max_seconds = 0.2\n"
        config = folder / "scrm.toml"
        config.write_text(text)
        served = start_serve(config)
        stack.callback(served.stop)
        http = stack.enter_context(httpx.Client(base_url=served.url, timeout=30))
        yield Deployment(folder, config, served, kits, http)


def test_every_webhook_network_has_a_fuzz_kit() -> None:
    host = PluginHost(env={}).load()
    webhook_networks = {n for n, cls in host.networks.items() if NetworkCapability.webhook in cls.capabilities}
    assert webhook_networks == set(KITS), "add a kit in tests/webhook_kits.py for every webhook network"


def _processed(d: Deployment, source: str, payload_id: int) -> bool:
    rows = query(d.db, "SELECT cursor FROM checkpoints WHERE source = ?", f"{source}@webhooks")
    return bool(rows) and int(rows[0][0] or 0) >= payload_id


def _deliver(d: Deployment, kit: Kit, source: str, event: str, document: Any) -> None:
    body = body_of(document)
    answer = d.http.post(f"/webhooks/{source}", content=body, headers=kit.headers(source, body, event))
    assert answer.status_code < 500, answer.text
    assert d.served.alive(), d.served.output()
    if answer.status_code >= 400:
        d.refused += 1
        return
    data = answer.json()
    if data.get("duplicate"):
        return
    payload_id = int(data["stored"])
    d.acknowledged.append((source, payload_id))
    wait_until(lambda: _processed(d, source, payload_id) or not d.served.alive(), what=f"payload #{payload_id}")
    assert d.served.alive(), d.served.output()
    letters = query(
        d.db, "SELECT id FROM dead_letters WHERE locator = ?", f"webhook payload #{payload_id} of source '{source}'"
    )
    assert len(letters) <= 1, letters


def _fuzz(kit_name: str, d: Deployment) -> None:
    kit = d.kits[kit_name]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(delivery=kit.hostile)
    def deliver(delivery: tuple[str, str, Any]) -> None:
        source, event, document = delivery
        _deliver(d, kit, source, event, document)

    deliver()
    # a valid delivery afterwards syncs
    source, event, document, key = kit.valid(len(d.acknowledged))
    _deliver(d, kit, source, event, document)
    wait_until(
        lambda: query(d.folder / "crm.db", "SELECT 1 FROM messages WHERE external_key = ?", f"scrm:{key}"),
        what=f"{key} in the CRM",
    )
    health = d.http.get("/health").json()
    assert health["status"] == "ok", health


@pytest.mark.parametrize("kit_name", sorted(KITS))
def test_hostile_signed_bodies_sync_or_are_one_dead_letter(kit_name: str, deployment: Deployment) -> None:
    _fuzz(kit_name, deployment)


def test_after_the_fuzzing_serve_stops_cleanly_and_a_run_ends_well(deployment: Deployment) -> None:
    d = deployment
    assert d.acknowledged, "the fuzzer never got a body past the door"
    letters = query(d.db, "SELECT locator FROM dead_letters WHERE locator LIKE 'webhook payload #%'")
    assert letters, "no hostile body became a dead letter: the fuzzer is not hostile enough"
    assert len(letters) < len(d.acknowledged), "no hostile body synced: the fuzzer is never close to valid"
    for source, payload_id in d.acknowledged:
        assert _processed(d, source, payload_id)
    assert d.served.stop() == 0, d.served.output()
    assert "Traceback" not in d.served.output(), d.served.output()
    run = scrm("run", "--once", "-c", str(d.config), cwd=d.folder)
    assert run.returncode == 0, run.stderr
