"""The demo stream into the HubSpot and Salesforce fakes, through the real CLI and vendor clients.

The fake runs in this process (a thread on 127.0.0.1); ``scrm run --once`` runs as a child
process, so it can be killed with SIGKILL mid-sync while the fake keeps its state, as a
real CRM would. What must hold: every message, profile and case exactly once, with the
message's final text (or redacted); associations right; no dead letters; no request above
the vendor's batch cap.
"""

from __future__ import annotations

import html
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from scrm_hubspot.testing import FakeHubSpot
from scrm_replay.demo import generate_demo
from scrm_salesforce.testing import FakeSalesforce

from scrm_core.testing.fakes import FakeServer, FaultInjector
from tests.e2e import expected_messages, expected_profiles, write_config

pytestmark = pytest.mark.slow

TIMEOUT = 300.0  # a safety net for a hung child; the test never waits on time otherwise


class CrmUnderTest(Protocol):
    name: str
    batch_cap: int

    def settings(self) -> dict[str, Any]: ...
    def messages(self) -> dict[str, tuple[str, bool]]: ...  # external key -> (text, deleted)
    def message_count(self) -> int: ...
    def profiles(self) -> set[str]: ...
    def cases(self) -> int: ...
    def writes(self) -> int: ...  # write requests answered so far
    def max_records(self) -> int: ...
    def check_associations(self) -> None: ...


@dataclass
class HubSpotUnderTest:
    fake: FakeHubSpot
    server: FakeServer
    name: str = "hubspot"
    batch_cap: int = 100

    def settings(self) -> dict[str, Any]:
        return {"base_url": self.server.url, "access_token": FakeHubSpot.TOKEN, "timeout_seconds": 2.0}

    def _notes(self) -> list[dict[str, str]]:
        return [n for n in (self.fake.get("notes", i) for i in self._ids("notes")) if n is not None]

    def _ids(self, object_type: str) -> list[str]:
        return [r.id for r in self.fake.objects[object_type].values()]

    def messages(self) -> dict[str, tuple[str, bool]]:
        return {
            n["scrm_key"]: (html.unescape(n.get("hs_note_body") or ""), n.get("scrm_deleted") == "true")
            for n in self._notes()
        }

    def message_count(self) -> int:
        return self.fake.count("notes")

    def cases(self) -> int:
        return self.fake.count("tickets")

    def writes(self) -> int:
        return sum(1 for r in self.fake.requests if r.method == "POST" and "/batch/" in r.path and r.status < 300)

    def max_records(self) -> int:
        return max((r.records for r in self.fake.requests), default=0)

    def check_associations(self) -> None:
        for note_id in self._ids("notes")[:200]:
            note = self.fake.get("notes", note_id)
            assert note is not None
            contacts = self.fake.associations("notes", note_id, "contacts")
            assert len(contacts) == 1, f"note {note['scrm_key']} is associated with {len(contacts)} contacts"

    def profiles(self) -> set[str]:
        found = set()
        for contact_id in self._ids("contacts"):
            contact = self.fake.get("contacts", contact_id) or {}
            if contact.get("scrm_profile_key"):
                found.add(contact["scrm_profile_key"])
        return found


@dataclass
class SalesforceUnderTest:
    fake: FakeSalesforce
    server: FakeServer
    name: str = "salesforce"
    batch_cap: int = 200

    def settings(self) -> dict[str, Any]:
        return {
            "auth": "client_credentials",
            "login_url": self.server.url,
            "client_id": self.fake.consumer_key,
            "client_secret": self.fake.client_secret,
            "ca_bundle": self.server.ca_file,
            "bulk_poll_seconds": 0,
            "timeout_seconds": 2.0,
        }

    def messages(self) -> dict[str, tuple[str, bool]]:
        return {
            p["Scrm_Key__c"]: (p.get("Content") or "", bool(p.get("Scrm_Deleted__c")))
            for p in self.fake.records("SocialPost")
        }

    def message_count(self) -> int:
        return self.fake.count("SocialPost")

    def profiles(self) -> set[str]:
        return {p["Scrm_Key__c"] for p in self.fake.records("SocialPersona")}

    def cases(self) -> int:
        return self.fake.count("Case")

    def writes(self) -> int:
        return sum(1 for r in self.fake.requests if r.method in ("PATCH", "POST") and r.records and r.status < 300)

    def max_records(self) -> int:
        return max((r.records for r in self.fake.requests if "/composite/sobjects" in r.path), default=0)

    def check_associations(self) -> None:
        personas = {p["Id"] for p in self.fake.records("SocialPersona")}
        contacts = {c["Id"] for c in self.fake.records("Contact")}
        cases = {c["Id"] for c in self.fake.records("Case")}
        for post in self.fake.records("SocialPost"):
            assert post.get("PersonaId") in personas, f"{post['Scrm_Key__c']}: no persona"
            assert post.get("WhoId") in contacts, f"{post['Scrm_Key__c']}: no contact"
            assert post.get("ParentId") in (None, *cases), f"{post['Scrm_Key__c']}: a case that does not exist"


