"""Agents' intent corrections in Salesforce: read back once each, whatever order the org shows them in."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from scrm_salesforce import SalesforceCrm
from scrm_salesforce.corrections import PAGE, CorrectionCursor, Position
from scrm_salesforce.testing import INTENT_CORRECTION
from scrm_salesforce.testing.errors import RecordError

from scrm_core import LabelCorrection
from scrm_core.errors import FatalError
from scrm_core.testing.crm import message_op

from .test_salesforce import KEY, run, seed


class Clock:
    """The fake org's clock, moved by hand: saves within one 'second' share a SystemModstamp."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


def post_id(org: Any, n: int) -> str:
    record = org.fake.find("SocialPost", KEY, f"scrm:conformance:m{n}")
    assert record is not None
    return str(record["Id"])


def correct(org: Any, n: int, label: str, **kwargs: Any) -> None:
    org.fake.edit("SocialPost", post_id(org, n), {INTENT_CORRECTION: label}, **kwargs)


def keys(found: list[LabelCorrection]) -> list[tuple[str, str]]:
    return [(c.message_key, c.label) for c in found]


def test_a_post_corrected_in_the_same_second_with_a_smaller_id_is_not_missed(
    make_org: Callable[..., Any], tmp_path: Path
) -> None:
    clock = Clock()
    org = make_org(clock=clock)

    async def scenario(a: SalesforceCrm) -> None:
        refs = await seed(a)
        assert all(r.ok for r in await a.apply([message_op(n, refs=refs, conversation=1) for n in (1, 2)]))
        assert post_id(org, 1) < post_id(org, 2)
        clock.now += 5
        correct(org, 2, "complaint")
        found, cursor = await a.label_corrections(None)
        assert keys(found) == [("conformance:m2", "complaint")]
        # Same second, smaller Id: "after (stamp, Id)" would skip it; the window does not.
        correct(org, 1, "praise")
        found, cursor = await a.label_corrections(cursor)
        assert keys(found) == [("conformance:m1", "praise")]
        assert await a.label_corrections(cursor) == ([], cursor)
        # Changed again within that same second: another label, so it comes back.
        correct(org, 1, "question")
        found, cursor = await a.label_corrections(cursor)
        assert keys(found) == [("conformance:m1", "question")]
        assert await a.label_corrections(cursor) == ([], cursor)

    run(org.adapter(tmp_path), scenario)


def test_a_save_that_commits_late_with_an_earlier_stamp_is_read(make_org: Callable[..., Any], tmp_path: Path) -> None:
    clock = Clock()
    org = make_org(clock=clock)

    async def scenario(a: SalesforceCrm) -> None:
        refs = await seed(a)
        assert all(r.ok for r in await a.apply([message_op(n, refs=refs, conversation=1) for n in (1, 2)]))
        clock.now += 120
        correct(org, 2, "spam")
        found, cursor = await a.label_corrections(None)
        assert keys(found) == [("conformance:m2", "spam")]
        # A trigger-heavy save that began a minute ago commits only now.
        correct(org, 1, "purchase", modstamp=clock.now - 60)
        found, cursor = await a.label_corrections(cursor)
        assert keys(found) == [("conformance:m1", "purchase")]
        assert found[0].corrected_at is not None and found[0].corrected_at.timestamp() == clock.now - 60
        assert await a.label_corrections(cursor) == ([], cursor)

    run(org.adapter(tmp_path), scenario)


def test_more_corrections_than_a_page_come_back_once_each(make_org: Callable[..., Any], tmp_path: Path) -> None:
    clock = Clock()
    org = make_org(clock=clock)
    total = 2 * PAGE + 50

    async def scenario(a: SalesforceCrm) -> None:
        refs = await seed(a)
        ops = [message_op(n, refs=refs, conversation=1) for n in range(1, total + 1)]
        for start in range(0, total, PAGE):
            assert all(r.ok for r in await a.apply(ops[start : start + PAGE]))
        clock.now += 10
        for n in range(total, 0, -1):  # one second for all, newest Id first: the worst order
            correct(org, n, "question")
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            found, cursor = await a.label_corrections(cursor)
            if not found:
                break
            assert len(found) <= PAGE
            seen += [c.message_key for c in found]
        assert sorted(seen) == sorted(f"conformance:m{n}" for n in range(1, total + 1))
        assert len(seen) == len(set(seen)), "a correction came back twice"

    run(org.adapter(tmp_path), scenario)


