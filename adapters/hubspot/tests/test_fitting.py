"""Records fitted to the account's properties, written once, in as few calls as the batch caps allow."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

from scrm_hubspot.testing import FakeHubSpot
from scrm_hubspot.testing.properties import STRING_LIMIT

from scrm_core import CrmObject, CrmOperation, WriteBatch
from scrm_core.fitting import is_cut, utf16_len
from scrm_core.testing.crm import case_op, contact_op, lead_op, message_op, profile_op

from .conftest import make_crm, run

Install = Callable[..., FakeHubSpot]


def writes(fake: FakeHubSpot, fragment: str) -> int:
    return sum(1 for r in fake.requests if r.method == "POST" and fragment in r.path)


def validation_errors(fake: FakeHubSpot) -> int:
    return sum(1 for r in fake.requests if r.status in (207, 400))


async def person(crm: object, n: int = 1) -> dict[str, str]:
    contact = contact_op(n)
    results = await crm.apply([contact])  # type: ignore[attr-defined]
    assert results[0].ok, results[0].error
    return {"contact": contact.external_key}


def test_a_note_over_65536_characters_is_cut_with_its_full_length(hubspot: Install, url: str, tmp_path: Path) -> None:
    fake = hubspot()
    crm = make_crm(url, tmp_path)
    text = ("<b>&amp; ✓ 🙂 " * 6_000)[:66_000]  # escaping makes it longer still

    async def scenario() -> None:
        refs = await person(crm)
        results = await crm.apply([message_op(1, refs=refs, text=text), message_op(2, refs=refs)])
        assert all(r.ok for r in results), [r.error for r in results]

    run(scenario)
    (note,) = [n for n in fake.records("notes") if n["scrm_message_id"] == "m1"]
    body = note["hs_note_body"]
    assert utf16_len(body) <= STRING_LIMIT
    shown = html.unescape(body)
    assert is_cut(shown) == 66_000 and text.startswith(shown[: shown.index("…[scrm")])
    assert validation_errors(fake) == 0


def test_values_the_account_does_not_take_are_left_out_not_refused(hubspot: Install, url: str, tmp_path: Path) -> None:
    fake = hubspot()
    crm = make_crm(url, tmp_path, lead_status="HOT_PROSPECT", lead_lifecycle_stage="Lead")

    async def scenario() -> None:
        contact = contact_op(1, email="not an address")
        lead = lead_op(1, contact=contact.external_key)
        results = await crm.apply(WriteBatch([contact, lead]))
        assert all(r.ok for r in results), [r.error for r in results]

    run(scenario)
    (contact,) = fake.records("contacts")
    assert contact.get("email") in (None, "")
    assert contact["lifecyclestage"] == "lead", "matched to the option case-insensitively"
    assert contact.get("hs_lead_status") in (None, ""), "not an option of the account: left out"
    assert validation_errors(fake) == 0


def test_profile_and_lead_go_in_the_contact_upsert(hubspot: Install, url: str, tmp_path: Path) -> None:
    fake = hubspot()
    crm = make_crm(url, tmp_path)
    ops = []
    for n in range(1, 6):
        contact = contact_op(n)
        ops += [contact, profile_op(n, contact=contact.external_key), lead_op(n, contact=contact.external_key)]

    results = run(lambda: crm.apply(WriteBatch(ops)))
    assert all(r.ok for r in results), [r.error for r in results]
    assert writes(fake, "/contacts/batch/upsert") == 1
    assert writes(fake, "/contacts/batch/update") == 0 and writes(fake, "/contacts/batch/read") == 0
    assert fake.count("contacts") == 5
    contact = fake.find("contacts", "scrm_key", contact_op(3).external_key)
    assert contact and contact["scrm_profile_key"] == profile_op(3).external_key
    assert contact["scrm_lead_key"] == lead_op(3).external_key and contact["scrm_handle"] == "person3"


def test_notes_of_contacts_just_created_are_created_without_a_look_up(
    hubspot: Install, url: str, tmp_path: Path
) -> None:
    fake = hubspot()
    crm = make_crm(url, tmp_path)

    async def scenario() -> None:
        refs = await person(crm)
        results = await crm.apply([message_op(n, refs=refs) for n in range(1, 4)])
        assert all(r.ok for r in results)

    run(scenario)
    assert [r.path.split("/crm/")[1] for r in fake.requests] == [
        "v3/properties/contacts",
        "v3/properties/tickets",
        "v3/properties/notes",
        "v3/objects/contacts/batch/upsert",
        "v3/objects/notes/batch/create",
    ]


def test_a_new_ticket_is_created_with_its_contact_association(hubspot: Install, url: str, tmp_path: Path) -> None:
    fake = hubspot()
    crm = make_crm(url, tmp_path)

    async def scenario() -> None:
        refs = await person(crm)
        assert all(r.ok for r in await crm.apply([case_op(1, contact=refs["contact"])]))

    run(scenario)
    assert writes(fake, "/associations/") == 0
    (ticket_id,) = [str(i) for i in fake.objects["tickets"]]
    assert set(fake.associations("tickets", ticket_id, "contacts")) == {str(next(iter(fake.objects["contacts"])))}


def test_a_ticket_sent_again_after_a_lost_answer_is_not_created_twice(
    hubspot: Install, url: str, tmp_path: Path
) -> None:
    fake = hubspot()
    crm = make_crm(url, tmp_path)

    async def scenario() -> None:
        refs = await person(crm)
        case = case_op(1, contact=refs["contact"])
        assert (await crm.apply([case]))[0].ok
        again = await crm.apply(WriteBatch([case], uncertain=[(case.object, case.external_key)]))
        assert again[0].ok, again[0].error
        blind = await make_crm(url, tmp_path).apply([case])  # a new process that knows nothing
        assert blind[0].ok, blind[0].error

    run(scenario)
    assert fake.count("tickets") == 1


def test_a_note_sent_again_after_a_lost_answer_is_updated_not_duplicated(
    hubspot: Install, url: str, tmp_path: Path
) -> None:
    fake = hubspot()
    crm = make_crm(url, tmp_path)

    async def scenario() -> None:
        refs = await person(crm)
        message = message_op(1, refs=refs)
        assert (await crm.apply([message]))[0].ok
        again = await make_crm(url, tmp_path).apply(
            WriteBatch([message], uncertain=[(message.object, message.external_key)])
        )
        assert again[0].ok, again[0].error

    run(scenario)
    assert fake.count("notes") == 1


def test_a_known_note_is_updated_by_id_without_a_search(hubspot: Install, url: str, tmp_path: Path) -> None:
    fake = hubspot()
    crm = make_crm(url, tmp_path)

    async def scenario() -> None:
        refs = await person(crm)
        message = message_op(1, refs=refs)
        (created,) = await crm.apply([message])
        edit = CrmOperation(object=CrmObject.message, external_key=message.external_key, fields={"text": "edited"})
        fresh = make_crm(url, tmp_path)  # remembers nothing; the engine knows the note's id
        known = WriteBatch([edit], known={(edit.object, edit.external_key): created.crm_id or ""})
        assert (await fresh.apply(known))[0].ok

    run(scenario)
    assert not any("/search" in r.path for r in fake.requests)
    (note,) = fake.records("notes")
    assert note["hs_note_body"] == "edited"


def test_a_permanent_refusal_carries_the_category_and_the_fix(hubspot: Install, url: str, tmp_path: Path) -> None:
    hubspot()
    crm = make_crm(url, tmp_path)

    async def scenario() -> None:
        await crm.apply([contact_op(9, email="taken@example.org")])
        (refused,) = await crm.apply([contact_op(1, email="taken@example.org")])
        assert not refused.ok and not refused.retryable
        assert refused.code == "CONFLICT"
        assert refused.fix and "email" in refused.fix

    run(scenario)
