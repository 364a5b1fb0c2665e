"""localcrm beyond the conformance suite: its own rules, schema, replies, erase, reopening."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from scrm.engine import mapping
from scrm_localcrm import LocalCrm, LocalCrmReader, add_reply, check_database, mark_reply_sent
from scrm_localcrm.schema import CURRENT_VERSION, SPECS

from scrm_core import AdapterContext, CrmObject, CrmOperation, OperationResult, PendingReply, external_key
from scrm_core.errors import FatalError
from scrm_core.fitting import is_cut
from scrm_core.models import Direction, Message, SocialProfile
from scrm_core.testing.crm import case_op, contact_op, lead_op, message_op, profile_op


def make(tmp_path: Path, path: str = "crm.db") -> LocalCrm:
    return LocalCrm(LocalCrm.Settings(path=path), AdapterContext(name="crm", base_dir=tmp_path))


def run(tmp_path: Path, scenario: Callable[[LocalCrm], Awaitable[None]]) -> None:
    async def main() -> None:
        crm = make(tmp_path)
        await crm.start()
        try:
            await scenario(crm)
        finally:
            await crm.close()

    asyncio.run(main())


def read(tmp_path: Path, obj: CrmObject, key: str) -> dict[str, Any] | None:
    with LocalCrmReader(tmp_path / "crm.db") as crm:
        return crm.record(obj, key)


async def seed(crm: LocalCrm, n: int = 1) -> dict[str, str]:
    contact, profile, case = contact_op(n), profile_op(n, contact=contact_op(n).external_key), case_op(n)
    for op in (contact, profile, case):
        assert all(r.ok for r in await crm.apply([op]))
    return {"contact": contact.external_key, "profile": profile.external_key, "case": case.external_key}


def op(obj: CrmObject, key: str, refs: dict[str, str] | None = None, **fields: Any) -> CrmOperation:
    return CrmOperation(object=obj, external_key=key, fields=fields, refs=refs or {})


def failed(results: list[OperationResult]) -> dict[str, str | None]:
    return {r.external_key: r.error for r in results if not r.ok}


# ---------------------------------------------------------------- upserts


def test_partial_updates_touch_only_the_fields_they_carry(tmp_path: Path) -> None:
    async def scenario(crm: LocalCrm) -> None:
        refs = await seed(crm)
        key = profile_op(1).external_key
        await crm.apply([op(CrmObject.profile, key, followers=99)])
        await crm.apply([message_op(1, refs=refs, text="original")])
        edit = op(CrmObject.message, message_op(1).external_key, text="edited", edited_at="2024-05-02T00:00:00+00:00")
        assert not failed(await crm.apply([edit]))

    run(tmp_path, scenario)
    profile = read(tmp_path, CrmObject.profile, profile_op(1).external_key)
    assert profile is not None
    assert profile["followers"] == 99 and profile["handle"] == "person1" and profile["verified"] is False
    assert profile["_refs"] == {"contact": contact_op(1).external_key}  # refs not in the op are kept too
    message = read(tmp_path, CrmObject.message, message_op(1).external_key)
    assert message is not None
    assert message["text"] == "edited" and message["edited_at"] == "2024-05-02T00:00:00+00:00"
    assert message["labels"] == ["intent:complaint"] and message["sentiment_score"] == -0.4
    assert message["created_at"] == "2024-05-01T12:00:00+00:00" and message["deleted"] is False


def test_mixed_shapes_in_one_batch(tmp_path: Path) -> None:
    async def scenario(crm: LocalCrm) -> None:
        refs = await seed(crm)
        await crm.apply([message_op(n, refs=refs) for n in range(3)])
        batch = [
            message_op(3, refs=refs),  # new, full
            op(CrmObject.message, message_op(0).external_key, text="", deleted=True),  # redaction
            op(CrmObject.message, message_op(1).external_key, text="edit", edited_at="2024-05-02T00:00:00Z"),
            message_op(4, refs={"profile": refs["profile"]}),  # new, other refs
        ]
        results = await crm.apply(batch)
        assert not failed(results)
        assert [r.crm_id for r in results] == ["4", "1", "2", "5"]

    run(tmp_path, scenario)
    with LocalCrmReader(tmp_path / "crm.db") as db:
        assert db.count("messages") == 5
        assert db.message(message_op(0).external_key)["text"] == ""  # type: ignore[index]
        assert db.message(message_op(4).external_key)["_refs"] == {"profile": profile_op(1).external_key}  # type: ignore[index]


def test_one_shape_mixing_new_existing_and_refused_records(tmp_path: Path) -> None:
    # One plan for the whole batch, but not the all-new or all-existing fast path: each
    # result still names its own record and id, and a refused record writes nothing.
    async def scenario(crm: LocalCrm) -> None:
        refs = await seed(crm)
        assert [r.crm_id for r in await crm.apply([message_op(n, refs=refs) for n in (1, 3)])] == ["1", "2"]
        batch = [message_op(n, refs=refs, text=f"v2 of {n}") for n in range(1, 6)]
        batch[3] = message_op(4, refs={**refs, "contact": "scrm:person:nobody"}, text="v2 of 4")
        results = await crm.apply(batch)
        assert [r.external_key for r in results] == [o.external_key for o in batch]
        ids = [r.crm_id for r in results]
        assert (ids[0], ids[2], ids[3]) == ("1", "2", None)  # existing records keep their ids
        assert ids[1] and ids[4] and 2 < int(ids[1]) < int(ids[4])  # new ones get ids never given out
        assert not results[3].ok and results[3].retryable and "scrm:person:nobody not found" in (results[3].error or "")

    run(tmp_path, scenario)
    with LocalCrmReader(tmp_path / "crm.db") as db:
        assert db.count("messages") == 4
        assert db.message(message_op(4).external_key) is None
        assert [db.message(message_op(n).external_key)["text"] for n in (1, 2, 3, 5)] == [  # type: ignore[index]
            "v2 of 1",
            "v2 of 2",
            "v2 of 3",
            "v2 of 5",
        ]


def test_unknown_fields_go_to_extra_and_are_merged(tmp_path: Path) -> None:
    key = contact_op(1).external_key

    async def scenario(crm: LocalCrm) -> None:
        first = op(CrmObject.contact, key, name="Ann", tier="gold", score=3, id=12345)
        assert not failed(await crm.apply([first]))
        assert not failed(await crm.apply([op(CrmObject.contact, key, score=4, owner={"team": "emea"})]))

    run(tmp_path, scenario)
    record = read(tmp_path, CrmObject.contact, key)
    assert record is not None
    assert record["name"] == "Ann"
    assert (record["tier"], record["score"], record["owner"]) == ("gold", 4, {"team": "emea"})
    assert record["_id"] == 1 and record["id"] == 12345  # a field named like a frame column cannot move the row


def test_upsert_keeps_id_and_creation_time(tmp_path: Path) -> None:
    async def scenario(crm: LocalCrm) -> None:
        (a,) = await crm.apply([contact_op(1)])
        (b,) = await crm.apply([contact_op(1, name="Renamed")])
        assert a.crm_id == b.crm_id == "1"

    run(tmp_path, scenario)
    with LocalCrmReader(tmp_path / "crm.db") as db:
        (row,) = db.rows("contacts")
        assert row["name"] == "Renamed" and row["crm_created_at"] <= row["crm_updated_at"]


# ---------------------------------------------------------------- rules a real CRM enforces


def test_batch_contract_violations_raise_value_error(tmp_path: Path) -> None:
    async def scenario(crm: LocalCrm) -> None:
        with pytest.raises(ValueError, match="limit is 500"):
            await crm.apply([contact_op(n) for n in range(501)])
        with pytest.raises(ValueError, match="one object type"):
            await crm.apply([contact_op(1), profile_op(1)])
        with pytest.raises(ValueError, match="same external key"):
            await crm.apply([contact_op(1), contact_op(2), contact_op(1, name="again")])
        assert await crm.counts() == dict.fromkeys(("contacts", "profiles", "cases", "leads", "messages"), 0)

    run(tmp_path, scenario)


def test_a_text_over_the_limit_is_cut_with_its_full_length_not_refused(tmp_path: Path) -> None:
    async def scenario(crm: LocalCrm) -> None:
        refs = await seed(crm)
        batch = [message_op(1, refs=refs, text="x" * 40_123), message_op(2, refs=refs, text="y" * 32_000)]
        results = await crm.apply(batch)
        assert failed(results) == {} and all(r.ok for r in results)
        # An edit is held to the same limit.
        edit = op(CrmObject.message, batch[1].external_key, text="z" * 32_001)
        assert failed(await crm.apply([edit])) == {}

    run(tmp_path, scenario)
    first = read(tmp_path, CrmObject.message, message_op(1).external_key)["text"]  # type: ignore[index]
    edited = read(tmp_path, CrmObject.message, message_op(2).external_key)["text"]  # type: ignore[index]
    assert len(first) <= 32_000 and first.startswith("xxx") and is_cut(first) == 40_123
    assert len(edited) <= 32_000 and is_cut(edited) == 32_001


def test_required_fields_name_the_field_and_the_record(tmp_path: Path) -> None:
    async def scenario(crm: LocalCrm) -> None:
        results = await crm.apply([op(CrmObject.contact, "scrm:c:1", email="a@b.c"), contact_op(2)])
        assert results[0].error == "new contact scrm:c:1 is missing name (a new contact needs name)"
        assert not results[0].retryable and results[1].ok
        results = await crm.apply([op(CrmObject.profile, "scrm:x:1", network="x")])
        assert "missing account_id" in (results[0].error or "")
        # An existing record may be updated without them, but not have them cleared.
        ok = await crm.apply([op(CrmObject.contact, contact_op(2).external_key, email="new@example.org")])
        assert ok[0].ok
        cleared = await crm.apply([op(CrmObject.contact, contact_op(2).external_key, name=None)])
        assert cleared[0].error == f"contact {contact_op(2).external_key}: name cannot be set to null"

    run(tmp_path, scenario)


def test_wrong_types_and_unknown_refs_are_record_errors(tmp_path: Path) -> None:
    async def scenario(crm: LocalCrm) -> None:
        refs = await seed(crm)
        batch = [
            message_op(1, refs=refs, created_at="yesterday"),
            message_op(2, refs=refs, labels="not-a-list"),
            message_op(3, refs=refs, sentiment_score="bad"),
            message_op(4, refs={**refs, "owner": "scrm:user:1"}),
            message_op(5, refs=refs, deleted=None, labels=("a", "b"), message_id=5),  # convertible: fine
        ]
        errors = failed(await crm.apply(batch))
        assert "created_at is not an ISO-8601 time: 'yesterday'" in (errors[batch[0].external_key] or "")
        assert "labels must be a list, got str" in (errors[batch[1].external_key] or "")
        assert "sentiment_score must be a number" in (errors[batch[2].external_key] or "")
        assert "unknown reference(s) owner" in (errors[batch[3].external_key] or "")
        assert batch[4].external_key not in errors

    run(tmp_path, scenario)
    five = read(tmp_path, CrmObject.message, message_op(5).external_key)
    assert five is not None and five["labels"] == ["a", "b"] and five["message_id"] == "5"


def test_datetimes_are_stored_as_iso_text(tmp_path: Path) -> None:
    async def scenario(crm: LocalCrm) -> None:
        refs = await seed(crm)
        when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
        assert not failed(await crm.apply([message_op(1, refs=refs, created_at=when)]))

    run(tmp_path, scenario)
    assert read(tmp_path, CrmObject.message, message_op(1).external_key)["created_at"] == "2024-05-01T12:00:00+00:00"  # type: ignore[index]


# ---------------------------------------------------------------- replies


def test_pending_replies_cursor(tmp_path: Path) -> None:
    db = tmp_path / "crm.db"

    async def scenario(crm: LocalCrm) -> None:
        refs = await seed(crm)
        await crm.apply([message_op(1, refs=refs, conversation=1), message_op(2, refs=refs, conversation=1)])
        await crm.apply([message_op(3, refs=refs, conversation=1, direction="outbound")])
        assert await crm.pending_replies(None) == ([], None)

        first = add_reply(db, case_op(1).external_key, "Sorry! We are on it.")  # by case key
        second = add_reply(db, "conformance:root1", "Fixed.", in_reply_to="m1")  # by conversation key
        replies, cursor = await crm.pending_replies(None)
        assert [(r.crm_id, r.conversation_key, r.in_reply_to, r.text) for r in replies] == [
            (str(first), "conformance:root1", "m2", "Sorry! We are on it."),  # latest inbound message
            (str(second), "conformance:root1", "m1", "Fixed."),
        ]
        assert cursor == str(second)
        assert await crm.pending_replies(cursor) == ([], cursor)

        third = add_reply(db, "1", "By case id.")
        mark_reply_sent(db, third, network_message_id="n-99")  # sent already: not pending
        fourth = add_reply(db, "conformance:root1", "Anything else?")
        replies, cursor = await crm.pending_replies(cursor)
        assert [r.crm_id for r in replies] == [str(fourth)] and cursor == str(fourth)

        sent = PendingReply(crm_id=str(first), conversation_key="conformance:root1", in_reply_to="m2", text="x")
        await crm.reply_sent(sent, "scrm:conformance:n-100", "n-100")
        with pytest.raises(ValueError, match="cursor"):
            await crm.pending_replies("not-a-number")

    run(tmp_path, scenario)
    with LocalCrmReader(db) as crm:
        rows = {r["id"]: r for r in crm.rows("outbound_replies")}
    assert rows[1]["status"] == "sent" and rows[1]["network_message_id"] == "n-100" and rows[1]["case_id"] == 1
    assert rows[3]["status"] == "sent" and rows[2]["status"] == "pending"


def sent_message(reply: PendingReply, network_id: str) -> Message:
    """The message the network adapter reports after posting ``reply`` from the brand's account."""
    network, _, root = reply.conversation_key.partition(":")
    return Message(
        network=network,
        id=network_id,
        author=SocialProfile(network=network, account_id="brand", handle="brand"),
        text=reply.text,
        created_at=datetime(2024, 5, 1, 13, 0, tzinfo=UTC),
        thread_root_id=root,
        parent_id=reply.in_reply_to,
        direction=Direction.outbound,
    )