def test_a_cases_correction_carries_its_first_posts_text(org: Any, tmp_path: Path) -> None:
    async def scenario(a: SalesforceCrm) -> None:
        refs = await seed(a)
        root = message_op(1, refs=refs, conversation=1, message_id="root1", text="The kettle leaks", language="en")
        root = root.model_copy(update={"external_key": "scrm:conformance:root1"})
        assert all(r.ok for r in await a.apply([root, message_op(2, refs=refs, conversation=1)]))
        case = org.fake.find("Case", KEY, refs["case"])
        org.fake.edit("Case", case["Id"], {INTENT_CORRECTION: "complaint"})
        (found,), cursor = await a.label_corrections(None)
        assert (found.message_key, found.label, found.text, found.language, found.crm_id) == (
            "conformance:root1",
            "complaint",
            "The kettle leaks",
            "en",
            case["Id"],
        )
        # A case whose first message was redacted teaches nothing (no subject instead).
        assert all(r.ok for r in await a.apply([root.model_copy(update={"fields": {"text": ""}})]))
        org.fake.edit("Case", case["Id"], {INTENT_CORRECTION: "question"})
        (again,), _ = await a.label_corrections(cursor)
        assert again.text == ""

    run(org.adapter(tmp_path), scenario)


def test_records_scrm_did_not_write_are_skipped_without_blocking_the_rest(org: Any, tmp_path: Path) -> None:
    async def scenario(a: SalesforceCrm) -> None:
        refs = await seed(a)
        assert all(r.ok for r in await a.apply([message_op(1, refs=refs, conversation=1)]))
        parent = org.fake.find("SocialPost", KEY, "scrm:conformance:m1")
        reply = org.fake.agent_reply(parent["Id"], "our own reply")  # no scrm key
        org.fake.edit("SocialPost", reply, {INTENT_CORRECTION: "none"})
        correct(org, 1, "complaint")
        found, cursor = await a.label_corrections(None)
        assert keys(found) == [("conformance:m1", "complaint")]
        assert await a.label_corrections(cursor) == ([], cursor)

    run(org.adapter(tmp_path), scenario)


def test_without_the_picklist_check_warns_and_nothing_is_queried(make_org: Callable[..., Any], tmp_path: Path) -> None:
    org = make_org()
    org.fake.remove_field("Case", INTENT_CORRECTION)
    org.fake.hide_field("SocialPost", INTENT_CORRECTION)  # field-level security: not readable

    async def scenario(a: SalesforceCrm) -> None:
        problems = await a.check()
        assert [(p.problem.split()[0], p.blocking) for p in problems] == [("SocialPost", False), ("Case", False)]
        assert all("Picklist with the values complaint, question" in p.fix for p in problems)
        queries = len(org.fake.calls(path_contains="/query"))
        assert await a.label_corrections(None) == ([], None)
        assert len(org.fake.calls(path_contains="/query")) == queries

    run(org.adapter(tmp_path), scenario)


def test_check_names_missing_picklist_values(org: Any, tmp_path: Path) -> None:
    org.fake.restrict_picklist("Case", INTENT_CORRECTION, ["complaint", "question"])
    problems = run(org.adapter(tmp_path), lambda a: a.check())
    assert [(p.problem, p.blocking) for p in problems] == [
        (f"Case.{INTENT_CORRECTION} lacks the value(s) purchase, praise, spam, none: agents cannot pick them", False)
    ]


