"""Agents' intent corrections in HubSpot: read back once each, whatever order the search index shows them in."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from scrm_hubspot import HubSpotCrm
from scrm_hubspot.corrections import PAGE, CorrectionCursor, Position
from scrm_hubspot.schema import INTENT_CORRECTION, INTENT_VALUES
from scrm_hubspot.testing import FakeHubSpot

from scrm_core import CrmOperation, LabelCorrection
from scrm_core.errors import FatalError, RetryableError
from scrm_core.testing.crm import case_op, contact_op, message_op

from .conftest import make_crm, run

Install = Callable[..., FakeHubSpot]


async def seed(crm: HubSpotCrm, messages: int = 2, **fields: Any) -> dict[str, str]:
    contact = contact_op(1)
    case = case_op(1, contact=contact.external_key)
    refs = {"contact": contact.external_key, "case": case.external_key}
    for op in (contact, case):
        assert all(r.ok for r in await crm.apply([op]))
    ops = [message_op(n, refs=refs, conversation=1, **fields) for n in range(1, messages + 1)]
    for start in range(0, len(ops), 100):
        assert all(r.ok for r in await crm.apply(ops[start : start + 100]))
    return refs


def note_id(fake: FakeHubSpot, n: int) -> str:
    note = fake.find("notes", "scrm_key", f"scrm:conformance:m{n}")
    assert note is not None
    return note["hs_object_id"]


def correct(fake: FakeHubSpot, n: int, label: str) -> None:
    fake.update("notes", note_id(fake, n), {INTENT_CORRECTION: label})


def keys(found: list[LabelCorrection]) -> list[tuple[str, str]]:
    return [(c.message_key, c.label) for c in found]


def test_a_correction_the_index_shows_late_is_still_read_once(hubspot: Install, url: str, tmp_path: Path) -> None:
    fake = hubspot()
    crm = make_crm(url, tmp_path)

    async def scenario() -> None:
        await seed(crm)
        with fake.hold_index():
            correct(fake, 1, "complaint")  # made first, indexed late
        correct(fake, 2, "question")
        found, cursor = await crm.label_corrections(None)
        assert keys(found) == [("conformance:m2", "question")]
        fake.release_index()
        found, cursor = await crm.label_corrections(cursor)
        assert keys(found) == [("conformance:m1", "complaint")], "older than the newest read, found by the window"
        assert found[0].text == "Message 1: my order has not arrived" and found[0].language == "en"
        assert await crm.label_corrections(cursor) == ([], cursor)

    run(scenario)


def test_more_corrections_than_a_page_come_back_once_each(hubspot: Install, url: str, tmp_path: Path) -> None:
    fake = hubspot()
    crm = make_crm(url, tmp_path)
    total = 2 * PAGE + 30

    async def scenario() -> None:
        await seed(crm, messages=total)
        for n in range(total, 0, -1):
            correct(fake, n, "praise")
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            found, cursor = await crm.label_corrections(cursor)
            if not found:
                break
            assert len(found) <= PAGE
            seen += [c.message_key for c in found]
        assert sorted(seen) == sorted(f"conformance:m{n}" for n in range(1, total + 1))
        assert len(seen) == len(set(seen)), "a correction came back twice"

    run(scenario)
    assert fake.statuses(429) == 0, "searches keep under the search API's limit"
    searches = [r for r in fake.requests if r.path.endswith("/search")]
    assert searches and all(r.status == 200 for r in searches)


def test_a_tickets_correction_carries_its_first_notes_text(hubspot: Install, url: str, tmp_path: Path) -> None:
    fake = hubspot()
    crm = make_crm(url, tmp_path)

    async def scenario() -> None:
        refs = await seed(crm, messages=0)
        root = message_op(1, refs=refs, conversation=1, message_id="root1", text="The <b>kettle</b> leaks")
        root = root.model_copy(update={"external_key": "scrm:conformance:root1"})
        assert all(r.ok for r in await crm.apply([root]))
        ticket = fake.find("tickets", "scrm_key", refs["case"])
        assert ticket is not None
        fake.update("tickets", ticket["hs_object_id"], {INTENT_CORRECTION: "complaint"})
        (found,), cursor = await crm.label_corrections(None)
        assert (found.message_key, found.label, found.text, found.crm_id) == (
            "conformance:root1",
            "complaint",
            "The <b>kettle</b> leaks",
            ticket["hs_object_id"],
        )
        # Its first message redacted: the ticket's correction teaches nothing (no subject instead).
        redact = CrmOperation(object=root.object, external_key=root.external_key, fields={"text": ""})
        assert all(r.ok for r in await crm.apply([redact]))
        fake.update("tickets", ticket["hs_object_id"], {INTENT_CORRECTION: "question"})
        (again,), _ = await crm.label_corrections(cursor)
        assert again.text == ""

    run(scenario)


def test_a_ticket_without_its_first_note_gives_its_subject(hubspot: Install, url: str, tmp_path: Path) -> None:
    fake = hubspot()
    crm = make_crm(url, tmp_path)

    async def scenario() -> None:
        refs = await seed(crm, messages=1)
        ticket = fake.find("tickets", "scrm_key", refs["case"])
        assert ticket is not None
        fake.update("tickets", ticket["hs_object_id"], {INTENT_CORRECTION: "purchase"})
        (found,), _ = await crm.label_corrections(None)
        assert (found.message_key, found.text) == ("conformance:root1", "Conformance case 1")

    run(scenario)


def test_notes_scrm_did_not_write_are_skipped_without_blocking_the_rest(
    hubspot: Install, url: str, tmp_path: Path
) -> None:
    fake = hubspot()
    crm = make_crm(url, tmp_path)

    async def scenario() -> None:
        await seed(crm, messages=1)
        fake.create("notes", {"hs_note_body": "<p>call notes</p>", "hs_timestamp": "1714564800000"})
        own = fake.find("notes", "hs_note_body", "<p>call notes</p>")
        assert own is not None
        fake.update("notes", own["hs_object_id"], {INTENT_CORRECTION: "none"})
        correct(fake, 1, "spam")
        found, cursor = await crm.label_corrections(None)
        assert keys(found) == [("conformance:m1", "spam")]
        assert await crm.label_corrections(cursor) == ([], cursor)

    run(scenario)


def test_without_the_property_check_warns_and_nothing_is_searched(hubspot: Install, url: str, tmp_path: Path) -> None:
    fake = hubspot()
    for obj in ("tickets", "notes"):
        fake.properties[obj].pop(INTENT_CORRECTION)
    crm = make_crm(url, tmp_path)

    async def scenario() -> None:
        problems = await crm.check()
        assert [(p.problem.split()[1], p.blocking) for p in problems] == [("tickets", False), ("notes", False)]
        assert all("scrm hubspot setup" in p.fix for p in problems)
        assert await crm.label_corrections(None) == ([], None)

    run(scenario)
    assert not [r for r in fake.requests if r.path.endswith("/search")]


def test_setup_creates_the_correction_property_agents_pick_from(hubspot: Install, url: str, tmp_path: Path) -> None:
    from scrm_hubspot.setup import apply_setup, plan_setup

    fake = hubspot(with_properties=False)
    crm = make_crm(url, tmp_path)

    async def scenario() -> None:
        await crm.start()
        await apply_setup(crm.api, await plan_setup(crm.api, crm.key))

    run(scenario)
    for obj in ("tickets", "notes"):
        definition = fake.properties[obj][INTENT_CORRECTION]
        assert (definition["type"], definition["fieldType"]) == ("enumeration", "select")
        assert [o["value"] for o in definition["options"]] == list(INTENT_VALUES)
    note = fake.create("notes", {"hs_timestamp": "1714564800000"})
    with pytest.raises(ValueError, match="not one of the allowed options"):
        fake.update("notes", note, {INTENT_CORRECTION: "angry"})


def search(url: str, obj: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    answer = httpx.post(
        f"{url}/crm/v3/objects/{obj}/search", json=body, headers={"Authorization": f"Bearer {FakeHubSpot.TOKEN}"}
    )
    return answer.status_code, answer.json()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_fake_search_refuses_what_hubspot_refuses(hubspot: Install, url: str) -> None:
    clock = Clock()
    hubspot(rate_limit=None, clock=clock)
    has = {"propertyName": "hs_object_id", "operator": "HAS_PROPERTY"}
    refused = {
        "past 10,000": {"limit": 100, "after": "9950"},
        "page of 201": {"limit": 201},
        "six groups": {"filterGroups": [{"filters": [has]}] * 6},
        "eleven filters": {"filterGroups": [{"filters": [has] * 11}]},
        "two sorts": {"sorts": [{"propertyName": "hs_object_id"}, {"propertyName": "hs_lastmodifieddate"}]},
        "no such property": {"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "HAS_PROPERTY"}]}]},
        "no such operator": {"filterGroups": [{"filters": [{**has, "operator": "LIKE"}]}]},
    }
    for what, body in refused.items():
        clock.now += 1  # one a second: under the search limit
        status, answer = search(url, "notes", body)
        assert (status, answer.get("category")) == (400, "VALIDATION_ERROR"), what
    clock.now += 1
    answers = [search(url, "notes", {"limit": 1}) for _ in range(6)]
    assert [status for status, _ in answers] == [200] * 5 + [429], "five searches a second, per account"
    limited = next(answer for status, answer in answers if status == 429)
    assert limited["policyName"] == "SECONDLY"


def test_a_secondly_429_waits_a_second(hubspot: Install, url: str, tmp_path: Path) -> None:
    fake = hubspot()
    crm = make_crm(url, tmp_path)

    async def scenario() -> None:
        await crm.start()
        fake._search_window.stamps.extend([fake.clock()] * 5)  # another integration spent this second
        with pytest.raises(RetryableError) as raised:
            await crm.label_corrections(None)
        assert raised.value.retry_after == 1.0 and "SECONDLY" in raised.value.operator_message

    run(scenario)
    assert fake.statuses(429) == 1


def test_a_foreign_cursor_is_refused_with_the_fix(hubspot: Install, url: str, tmp_path: Path) -> None:
    hubspot()
    with pytest.raises(FatalError, match="reset"):
        run(lambda: make_crm(url, tmp_path).label_corrections("sfl1:{}"))


def test_the_window_stays_small_and_never_drops_the_newest_time() -> None:
    handed = [(f"r{i}", 1_000_000 + 10 * (i // 10), "complaint") for i in range(50)]
    moved = Position().advanced(handed, overlap_ms=600_000, max_seen=25)
    assert moved.high == 1_000_040 and len(moved.seen) <= 25 and moved.since(600_000) == moved.floor
    crowded = Position().advanced([(f"s{i}", 7, "spam") for i in range(40)], overlap_ms=600_000, max_seen=25)
    assert len(crowded.seen) == 40
    assert CorrectionCursor.parse(CorrectionCursor(positions={"notes": moved}).dump()).positions["notes"] == moved


def test_a_property_deleted_during_the_run_stops_the_reading_not_the_run(
    hubspot: Install, url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = hubspot()
    crm = make_crm(url, tmp_path)

    async def scenario() -> None:
        refs = await seed(crm, messages=1)
        assert await crm.definitions()  # read once per run
        fake.properties["notes"].pop(INTENT_CORRECTION)
        ticket = fake.find("tickets", "scrm_key", refs["case"])
        assert ticket is not None
        fake.update("tickets", ticket["hs_object_id"], {INTENT_CORRECTION: "praise"})
        found, cursor = await crm.label_corrections(None)
        assert keys(found) == [("conformance:root1", "praise")], "the tickets' corrections still come"
        searches = len([r for r in fake.requests if r.path == "/crm/v3/objects/notes/search"])
        assert await crm.label_corrections(cursor) == ([], cursor)
        assert len([r for r in fake.requests if r.path == "/crm/v3/objects/notes/search"]) == searches

    run(scenario)
    assert "corrections on notes are not read" in caplog.text and "VALIDATION_ERROR" in caplog.text


def test_an_option_an_admin_adds_stays_in_that_account() -> None:
    first = FakeHubSpot(with_properties=True)
    first.add_option("notes", INTENT_CORRECTION, "outage")
    assert [o["value"] for o in first.properties["notes"][INTENT_CORRECTION]["options"]][-1] == "outage"
    second = FakeHubSpot(with_properties=True)
    assert [o["value"] for o in second.properties["notes"][INTENT_CORRECTION]["options"]] == list(INTENT_VALUES)