def test_an_agents_reply_comes_back_once_as_the_sent_message(tmp_path: Path) -> None:
    db = tmp_path / "crm.db"
    brand = SocialProfile(network="conformance", account_id="brand", handle="brand")

    async def agent_replies_and_scrm_sends(crm: LocalCrm) -> Message:
        refs = await seed(crm)
        await crm.apply([message_op(1, refs=refs, conversation=1)])
        for profile_op_ in mapping.profile_ops(brand, brand.key):
            assert not failed(await crm.apply([profile_op_]))
        reply_id = add_reply(db, "conformance:root1", "A new kettle is on its way.", in_reply_to="m1")
        (reply,), cursor = await crm.pending_replies(None)
        assert (reply.crm_id, reply.text, reply.in_reply_to) == (str(reply_id), "A new kettle is on its way.", "m1")
        assert await crm.pending_replies(cursor) == ([], cursor)
        message = sent_message(reply, "n-500")
        for _ in range(2):  # a crash after the first call repeats it
            await crm.reply_sent(reply, external_key(message.key), message.id)
        sync_back = mapping.message_op(message, brand.key, case_open=True)
        assert not failed(await crm.apply([sync_back]))
        assert await crm.pending_replies(None) == ([], None)
        return message

    message: Message | None = None

    async def first(crm: LocalCrm) -> None:
        nonlocal message
        message = await agent_replies_and_scrm_sends(crm)

    run(tmp_path, first)
    assert message is not None

    async def restarted(crm: LocalCrm) -> None:  # a new adapter applies the same sync-back again
        assert not failed(await crm.apply([mapping.message_op(message, brand.key, case_open=True)]))
        assert await crm.pending_replies(None) == ([], None)

    run(tmp_path, restarted)
    with LocalCrmReader(db) as crm:
        (row,) = crm.rows("outbound_replies")
        sent = [m for m in crm.rows("messages") if m["message_id"] == "n-500"]
        assert crm.count("messages") == 2
    assert (row["status"], row["network_message_id"]) == ("sent", "n-500")
    assert len(sent) == 1
    assert (sent[0]["external_key"], sent[0]["direction"], sent[0]["text"]) == (
        "scrm:conformance:n-500",
        "outbound",
        "A new kettle is on its way.",
    )
    assert sent[0]["parent_id"] == "m1"


