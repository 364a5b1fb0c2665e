"""An agent's reply note: handed out once, marked sent, and the sent message comes back as that note."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scrm.engine import mapping
from scrm_hubspot import HubSpotCrm
from scrm_hubspot.testing import FakeHubSpot

from scrm_core import CrmOperation, MemoryState, PendingReply, external_key
from scrm_core.models import Direction, Message, SocialProfile
from scrm_core.testing.crm import case_op, contact_op, message_op

from .conftest import make_crm, run

Install = Callable[..., FakeHubSpot]
BRAND = SocialProfile(network="conformance", account_id="brand", handle="brand")
TEXT = "A new kettle is on its way."


def sent_message(reply: PendingReply, network_id: str) -> Message:
    """The message the network adapter reports after posting ``reply`` from the brand's account."""
    network, _, root = reply.conversation_key.partition(":")
    return Message(
        network=network,
        id=network_id,
        author=BRAND,
        text=reply.text,
        created_at=datetime(2024, 5, 1, 13, 0, tzinfo=UTC),
        thread_root_id=root,
        parent_id=reply.in_reply_to,
        direction=Direction.outbound,
    )


def sync_back(message: Message) -> CrmOperation:
    """What the engine sends after the reply went out: the sender's (brand's) contact, the case."""
    return mapping.message_op(message, BRAND.key, case_open=True)


async def seed(crm: HubSpotCrm) -> None:
    """A customer's conversation with a ticket and message m1, and the brand's own contact."""
    contact = contact_op(1)
    case = case_op(1, contact=contact.external_key)
    refs = {"contact": contact.external_key, "case": case.external_key}
    ops = [contact, case, message_op(1, refs=refs, conversation=1), *mapping.profile_ops(BRAND, BRAND.key)]
    for op in ops:
        assert all(r.ok for r in await crm.apply([op]))


def agent_writes_a_reply(fake: FakeHubSpot, *, on_ticket: bool = True) -> str:
    """A note as an agent writes it in HubSpot: outbound, no scrm key, on the ticket (or naming it)."""
    ticket = fake.find("tickets", "scrm_key", "scrm:conformance:root1")
    assert ticket is not None
    props = {"hs_note_body": f"<p>{TEXT}</p>", "hs_timestamp": "1714568400000", "scrm_direction": "outbound"}
    if not on_ticket:
        props["scrm_conversation_key"] = "conformance:root1"
    links = [("tickets", ticket["hs_object_id"], 228)] if on_ticket else []
    return fake.create("notes", props, associate=links)


async def pending_once(crm: HubSpotCrm, note_id: str) -> PendingReply:
    (reply,), cursor = await crm.pending_replies(None)
    assert (reply.crm_id, reply.conversation_key, reply.in_reply_to, reply.text) == (
        note_id,
        "conformance:root1",
        "root1",
        TEXT,
    )
    assert await crm.pending_replies(cursor) == ([], cursor)
    return reply


def assert_one_note_for(fake: FakeHubSpot, note_id: str, network_id: str) -> None:
    notes = [n for n in fake.records("notes") if n.get("scrm_message_id") == network_id]
    assert [n["hs_object_id"] for n in notes] == [note_id], "the agent's note is the one record of the message"
    (note,) = notes
    assert note["scrm_key"] == f"scrm:conformance:{network_id}" and note["scrm_direction"] == "outbound"
    assert note["hs_note_body"] == TEXT and note["scrm_parent_id"] == "root1"
    assert fake.count("notes") == 2  # m1 and the reply
    ticket = fake.find("tickets", "scrm_key", "scrm:conformance:root1")
    assert ticket is not None and ticket["hs_object_id"] in fake.associations("notes", note_id, "tickets")


def test_an_agents_note_is_marked_sent_and_comes_back_as_itself(hubspot: Install, url: str, tmp_path: Path) -> None:
    fake = hubspot()
    crm = make_crm(url, tmp_path)

    async def first_process() -> Message:
        await seed(crm)
        note_id = agent_writes_a_reply(fake)
        reply = await pending_once(crm, note_id)
        message = sent_message(reply, "n-500")
        before = len(fake.requests)
        await crm.reply_sent(reply, external_key(message.key), message.id)
        costs = [len(fake.requests) - before]
        await crm.reply_sent(reply, external_key(message.key), message.id)  # repeated after a crash
        costs.append(len(fake.requests) - before - costs[0])
        # the ticket's notes (association page, then the notes: a copy of the reply?), the note's
        # update and its ticket association; the repeat is free
        assert costs == [4, 0]
        assert await crm.pending_replies(None) == ([], None)
        (result,) = await crm.apply([sync_back(message)])
        assert result.ok and result.crm_id == note_id
        assert await crm.pending_replies(None) == ([], None)
        return message

    message = run(first_process)

    async def restarted() -> str | None:
        again = make_crm(url, tmp_path)  # nothing remembered
        (result,) = await again.apply([sync_back(message)])
        assert result.ok
        assert await again.pending_replies(None) == ([], None)
        return result.crm_id

    note_id = run(restarted)
    assert_one_note_for(fake, str(note_id), "n-500")


def test_a_restart_between_reply_sent_and_the_sync_back_finds_the_note_on_its_ticket(
    hubspot: Install, url: str, tmp_path: Path
) -> None:
    """The sync-back names the brand's contact, which the agent's note is not on: its ticket finds it.

    The note named its conversation but was on no ticket: reply_sent put it there, and
    remembered the note in the adapter's durable state, so the new process updates it by id.
    """
    fake = hubspot()
    state = MemoryState()  # the state store outlives the process

    async def before_the_crash() -> tuple[str, Message]:
        crm = make_crm(url, tmp_path, state)
        await seed(crm)
        note_id = agent_writes_a_reply(fake, on_ticket=False)  # names its conversation, is on no ticket
        reply = await pending_once(crm, note_id)
        message = sent_message(reply, "n-501")
        await crm.reply_sent(reply, external_key(message.key), message.id)
        return note_id, message

    note_id, message = run(before_the_crash)

    async def after_the_restart() -> None:  # the sync-back waited in the outbox; a new process sends it
        crm = make_crm(url, tmp_path, state)
        (result,) = await crm.apply([sync_back(message)])
        assert result.ok and result.crm_id == note_id
        assert await crm.pending_replies(None) == ([], None)

    run(after_the_restart)
    assert_one_note_for(fake, note_id, "n-501")


def test_reply_sent_for_a_deleted_note_only_logs(
    hubspot: Install, url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = hubspot()
    crm = make_crm(url, tmp_path)

    async def scenario() -> None:
        await seed(crm)
        note_id = agent_writes_a_reply(fake)
        reply = await pending_once(crm, note_id)
        fake.archive("notes", note_id)
        with caplog.at_level(logging.WARNING, logger="scrm.hubspot"):
            await crm.reply_sent(reply, "scrm:conformance:n-502", "n-502")

    run(scenario)
    assert "was deleted after its reply was sent" in caplog.text