@pytest.fixture(params=["hubspot", "salesforce"])
def crm(request: pytest.FixtureRequest) -> Iterator[CrmUnderTest]:
    faults = FaultInjector(seed=11, timeout_seconds=3.0)
    under: CrmUnderTest
    if request.param == "hubspot":
        hub = FakeHubSpot(with_properties=True, faults=faults)
        server = FakeServer(hub.app)
        under = HubSpotUnderTest(hub, server)
    else:
        sf = FakeSalesforce(faults=faults)
        server = FakeServer(sf.app, tls=True)
        under = SalesforceUnderTest(sf, server)
    yield under
    server.stop()


def _faults(crm: CrmUnderTest) -> FaultInjector:
    faults: FaultInjector = crm.fake.faults  # type: ignore[attr-defined]
    return faults


def _run(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scrm", "run", "--once", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _dead_letters(config: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "scrm", "status", "-c", str(config)], capture_output=True, text=True, check=False
    )
    return out.stdout


def _assert_exactly_once(crm: CrmUnderTest, files: list[Path]) -> None:
    expected = expected_messages(files)
    held = crm.messages()
    assert crm.message_count() == len(held), "two CRM records share one external key"
    assert set(held) == set(expected), (
        f"missing {len(set(expected) - set(held))}, unexpected {len(set(held) - set(expected))}"
    )
    wrong = [k for k, (text, deleted) in expected.items() if held[k] != (text, deleted)]
    assert not wrong, f"{len(wrong)} message(s) differ, e.g. {wrong[0]}: {held[wrong[0]]} != {expected[wrong[0]]}"
    assert crm.profiles() == expected_profiles(files)
    assert crm.cases() > 0
    crm.check_associations()
    assert crm.max_records() <= crm.batch_cap


def test_demo_stream_lands_exactly_once(crm: CrmUnderTest, tmp_path: Path) -> None:
    generate_demo(tmp_path / "data", messages=300, seed=5)
    files = sorted((tmp_path / "data").glob("*.ndjson"))
    config = write_config(tmp_path, files, crm=crm.name, crm_settings=crm.settings())
    first = _run(config)
    assert first.returncode == 0, first.stderr[-3000:]
    _assert_exactly_once(crm, files)
    assert "dead letters: 0" in _dead_letters(config)
    writes = crm.writes()
    again = _run(config)
    assert again.returncode == 0, again.stderr[-3000:]
    assert crm.writes() == writes, "a second run writes nothing"


def test_transient_faults_and_sigkill_mid_sync_end_exactly_once(crm: CrmUnderTest, tmp_path: Path) -> None:
    generate_demo(tmp_path / "data", messages=300, seed=8)
    files = sorted((tmp_path / "data").glob("*.ndjson"))
    config = write_config(tmp_path, files, crm=crm.name, crm_settings=crm.settings(), engine="max_attempts = 20")
    faults = _faults(crm)
    # 20% of requests fail transiently: 10% 5xx, 5% lost responses and 5% timeouts (both
    # applied by the CRM first), and 5% of batch records are refused as transient.
    faults.rate_5xx, faults.rate_lost_response, faults.rate_timeout, faults.partial_rate = 0.10, 0.05, 0.05, 0.05
    threshold = random.Random(3).randint(3, 8)
    proc = subprocess.Popen(
        [sys.executable, "-m", "scrm", "run", "--once", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + TIMEOUT
    killed = False
    while proc.poll() is None:
        if crm.writes() >= threshold:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed = True
            break
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the sync did not progress")
        time.sleep(0.005)  # polling interval, not a wait for an outcome
    assert killed, "the run ended before the kill: lower the threshold"
    writes_at_kill = crm.writes()
    assert writes_at_kill >= threshold, "the kill did not land inside the CRM write phase"
    finished = _run(config)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert crm.writes() > writes_at_kill, "nothing was left to write: the kill landed after the write phase"
    assert sum(faults.counts.values()) > 0, "no fault was injected"
    faults.clear()
    _assert_exactly_once(crm, files)
    assert "dead letters: 0" in _dead_letters(config)