def test_reply_sent_for_a_row_that_is_gone_only_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(crm: LocalCrm) -> None:
        gone = PendingReply(crm_id="404", conversation_key="conformance:root1", in_reply_to="m1", text="hi")
        await crm.reply_sent(gone, "scrm:conformance:n-1", "n-1")

    with caplog.at_level("WARNING"):
        run(tmp_path, scenario)
    assert "row is gone" in caplog.text


def test_add_reply_needs_something_to_answer(tmp_path: Path) -> None:
    run(tmp_path, lambda crm: asyncio.sleep(0))  # creates an empty database
    with pytest.raises(LookupError, match="no inbound message"):
        add_reply(tmp_path / "crm.db", "mastodon:404", "hello?")
    with pytest.raises(ValueError, match="text"):
        add_reply(tmp_path / "crm.db", "mastodon:404", "  ", in_reply_to="1")


# ---------------------------------------------------------------- erase


def test_erase_removes_children_first_and_unlinks_the_rest(tmp_path: Path) -> None:
    async def scenario(crm: LocalCrm) -> None:
        refs1, refs2 = await seed(crm, 1), await seed(crm, 2)
        shared = {**refs2, "contact": refs1["contact"]}  # a message of person 2 that points at contact 1
        await crm.apply([message_op(1, refs=refs1), message_op(2, refs=refs2), message_op(3, refs=shared)])
        await crm.apply([lead_op(1, contact=refs1["contact"])])
        # Erase person 1 (contact, profile, case, lead and message at once); nothing fails on references.
        erased = await crm.erase(
            {
                CrmObject.contact: [refs1["contact"]],
                CrmObject.profile: [refs1["profile"]],
                CrmObject.case: [refs1["case"]],
                CrmObject.lead: [lead_op(1).external_key],
                CrmObject.message: [message_op(1).external_key, "scrm:never:existed"],
            }
        )
        assert erased == 5
        # Erasing a contact alone unlinks what still points at it.
        assert await crm.erase({CrmObject.contact: [refs2["contact"]]}) == 1
        assert await crm.erase({CrmObject.case: [refs2["case"]]}) == 1
        (new,) = await crm.apply([contact_op(3)])
        assert new.crm_id == "3", "ids are never reused after an erase"

    run(tmp_path, scenario)
    with LocalCrmReader(tmp_path / "crm.db") as db:
        assert db.counts() == {
            "contacts": 1,
            "profiles": 1,
            "cases": 0,
            "leads": 0,
            "messages": 2,
            "outbound_replies": 0,
            "label_corrections": 0,
        }
        assert db.record(CrmObject.profile, profile_op(2).external_key)["_refs"] == {}  # type: ignore[index]
        assert db.message(message_op(3).external_key)["_refs"] == {"profile": profile_op(2).external_key}  # type: ignore[index]
        assert db.message(message_op(2).external_key)["_refs"] == {"profile": profile_op(2).external_key}  # type: ignore[index]
        assert db.message(message_op(1).external_key) is None


