"""HubSpot-specific behaviour: multi-status splits, rate limits, tokens, scopes, idempotent notes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr
from scrm_hubspot.testing import FakeHubSpot

from scrm_core import CrmObject, CrmOperation, MemoryState, WriteBatch
from scrm_core.errors import FatalError, RetryableError
from scrm_core.testing.crm import case_op, contact_op, message_op

from .conftest import make_crm, run

Install = Callable[..., FakeHubSpot]


def test_a_multi_status_answer_is_split_per_record(hubspot: Install, url: str, tmp_path: Path) -> None:
    fake = hubspot()
    crm = make_crm(url, tmp_path)

    async def scenario() -> None:
        await crm.apply([contact_op(9, email="taken@example.org")])
        batch = [contact_op(1), contact_op(2, email="taken@example.org"), contact_op(3)]
        results = await crm.apply(batch)
        assert [r.ok for r in results] == [True, False, True]
        assert results[0].crm_id and results[2].crm_id and results[0].crm_id != results[2].crm_id
        assert results[1].error is not None and results[1].error.startswith("CONFLICT: ")
        assert not results[1].retryable, "a unique-value conflict will not go away by itself"

    run(scenario)
    assert fake.requests[-1].status == 207 and fake.requests[-1].records == 3
    assert fake.count("contacts") == 3


def test_transient_record_errors_are_retryable(hubspot: Install, url: str, tmp_path: Path) -> None:
    fake = hubspot()
    fake.faults.partial_rate = 1.0
    crm = make_crm(url, tmp_path)
    results = run(lambda: crm.apply([contact_op(1), contact_op(2)]))
    assert all(not r.ok and r.retryable for r in results)
    assert all((r.error or "").startswith("SERVICE_UNAVAILABLE: ") for r in results)


def test_429_pauses_the_budget_and_asks_for_a_retry(hubspot: Install, url: str, tmp_path: Path) -> None:
    fake = hubspot()
    fake.faults.rate_429 = 1.0
    crm = make_crm(url, tmp_path)
    with pytest.raises(RetryableError) as raised:
        run(lambda: crm.apply([contact_op(1)]))
    assert raised.value.retry_after == 10.0, "TEN_SECONDLY_ROLLING: wait one window"
    assert "TEN_SECONDLY_ROLLING" in raised.value.operator_message
    assert crm.budget.stats.pauses == 1 and crm.budget.delay() > 9
    assert fake.statuses(429) == 1


def test_daily_limit_pauses_until_the_reset(hubspot: Install, url: str, tmp_path: Path) -> None:
    hubspot(daily_limit=4)  # the three property listings of the first apply, then one write
    crm = make_crm(url, tmp_path)
    run(lambda: crm.apply([contact_op(1)]))
    with pytest.raises(RetryableError) as raised:
        run(lambda: crm.apply([contact_op(2)]))
    assert "DAILY" in raised.value.operator_message
    assert raised.value.retry_after is not None and 0 < raised.value.retry_after <= 86_400


def test_rate_limit_headers_slow_the_budget_before_any_429(hubspot: Install, url: str, tmp_path: Path) -> None:
    fake = hubspot(rate_limit=(20, 10.0))
    crm = make_crm(url, tmp_path)
    assert crm.budget.rate == 10.0  # the documented private-app default: 100 per 10 s
    run(lambda: crm.apply([contact_op(1)]))
    assert crm.budget.rate == pytest.approx(20 * 0.9 / 10), "the reported window (less a margin) is adopted"
    assert crm.budget.tokens <= 19 - 2, "never more tokens than the service has left"
    assert fake.statuses(429) == 0


def test_server_errors_and_lost_connections_are_retryable(hubspot: Install, url: str, tmp_path: Path) -> None:
    fake = hubspot()
    fake.faults.rate_5xx = 1.0
    crm = make_crm(url, tmp_path)
    with pytest.raises(RetryableError):
        run(lambda: crm.apply([contact_op(1)]))
    crm = make_crm("http://127.0.0.1:9", tmp_path)  # nothing listens on the discard port
    with pytest.raises(RetryableError):
        run(lambda: crm.apply([contact_op(1)]))


@pytest.mark.parametrize("fault", ["timeout", "lost_response"])
def test_a_retry_after_an_applied_but_unanswered_call_creates_no_second_note(
    hubspot: Install, url: str, tmp_path: Path, fault: str
) -> None:
    fake = hubspot()
    fake.faults.timeout_seconds = 3.0
    crm = make_crm(url, tmp_path, timeout_seconds=0.5)
    contact, case = contact_op(1), case_op(1, contact=contact_op(1).external_key)
    refs = {"contact": contact.external_key, "case": case.external_key}
    messages = [message_op(n, refs=refs, conversation=1) for n in range(3)]

    async def scenario() -> None:
        await crm.apply([contact])
        await crm.apply([case])
        setattr(fake.faults, f"rate_{fault}", 1.0)
        with pytest.raises(RetryableError):
            await crm.apply(messages)
        fake.faults.clear()
        results = await crm.apply(messages)  # the sink's retry
        assert all(r.ok for r in results)

    run(scenario)
    assert fake.count("notes") == 3, "the retried batch must find the notes the lost call created"
    note = fake.find("notes", "scrm_key", messages[0].external_key)
    assert note is not None
    assert len(fake.associations("notes", note["hs_object_id"], "tickets")) == 1


def test_a_restarted_adapter_finds_existing_notes_through_their_contact(
    hubspot: Install, url: str, tmp_path: Path
) -> None:
    fake = hubspot()
    contact = contact_op(1)
    message = message_op(1, refs={"contact": contact.external_key})

    async def first_run() -> str | None:
        crm = make_crm(url, tmp_path)
        await crm.apply([contact])
        return (await crm.apply([message]))[0].crm_id

    async def second_run() -> str | None:
        crm = make_crm(url, tmp_path)  # a new process: nothing remembered
        return (await crm.apply([message]))[0].crm_id

    assert run(first_run) == run(second_run)
    assert fake.count("notes") == 1


def test_message_text_is_escaped_html_and_round_trips(hubspot: Install, url: str, tmp_path: Path) -> None:
    fake = hubspot()
    contact = contact_op(1)
    message = message_op(1, refs={"contact": contact.external_key}, text="<script>alert(1)</script> & more")

    async def scenario() -> None:
        crm = make_crm(url, tmp_path)
        await crm.apply([contact])
        await crm.apply([message])

    run(scenario)
    note = fake.find("notes", "scrm_key", message.external_key)
    assert note is not None and "<script>" not in note["hs_note_body"]


def test_batches_of_erase_stay_under_the_cap(hubspot: Install, url: str, tmp_path: Path) -> None:
    fake = hubspot()
    crm = make_crm(url, tmp_path)
    contacts = [contact_op(n) for n in range(150)]

    async def scenario() -> int:
        await crm.apply(contacts[:100])
        await crm.apply(contacts[100:])
        return await crm.erase({CrmObject.contact: [c.external_key for c in contacts]})

    assert run(scenario) == 150
    assert fake.count("contacts") == 0
    assert max(r.records for r in fake.requests) == 100


def test_oauth_token_is_refreshed_when_missing_and_when_expired(hubspot: Install, url: str, tmp_path: Path) -> None:
    fake = hubspot(tokens=())
    crm = make_crm(
        url,
        tmp_path,
        access_token=None,
        client_id=FakeHubSpot.CLIENT_ID,
        client_secret=FakeHubSpot.CLIENT_SECRET,
        refresh_token=FakeHubSpot.REFRESH_TOKEN,
    )

    async def scenario() -> None:
        assert (await crm.apply([contact_op(1)]))[0].ok
        fake.expire_tokens()
        assert (await crm.apply([contact_op(2)]))[0].ok, "a 401 for an expired token: refresh once, retry"

    run(scenario)
    assert sum(1 for r in fake.requests if r.path == "/oauth/v1/token") == 2
    assert fake.statuses(401) == 1


def test_a_refused_refresh_token_is_fatal_and_says_what_to_set(
    hubspot: Install, url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hubspot(tokens=())
    secret = "not-the-right-refresh-token"
    crm = make_crm(
        url,
        tmp_path,
        access_token=None,
        client_id=FakeHubSpot.CLIENT_ID,
        client_secret=FakeHubSpot.CLIENT_SECRET,
        refresh_token=secret,
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(FatalError) as raised:
        run(lambda: crm.apply([contact_op(1)]))
    message = raised.value.operator_message + (raised.value.detail or "")
    assert "refresh_token" in message and "BAD_REFRESH_TOKEN" in message
    for text in (message, caplog.text, repr(crm), repr(crm.config), str(crm.config.model_dump())):
        assert secret not in text and FakeHubSpot.CLIENT_SECRET not in text


def test_a_revoked_private_app_token_is_fatal_without_echoing_it(
    hubspot: Install, url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hubspot()
    token = "pat-na1-revoked-token"
    crm = make_crm(url, tmp_path, access_token=token)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(FatalError) as raised:
        run(lambda: crm.apply([contact_op(1)]))
    assert "access_token" in raised.value.operator_message
    assert token not in raised.value.operator_message + str(raised.value.detail) + caplog.text + repr(crm.config)


def test_a_missing_scope_is_fatal_and_named(hubspot: Install, url: str, tmp_path: Path) -> None:
    hubspot(scopes={"crm.objects.contacts.read", "crm.schemas.contacts.read", "tickets"})
    crm = make_crm(url, tmp_path)
    with pytest.raises(FatalError) as raised:
        run(lambda: crm.apply([contact_op(1)]))
    assert "crm.objects.contacts.write" in raised.value.operator_message


def test_check_names_missing_scopes_and_properties_with_the_fix(hubspot: Install, url: str, tmp_path: Path) -> None:
    hubspot(with_properties=False)
    problems = run(make_crm(url, tmp_path).check)
    assert {p.problem.split()[1] for p in problems} == {"contacts", "tickets", "notes"}
    assert all("scrm hubspot setup" in p.fix for p in problems)
    assert any("scrm_key" in p.problem for p in problems)

    hubspot(scopes={"tickets"})
    (problem,) = run(make_crm(url, tmp_path).check)
    assert "crm.schemas.contacts.read" in problem.problem and problem.fix

    hubspot()
    assert run(make_crm(url, tmp_path).check) == []


def test_unknown_records_and_references(hubspot: Install, url: str, tmp_path: Path) -> None:
    hubspot()
    crm = make_crm(url, tmp_path)
    edit = CrmOperation(object=CrmObject.message, external_key="scrm:x:never", fields={"text": "edited"})
    (result,) = run(lambda: crm.apply([edit]))
    assert not result.ok and result.retryable, "an edit may arrive before its message"
    lead = CrmOperation(object=CrmObject.lead, external_key="scrm:x:1", fields={"status": "new"})
    (result,) = run(lambda: crm.apply([lead]))
    assert not result.ok and not result.retryable and "refs['contact']" in (result.error or "")


def test_settings_need_one_way_to_authenticate(url: str) -> None:
    from scrm_hubspot import HubSpotSettings

    with pytest.raises(ValueError, match="access_token"):
        HubSpotSettings()
    with pytest.raises(ValueError, match="together"):
        HubSpotSettings(client_id="x", refresh_token=SecretStr("y"))
    with pytest.raises(ValueError):
        HubSpotSettings(access_token=SecretStr("t"), unknown=1)  # type: ignore[call-arg]


def test_ids_the_engine_knows_of_referred_records_spare_the_reads(hubspot: Install, url: str, tmp_path: Path) -> None:
    """A worker that did not write the contact and the ticket (another worker of a fleet did,
    or this one before a restart) gets their ids in the batch (``WriteBatch.known``, from the
    state store): it reads neither by key before writing the messages that refer to them."""
    fake = hubspot()
    contact, case = contact_op(1), case_op(1, contact=contact_op(1).external_key)
    refs = {"contact": contact.external_key, "case": case.external_key}
    messages = [message_op(n, refs=refs, conversation=1) for n in range(3)]

    async def writer() -> tuple[str | None, str | None]:
        crm = make_crm(url, tmp_path)
        return (await crm.apply([contact]))[0].crm_id, (await crm.apply([case]))[0].crm_id

    contact_id, ticket_id = run(writer)
    assert contact_id and ticket_id
    before = len(fake.requests)

    async def other_worker() -> None:
        crm = make_crm(url, tmp_path)  # nothing remembered
        known = {(CrmObject.contact, contact.external_key): contact_id, (CrmObject.case, case.external_key): ticket_id}
        assert all(r.ok for r in await crm.apply(WriteBatch(messages, known=known)))

    run(other_worker)
    paths = [r.path for r in fake.requests[before:]]
    assert not [p for p in paths if "/contacts/batch/read" in p or "/tickets/batch/read" in p], paths
    assert fake.count("notes") == 3


def test_a_contact_another_worker_created_needs_no_read_of_its_notes(
    hubspot: Install, url: str, tmp_path: Path
) -> None:
    """Two workers of one deployment (one adapter state): the one writing the messages did not
    create their contact, yet knows it had no notes but the deployment's own, so it creates
    the notes without reading the contact's. One whose earlier write may have landed unseen
    (uncertain) is still looked for first, and found: no second note."""
    fake = hubspot()
    state = MemoryState()
    contact = contact_op(1)
    messages = [message_op(n, refs={"contact": contact.external_key}) for n in range(3)]

    async def creator() -> str | None:
        return (await make_crm(url, tmp_path, state).apply([contact]))[0].crm_id

    contact_id = run(creator)
    assert contact_id
    known = {(CrmObject.contact, contact.external_key): contact_id}
    before = len(fake.requests)

    async def other_worker() -> None:
        crm = make_crm(url, tmp_path, state)
        assert all(r.ok for r in await crm.apply(WriteBatch(messages[:2], known=known)))

    run(other_worker)
    paths = [r.path for r in fake.requests[before:]]
    assert not [p for p in paths if "/associations/" in p and "/batch/read" in p], paths
    assert fake.count("notes") == 2

    async def retry_after_a_lost_answer() -> None:  # the engine marks the record uncertain
        crm = make_crm(url, tmp_path, state)
        batch = WriteBatch(messages[:1], known=known, uncertain=[(CrmObject.message, messages[0].external_key)])
        assert all(r.ok for r in await crm.apply(batch))

    run(retry_after_a_lost_answer)
    assert fake.count("notes") == 2  # found among the contact's notes and updated, not created again