def test_the_fake_refuses_what_salesforce_refuses(org: Any, tmp_path: Path) -> None:
    org.fake.hide_field("SocialPost", INTENT_CORRECTION)
    refused = {
        "SELECT Id FROM SocialPost WHERE Content = 'x'": "can not be filtered",
        "SELECT Id FROM SocialPost ORDER BY Content": "can not be sorted",
        "SELECT Id FROM SocialPost WHERE SystemModstamp > '2024-05-01T00:00:00Z'": "must be of type dateTime",
        "SELECT Id FROM SocialPost WHERE Id > 'abc'": "invalid ID field",
        f"SELECT {INTENT_CORRECTION} FROM SocialPost": "No such column",
        "SELECT Id FROM SocialPost WHERE SystemModstamp > null": "MALFORMED_QUERY",
    }

    async def scenario(a: SalesforceCrm) -> None:
        for soql, message in refused.items():
            with pytest.raises(FatalError, match=message):
                await a._run("query", lambda sf, q=soql: sf.query(q))

    run(org.adapter(tmp_path), scenario)
    case = org.fake.insert("Case", {"Subject": "x"})
    with pytest.raises(RecordError, match="restricted picklist"):
        org.fake.edit("Case", case, {INTENT_CORRECTION: "angry"})


def test_a_foreign_cursor_is_refused_with_the_fix(org: Any, tmp_path: Path) -> None:
    with pytest.raises(FatalError, match="reset"):
        run(org.adapter(tmp_path), lambda a: a.label_corrections("17"))


def test_the_window_stays_small_and_never_drops_the_newest_second() -> None:
    position = Position()
    handed = [(f"r{i}", 1_000_000 + 1000 * (i // 10), "complaint") for i in range(50)]  # 10 a second
    moved = position.advanced(handed, overlap_ms=300_000, max_seen=25, resolution_ms=1000)
    assert moved.high == 1_004_000
    assert 10 <= len(moved.seen) <= 25 and all(v[0] >= 1_002_000 for v in moved.seen.values())
    assert moved.since(300_000) == moved.floor
    crowded = Position().advanced(
        [(f"s{i}", 7_000, "spam") for i in range(40)], overlap_ms=300_000, max_seen=25, resolution_ms=1000
    )
    assert len(crowded.seen) == 40, "records of the newest second are kept, however many"
    text = CorrectionCursor(positions={"Case": moved}).dump()
    assert CorrectionCursor.parse(text).positions["Case"] == moved


def test_the_first_read_after_check_costs_no_request_and_misses_nothing(org: Any, tmp_path: Path) -> None:
    async def scenario(a: SalesforceCrm) -> None:
        refs = await seed(a)
        assert all(r.ok for r in await a.apply([message_op(n, refs=refs, conversation=1) for n in (1, 2)]))
        correct(org, 1, "complaint")
        assert await a.check() == []  # the describes and the first pages: one composite request
        calls = len(org.fake.requests)
        correct(org, 2, "praise")  # after the check
        found, cursor = await a.label_corrections(None)
        assert len(org.fake.requests) == calls, "answered from the pages read with the describes"
        assert keys(found) == [("conformance:m1", "complaint")]
        found, cursor = await a.label_corrections(cursor)
        assert keys(found) == [("conformance:m2", "praise")], "the correction made since comes with the next read"
        assert await a.label_corrections(cursor) == ([], cursor)

    run(org.adapter(tmp_path), scenario)


def test_a_field_deleted_during_the_run_stops_the_reading_not_the_run(
    org: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(a: SalesforceCrm) -> None:
        refs = await seed(a)
        assert all(r.ok for r in await a.apply([message_op(1, refs=refs, conversation=1)]))
        org.fake.remove_field("SocialPost", INTENT_CORRECTION)  # after the describes were read
        case = org.fake.find("Case", KEY, refs["case"])
        org.fake.edit("Case", case["Id"], {INTENT_CORRECTION: "question"})
        found, cursor = await a.label_corrections(None)
        assert keys(found) == [("conformance:root1", "question")], "the Case's corrections still come"
        queries = len(org.fake.calls(path_contains="/query"))
        assert await a.label_corrections(cursor) == ([], cursor)
        assert len(org.fake.calls(path_contains="/query")) == queries + 1, "SocialPost is not asked again"

    run(org.adapter(tmp_path), scenario)
    assert "corrections on SocialPost are not read" in caplog.text and "INVALID_FIELD" in caplog.text