# ---------------------------------------------------------------- lifecycle, schema, check


def test_reopen_keeps_data(tmp_path: Path) -> None:
    async def first(crm: LocalCrm) -> None:
        refs = await seed(crm)
        await crm.apply([message_op(n, refs=refs) for n in range(10)])

    async def second(crm: LocalCrm) -> None:
        results = await crm.apply([message_op(n, text="again") for n in range(10, 12)] + [message_op(3)])
        assert [r.crm_id for r in results] == ["11", "12", "4"]
        assert (await crm.counts())["messages"] == 12

    run(tmp_path, first)
    run(tmp_path, second)


def test_db_work_runs_in_one_worker_thread(tmp_path: Path) -> None:
    import threading

    async def scenario(crm: LocalCrm) -> None:
        assert crm._writer is not None
        # The connection belongs to the worker thread: using it from the loop's thread fails.
        with pytest.raises(sqlite3.ProgrammingError):
            crm._writer.conn.execute("SELECT 1")
        names = {await crm._run(lambda: threading.current_thread().name) for _ in range(5)}
        assert len(names) == 1 and names.pop().startswith("localcrm-")

    run(tmp_path, scenario)


def test_apply_before_start_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="start"):
        asyncio.run(make(tmp_path).apply([contact_op(1)]))


