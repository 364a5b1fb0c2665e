"""SIGKILL `scrm run` at five moments INSIDE the CRM write phase, restart each time, same final state.

Each moment is a request the fake holds right after applying it (``fake.holds``): the
write took effect in the CRM, the process is killed before it reads the answer, and
the fake's request log proves it (the held request, applied). For Salesforce the last
moment is right after a Bulk API 2.0 job's ``UploadComplete``: Salesforce processes the
job whatever happens to the client. Every restart must go on from there (never a second
record, never a second job) and the final run must end with the torture stream exactly
once in the CRM, nothing in the outbox, nothing in the dead-letter queue.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from scrm_replay.torture import TORTURE_ROUTING, expected_torture, generate_torture

from tests.crm_checks import CrmUnderTest, assert_state_settled, assert_torture_landed, make_crm
from tests.e2e import write_config

pytestmark = pytest.mark.slow

TIMEOUT = 180.0
Match = Callable[[str, str], bool]


def _sf_upsert(sobject: str) -> Match:
    return lambda m, p: m == "PATCH" and f"/composite/sobjects/{sobject}/" in p


def _hs(path: str) -> Match:
    return lambda m, p: m == "POST" and p.endswith(path)


MOMENTS: dict[str, list[tuple[str, Match]]] = {
    "salesforce": [
        ("Contact collection upsert applied", _sf_upsert("Contact")),
        ("SocialPersona collection upsert applied", _sf_upsert("SocialPersona")),
        ("Case collection upsert applied", _sf_upsert("Case")),
        ("Bulk API 2.0 job created", lambda m, p: m == "POST" and p.rstrip("/").endswith("/jobs/ingest")),
        ("Bulk API 2.0 upload completed", lambda m, p: m == "PATCH" and "/jobs/ingest/" in p),
    ],
    "hubspot": [
        ("contact upsert applied", _hs("/objects/contacts/batch/upsert")),
        ("ticket create applied", _hs("/objects/tickets/batch/create")),
        ("first note create applied", _hs("/objects/notes/batch/create")),
        ("note create applied after a restart", _hs("/objects/notes/batch/create")),
        ("note create applied after a second restart", _hs("/objects/notes/batch/create")),
    ],
}


@pytest.fixture(params=["hubspot", "salesforce"])
def crm(request: pytest.FixtureRequest) -> Iterator[CrmUnderTest]:
    under = make_crm(str(request.param))
    yield under
    under.fake.holds.release_all()
    under.server.stop()


def _start(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "scrm", "run", "--once", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_at(crm: CrmUnderTest, config: Path, moment: str, match: Match) -> None:
    hold = crm.fake.holds.add(match)
    proc = _start(config)
    deadline = time.monotonic() + TIMEOUT
    try:
        while not hold.reached.wait(0.05):
            if proc.poll() is not None:
                pytest.fail(f"the run ended before {moment}: {proc.stderr.read() if proc.stderr else ''}")
            if time.monotonic() > deadline:
                pytest.fail(f"the run never reached {moment}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        hold.release()
        if proc.poll() is None:
            proc.kill()
    held = [r for r in crm.fake.requests if r.held and r.path == hold.path]
    assert held and held[-1].applied and held[-1].status < 300, f"{moment}: the held request was not applied"


def test_sigkill_inside_the_crm_write_phase_at_five_moments(crm: CrmUnderTest, tmp_path: Path) -> None:
    files = generate_torture(tmp_path / "data", messages=1200, seed=9).files
    settings = crm.settings()
    if crm.name == "salesforce":
        settings["bulk_threshold"] = 500  # the messages go out as one Bulk API 2.0 job
    config = write_config(
        tmp_path, files, crm=crm.name, crm_settings=settings, extra=TORTURE_ROUTING, engine="max_attempts = 30"
    )
    for moment, match in MOMENTS[crm.name]:
        _kill_at(crm, config, moment, match)
    final = _start(config)
    assert final.wait(timeout=TIMEOUT) == 0, final.stderr.read() if final.stderr else ""
    if crm.name == "salesforce":
        # The job created before the 4th kill never had its id read: it stays Open, empty. The
        # job completed before the 5th kill is read back by the last run, never submitted again.
        jobs = crm.fake.jobs()
        assert [j["state"] for j in jobs] == ["Open", "JobComplete"], jobs
        assert jobs[0]["numberRecordsProcessed"] == 0
    assert_torture_landed(crm, expected_torture(files))
    assert_state_settled(tmp_path / "state.db")