def test_tables_match_the_field_specs(tmp_path: Path) -> None:
    run(tmp_path, lambda crm: asyncio.sleep(0))
    con = sqlite3.connect(tmp_path / "crm.db")
    try:
        for spec in SPECS.values():
            columns = {row[1] for row in con.execute(f"PRAGMA table_info({spec.table})")}
            expected = {"id", "external_key", "extra", "crm_created_at", "crm_updated_at", *spec.columns}
            expected |= {f"{ref}_id" for ref in spec.refs}
            assert columns == expected, spec.table
        assert con.execute("SELECT max(version) FROM localcrm_schema").fetchone()[0] == CURRENT_VERSION
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        con.close()


def test_newer_schema_is_refused_and_reported(tmp_path: Path) -> None:
    run(tmp_path, lambda crm: asyncio.sleep(0))
    con = sqlite3.connect(tmp_path / "crm.db")
    con.execute("INSERT INTO localcrm_schema VALUES (?, 'later')", (CURRENT_VERSION + 1,))
    con.commit()
    con.close()
    with pytest.raises(FatalError, match="pip install -U scrm-localcrm"):
        run(tmp_path, lambda crm: asyncio.sleep(0))
    (problem,) = asyncio.run(make(tmp_path).check())
    assert "newer than this scrm-localcrm" in problem.problem and problem.fix == "pip install -U scrm-localcrm"


def test_check_reports_unusable_paths(tmp_path: Path) -> None:
    assert asyncio.run(make(tmp_path).check()) == []  # nothing yet, but it can be created
    (tmp_path / "afile").write_text("x")
    (problem,) = check_database(tmp_path / "afile" / "crm.db")
    assert "is a file" in problem.problem and "mv" in problem.fix
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    (problem,) = check_database(tmp_path / "junk.db")
    assert "not a localcrm database" in problem.problem
    with pytest.raises(FatalError, match="is not a localcrm database"):
        asyncio.run(make(tmp_path, "junk.db").start())


def test_start_creates_the_folder(tmp_path: Path) -> None:
    async def main() -> None:
        crm = make(tmp_path, "deep/er/crm.db")
        await crm.start()
        await crm.close()

    asyncio.run(main())
    assert (tmp_path / "deep" / "er" / "crm.db").exists()


def test_refs_to_an_erased_record_fail_until_it_is_back(tmp_path: Path) -> None:
    async def scenario(crm: LocalCrm) -> None:
        refs = await seed(crm)
        assert not failed(await crm.apply([message_op(1, refs=refs)]))  # the profile's id is now cached
        await crm.erase({CrmObject.profile: [refs["profile"]]})
        (result,) = await crm.apply([message_op(2, refs=refs)])
        assert not result.ok and result.retryable and result.error == f"profile {refs['profile']} not found"
        (profile,) = await crm.apply([profile_op(1)])
        assert profile.crm_id == "2"
        assert not failed(await crm.apply([message_op(2, refs=refs)]))

    run(tmp_path, scenario)
    assert (
        read(tmp_path, CrmObject.message, message_op(2).external_key)["_refs"]["profile"] == profile_op(1).external_key
    )  # type: ignore[index]


def test_values_sqlite_cannot_store_fail_only_their_record(tmp_path: Path) -> None:
    from scrm_core import Direction

    async def scenario(crm: LocalCrm) -> None:
        refs = await seed(crm)
        batch = [
            message_op(1, refs=refs),
            message_op(2, refs=refs, text="broken \ud800 surrogate"),  # cannot be encoded as UTF-8
            message_op(3, refs=refs, direction=Direction.outbound),  # a StrEnum is a string
        ]
        results = await crm.apply(batch)
        assert results[0].ok and results[2].ok and [r.crm_id for r in results] == ["1", None, "3"]
        assert not results[1].ok and "UnicodeEncodeError" in (results[1].error or "")
        profiles = [op(CrmObject.profile, "scrm:x:big", network="x", account_id="big", followers=2**70)]
        (big,) = await crm.apply(profiles)
        assert big.error == "profile scrm:x:big: followers is out of range: 1180591620717411303424"

    run(tmp_path, scenario)
    with LocalCrmReader(tmp_path / "crm.db") as db:
        assert db.count("messages") == 2
        assert db.message(message_op(3).external_key)["direction"] == "outbound"  # type: ignore[index]


def test_a_refused_value_in_an_update_batch_fails_only_its_record_and_keeps_its_old_value(tmp_path: Path) -> None:
    # Updates are written without savepoints; a refusal rolls the batch back and it is
    # written again under savepoints, so the other records of the batch still change.
    async def scenario(crm: LocalCrm) -> None:
        refs = await seed(crm)
        assert not failed(await crm.apply([message_op(n, refs=refs, text=f"first {n}") for n in (1, 2, 3)]))
        edits = [op(CrmObject.message, message_op(n).external_key, text=f"second {n}") for n in (1, 2, 3)]
        edits[1] = op(CrmObject.message, message_op(2).external_key, text="broken \ud800 surrogate")
        results = await crm.apply(edits)
        assert [r.ok for r in results] == [True, False, True] and [r.crm_id for r in results] == ["1", None, "3"]
        assert "UnicodeEncodeError" in (results[1].error or "")
        assert texts() == ["second 1", "first 2", "second 3"]
        # The next batch is written as usual.
        assert not failed(await crm.apply([op(CrmObject.message, message_op(2).external_key, text="third 2")]))
        assert texts() == ["second 1", "third 2", "second 3"]

    def texts() -> list[str]:
        with LocalCrmReader(tmp_path / "crm.db") as db:
            return [db.message(message_op(n).external_key)["text"] for n in (1, 2, 3)]  # type: ignore[index]

    run(tmp_path, scenario)


def test_batches_guessed_new_still_upsert_and_refuse_only_bad_values(tmp_path: Path) -> None:
    # After a batch of new messages the next is inserted without looking its keys up first
    # (messages are nearly always new): existing ones among them are updated all the same,
    # keeping their ids, and a value SQLite refuses still fails only its own record.
    async def scenario(crm: LocalCrm) -> None:
        refs = await seed(crm)
        first = await crm.apply([message_op(n, refs=refs, text=f"first {n}") for n in (1, 2)])
        assert [r.crm_id for r in first] == ["1", "2"]
        again = await crm.apply([message_op(n, refs=refs, text=f"second {n}") for n in (2, 3, 4)])
        assert [r.ok for r in again] == [True] * 3 and again[0].crm_id == "2"
        new_ids = {again[1].crm_id, again[2].crm_id}
        assert len(new_ids) == 2 and "1" not in new_ids and "2" not in new_ids
        assert not failed(await crm.apply([message_op(n, refs=refs) for n in (7, 8)]))  # all new again
        bad = [message_op(n, refs=refs, text="ok") for n in (5, 6)]
        bad[1] = message_op(6, refs=refs, text="broken \ud800 surrogate")
        results = await crm.apply(bad)
        assert results[0].ok and not results[1].ok and "UnicodeEncodeError" in (results[1].error or "")

    run(tmp_path, scenario)
    with LocalCrmReader(tmp_path / "crm.db") as db:
        assert db.count("messages") == 7
        texts = {n: db.message(message_op(n).external_key)["text"] for n in (1, 2, 3, 4, 5)}  # type: ignore[index]
        assert texts == {1: "first 1", 2: "second 2", 3: "second 3", 4: "second 4", 5: "ok"}
        assert db.message(message_op(2).external_key)["_id"] == 2  # type: ignore[index]


def test_unvalidated_operations_with_plain_strings_work(tmp_path: Path) -> None:
    # The engine may build merged operations with model_construct(): object is then a str.
    async def scenario(crm: LocalCrm) -> None:
        ops = [
            CrmOperation.model_construct(object="contact", external_key=f"scrm:c:{n}", fields={"name": "A"}, refs={})
            for n in range(3)
        ]
        assert not failed(await crm.apply(ops))
        with pytest.raises(ValueError, match="contact, profile"):
            await crm.apply([*ops[:1], CrmOperation.model_construct(object="profile", external_key="p", fields={})])

    run(tmp_path, scenario)


def test_ref_cache_overflow_keeps_the_refs_the_batch_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import scrm_localcrm.writer

    monkeypatch.setattr(scrm_localcrm.writer, "_MAX_CACHED_REFS", 2)

    async def scenario(crm: LocalCrm) -> None:
        contacts = [contact_op(n) for n in range(1, 4)]
        assert not failed(await crm.apply(contacts))
        refs = [{"contact": c.external_key} for c in contacts]
        assert not failed(await crm.apply([profile_op(1, contact=refs[0]["contact"])]))  # contact 1 now cached
        # Contact 1 from the cache and two more looked up: over the limit, the cache starts over.
        messages = [message_op(n, refs=refs[n - 1]) for n in range(1, 4)]
        assert not failed(await crm.apply(messages))

    run(tmp_path, scenario)
    for n in range(1, 4):
        message = read(tmp_path, CrmObject.message, message_op(n).external_key)
        assert message is not None and message["_refs"] == {"contact": contact_op(n).external_key}


def test_ref_cache_stays_within_its_bound_and_keeps_the_latest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A long backfill refers to ever more contacts: the ids kept in memory stay bounded, the
    # oldest going first (not all at once: a contact referred to a batch ago is still there),
    # and refs to records no longer cached are looked up, not lost.
    import scrm_localcrm.writer

    monkeypatch.setattr(scrm_localcrm.writer, "_MAX_CACHED_REFS", 8)
    contacts = [contact_op(n) for n in range(1, 31)]
    sizes: list[int] = []

    async def scenario(crm: LocalCrm) -> None:
        assert not failed(await crm.apply(contacts))
        cache = crm._started()._ref_ids
        for start in range(0, 30, 3):  # three messages per batch, each by a new contact
            batch = [message_op(n, refs={"contact": contacts[n - 1].external_key}) for n in range(start + 1, start + 4)]
            assert not failed(await crm.apply(batch))
            sizes.append(len(cache["contacts"]))
            if start:  # the previous batch's contacts are still cached
                assert {contacts[n - 1].external_key for n in range(start - 2, start + 1)} <= cache["contacts"].keys()
        assert contacts[0].external_key not in cache["contacts"]
        # An early contact again: looked up, then cached anew.
        assert not failed(await crm.apply([message_op(99, refs={"contact": contacts[0].external_key})]))
        assert contacts[0].external_key in cache["contacts"]

    run(tmp_path, scenario)
    assert max(sizes) <= 8
    for n, contact in ((1, 1), (15, 15), (30, 30), (99, 1)):
        message = read(tmp_path, CrmObject.message, message_op(n).external_key)
        assert message is not None and message["_refs"] == {"contact": contact_op(contact).external_key}


def test_none_values_are_stored_as_null_not_as_column_defaults(tmp_path: Path) -> None:
    async def scenario(crm: LocalCrm) -> None:
        refs = await seed(crm)
        # direction, visibility and labels have column defaults; None in every op of the batch
        # (a column of only None) and in some ops only must both end up NULL.
        batch = [message_op(n, refs=refs, direction=None, labels=None, parent_id=None) for n in (1, 2)]
        batch.append(message_op(3, refs=refs, direction=None, parent_id="m1"))
        assert not failed(await crm.apply(batch))
        # Updates: a field set to None in every op is cleared; one set in some ops only too.
        updates = [
            op(CrmObject.message, message_op(n).external_key, url=None, language=lang)
            for n, lang in ((1, "en"), (3, None))
        ]
        assert not failed(await crm.apply(updates))

    run(tmp_path, scenario)
    with LocalCrmReader(tmp_path / "crm.db") as db:
        rows = {
            r["message_id"]: r
            for r in db._conn.execute("SELECT message_id, direction, labels, parent_id, url, language FROM messages")
        }
    assert [tuple(rows[f"m{n}"]) for n in (1, 2, 3)] == [
        ("m1", None, None, None, None, "en"),
        ("m2", None, None, None, message_op(2).fields["url"], message_op(2).fields["language"]),
        ("m3", None, '["intent:complaint"]', "m1", None, None),
    ]
