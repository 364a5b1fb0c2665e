"""Records fitted to the org's describe metadata, written once, refused only for good reasons.

Each test drives the adapter against the strict fake org (lengths, create-only fields,
restricted picklists, validation rules on every write path) over real HTTPS.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from scrm_salesforce import SalesforceCrm
from scrm_salesforce.testing import SCRM_KEY

from scrm_core import AdapterContext, CrmObject, CrmOperation, MemoryState, WriteBatch
from scrm_core.errors import RetryableError
from scrm_core.fitting import is_cut, utf16_len
from scrm_core.testing.crm import case_op, contact_op, message_op, profile_op

T = TypeVar("T")
LONG_NAME = "Ζωή " + "🙂 O'Brien\" OR Name != '" * 14  # 300+ characters, quotes, SOQL-like, astral emoji


def run(adapter: SalesforceCrm, scenario: Callable[[SalesforceCrm], Awaitable[T]]) -> T:
    async def main() -> T:
        await adapter.start()
        try:
            return await scenario(adapter)
        finally:
            await adapter.close()

    return asyncio.run(main())


async def seed(adapter: SalesforceCrm, n: int = 1) -> dict[str, str]:
    contact = contact_op(n)
    profile = profile_op(n, contact=contact.external_key)
    case = case_op(n, contact=contact.external_key)
    for op in (contact, profile, case):
        (result,) = await adapter.apply([op])
        assert result.ok, result.error
    return {"contact": contact.external_key, "profile": profile.external_key, "case": case.external_key}


def codes(org: Any) -> list[str]:
    return [r.error_code for r in org.fake.requests if r.error_code]


# ---------------------------------------------------------------- lengths


def test_a_long_display_name_is_cut_to_the_field_not_refused(org: Any, tmp_path: Path) -> None:
    assert len(LONG_NAME) > 300

    async def scenario(a: SalesforceCrm) -> None:
        contact = contact_op(1, name=LONG_NAME)
        (c,) = await a.apply([contact])
        profile = profile_op(1, contact=contact.external_key)
        profile.fields["display_name"] = LONG_NAME
        profile.fields["handle"] = LONG_NAME
        (p,) = await a.apply([profile])
        assert c.ok and p.ok, (c.error, p.error)

    run(org.adapter(tmp_path), scenario)
    (person,) = org.fake.records("Contact")
    (persona,) = org.fake.records("SocialPersona")
    assert utf16_len(person["LastName"]) <= 80 and person["LastName"].endswith("…")
    assert utf16_len(persona["RealName"]) <= 255 and persona["RealName"].startswith("Ζωή 🙂 O'Brien")
    assert not any(0xD800 <= ord(ch) <= 0xDFFF for ch in persona["RealName"]), "an emoji was split"
    assert "STRING_TOO_LONG" not in codes(org)


@pytest.mark.parametrize("path", ["collections", "bulk"])
def test_a_text_over_32000_characters_is_cut_with_its_full_length(org: Any, tmp_path: Path, path: str) -> None:
    text = ("Ünïcode ✓ 🙂 " * 6_000)[:60_000]

    async def scenario(a: SalesforceCrm) -> list[Any]:
        refs = await seed(a)
        ops = [message_op(n, refs=refs, text=text if n == 1 else None) for n in range(1, 4)]
        return await a.apply(ops)

    adapter = org.adapter(tmp_path, bulk_threshold=2 if path == "bulk" else None)
    results = run(adapter, scenario)
    assert all(r.ok for r in results), [r.error for r in results]
    post = org.fake.find("SocialPost", "ExternalPostId", "m1")
    assert utf16_len(post["Content"]) <= 32_000
    assert is_cut(post["Content"]) == 60_000
    assert text.startswith(post["Content"][: post["Content"].index("…[scrm")])
    assert "STRING_TOO_LONG" not in codes(org)
    if path == "bulk":
        assert org.fake.jobs(), "the bulk path was not taken"


# ---------------------------------------------------------------- create-only fields


def test_a_message_sent_again_after_a_lost_answer_is_updated_not_refused(org: Any, tmp_path: Path) -> None:
    async def scenario(a: SalesforceCrm) -> None:
        refs = await seed(a)
        message = message_op(1, refs=refs)
        assert (await a.apply([message]))[0].ok
        # The sink did not get the answer: it sends the same full record again.
        batch = WriteBatch([message], uncertain=[(message.object, message.external_key)])
        (again,) = await a.apply(batch)
        assert again.ok, again.error
        # A restarted adapter that knows nothing sends it once more.
        (blind,) = await a.apply([message])
        assert blind.ok, blind.error

    run(org.adapter(tmp_path), scenario)
    assert org.fake.count("SocialPost") == 1
    assert "INVALID_FIELD_FOR_INSERT_UPDATE" not in codes(org)


def test_an_existing_record_is_updated_without_its_create_only_fields(org: Any, tmp_path: Path) -> None:
    async def scenario(a: SalesforceCrm) -> None:
        refs = await seed(a)
        message = message_op(1, refs=refs, direction="outbound")
        (created,) = await a.apply([message])
        known = WriteBatch([message], known={(message.object, message.external_key): created.crm_id or ""})
        assert (await a.apply(known))[0].ok

    run(org.adapter(tmp_path), scenario)
    (post,) = org.fake.records("SocialPost")
    assert post["IsOutbound"] is True
    assert not [r for r in org.fake.requests if r.error_code == "INVALID_FIELD_FOR_INSERT_UPDATE"]


# ---------------------------------------------------------------- picklists


def test_restricted_picklists_are_mapped_or_defaulted_from_describe(org: Any, tmp_path: Path) -> None:
    org.fake.restrict_picklist("Case", "Status", ["Nouveau", "Fermé"], default="Nouveau")
    org.fake.restrict_picklist("Case", "Priority", ["HIGH", "LOW"])

    async def scenario(a: SalesforceCrm) -> None:
        contact = contact_op(1)
        assert (await a.apply([contact]))[0].ok
        case = case_op(1, contact=contact.external_key)
        case.fields["priority"] = "high"
        (result,) = await a.apply([case])
        assert result.ok, result.error
        message = message_op(1, refs={"contact": contact.external_key}, network="somewhere-new")
        message.fields["sentiment_label"] = "positive"
        assert (await a.apply([message]))[0].ok

    run(org.adapter(tmp_path), scenario)
    (case,) = org.fake.records("Case")
    assert case["Status"] == "Nouveau" and case["Priority"] == "HIGH"
    (post,) = org.fake.records("SocialPost")
    assert post["Provider"] == "Other"
    assert "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" not in codes(org)


# ---------------------------------------------------------------- refusals


def test_a_validation_rule_refusal_is_permanent_and_says_what_to_do(org: Any, tmp_path: Path) -> None:
    org.fake.add_validation_rule("Contact", "Contacts need a real last name", lambda r: r.get("LastName") == "Bot")

    async def scenario(a: SalesforceCrm) -> list[Any]:
        return await a.apply([contact_op(1, name="Bot"), contact_op(2)])

    refused, fine = run(org.adapter(tmp_path), scenario)
    assert fine.ok
    assert not refused.ok and not refused.retryable
    assert refused.code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert refused.error and "Contacts need a real last name" in refused.error
    assert refused.fix and "validation rule" in refused.fix


def test_an_invalid_email_is_left_out_not_refused(org: Any, tmp_path: Path) -> None:
    results = run(org.adapter(tmp_path), lambda a: a.apply([contact_op(1, email="not an email")]))
    assert results[0].ok, results[0].error
    assert org.fake.records("Contact")[0]["Email"] is None


# ---------------------------------------------------------------- Bulk API 2.0 jobs


def test_a_bulk_job_whose_poll_failed_is_read_back_not_resubmitted(org: Any, tmp_path: Path) -> None:
    state = MemoryState()

    def adapter() -> SalesforceCrm:
        settings = org.settings(bulk_threshold=2)
        return SalesforceCrm(settings, AdapterContext(name="crm", base_dir=tmp_path, state=state))

    async def first(a: SalesforceCrm) -> None:
        refs = await seed(a)
        org.fake.bulk_polls = 3
        hold = org.fake.holds.add(lambda m, p: m == "GET" and "/jobs/ingest/" in p, after_apply=False)

        async def fail_polls() -> None:
            await asyncio.to_thread(hold.reached.wait, 30)
            org.fake.faults.rate_5xx = 1.0  # the job is applied; every poll from now on is a 503
            hold.release()

        failing = asyncio.create_task(fail_polls())
        with pytest.raises(RetryableError):
            await a.apply([message_op(n, refs=refs) for n in range(1, 4)])
        await failing
        org.fake.faults.clear()

    run(adapter(), first)
    jobs_created = len(org.fake.calls(path_contains="/jobs/ingest", method="POST"))

    async def second(a: SalesforceCrm) -> list[Any]:
        refs = {"contact": contact_op(1).external_key, "profile": profile_op(1).external_key}
        refs["case"] = case_op(1).external_key
        ops = [message_op(n, refs=refs) for n in range(1, 4)]
        uncertain = [(op.object, op.external_key) for op in ops]
        return await a.apply(WriteBatch(ops, uncertain=uncertain))

    results = run(adapter(), second)
    assert all(r.ok for r in results), [r.error for r in results]
    assert len(org.fake.calls(path_contains="/jobs/ingest", method="POST")) == jobs_created == 1
    assert org.fake.count("SocialPost") == 3


def test_a_bulk_job_applied_before_a_crash_is_reconciled_after_the_restart(org: Any, tmp_path: Path) -> None:
    state = MemoryState()
    settings = org.settings(bulk_threshold=2)

    async def crash_after_upload_complete() -> None:
        a = SalesforceCrm(settings, AdapterContext(name="crm", base_dir=tmp_path, state=state))
        await a.start()
        refs = await seed(a)
        hold = org.fake.holds.add(lambda m, p: m == "PATCH" and "/jobs/ingest/" in p)
        task = asyncio.create_task(a.apply([message_op(n, refs=refs) for n in range(1, 4)]))
        await asyncio.to_thread(hold.reached.wait, 30)
        task.cancel()  # the process dies: UploadComplete was applied, its answer never read
        with pytest.raises(asyncio.CancelledError):
            await task
        hold.release()
        await a.close()

    asyncio.run(crash_after_upload_complete())
    assert org.fake.count("SocialPost") == 3  # Salesforce processed the job anyway

    async def restart(a: SalesforceCrm) -> list[Any]:
        refs = {"contact": contact_op(1).external_key, "profile": profile_op(1).external_key}
        refs["case"] = case_op(1).external_key
        ops = [message_op(n, refs=refs) for n in range(1, 4)]
        return await a.apply(WriteBatch(ops, uncertain=[(op.object, op.external_key) for op in ops]))

    adapter = SalesforceCrm(settings, AdapterContext(name="crm", base_dir=tmp_path, state=state))
    results = run(adapter, restart)
    assert all(r.ok for r in results), [r.error for r in results]
    assert org.fake.count("SocialPost") == 3
    assert len(org.fake.calls(path_contains="/jobs/ingest", method="POST")) == 1
    assert "INVALID_FIELD_FOR_INSERT_UPDATE" not in codes(org)


# ---------------------------------------------------------------- the fake enforces it on every path


def _token(org: Any) -> str:
    form = {"grant_type": "client_credentials", "client_id": org.fake.consumer_key}
    form["client_secret"] = org.fake.client_secret
    response = requests.post(f"{org.server.url}/services/oauth2/token", data=form, verify=org.server.ca_file, timeout=5)
    return str(response.json()["access_token"])


def test_the_fake_refuses_a_too_long_value_on_every_write_path(org: Any) -> None:
    base = f"{org.server.url}/services/data/v62.0"
    headers = {"Authorization": f"Bearer {_token(org)}"}
    long_name = "x" * 81
    one = requests.patch(
        f"{base}/sobjects/Contact/{SCRM_KEY}/k1", json={"LastName": long_name}, headers=headers,
        verify=org.server.ca_file, timeout=5,
    )  # fmt: skip
    assert one.status_code == 400 and one.json()[0]["errorCode"] == "STRING_TOO_LONG"
    many = requests.patch(
        f"{base}/composite/sobjects/Contact/{SCRM_KEY}",
        json={"allOrNone": False, "records": [{"attributes": {"type": "Contact"}, SCRM_KEY: "k2", "LastName": "x" * 81}]},  # noqa: E501
        headers=headers, verify=org.server.ca_file, timeout=5,
    )  # fmt: skip
    assert many.json()[0]["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    org.fake.bulk_polls = 0
    job = requests.post(
        f"{base}/jobs/ingest", json={"object": "Contact", "operation": "upsert", "externalIdFieldName": SCRM_KEY},
        headers=headers, verify=org.server.ca_file, timeout=5,
    ).json()  # fmt: skip
    requests.put(
        f"{base}/jobs/ingest/{job['id']}/batches", data=f"{SCRM_KEY},LastName\nk3,{long_name}\n",
        headers={**headers, "Content-Type": "text/csv"}, verify=org.server.ca_file, timeout=5,
    )  # fmt: skip
    requests.patch(
        f"{base}/jobs/ingest/{job['id']}", json={"state": "UploadComplete"}, headers=headers,
        verify=org.server.ca_file, timeout=5,
    )  # fmt: skip
    failed = requests.get(
        f"{base}/jobs/ingest/{job['id']}/failedResults/", headers=headers, verify=org.server.ca_file, timeout=5
    )
    assert "STRING_TOO_LONG" in failed.text
    assert org.fake.count("Contact") == 0


def test_the_fake_refuses_create_only_fields_on_update(org: Any) -> None:
    base = f"{org.server.url}/services/data/v62.0"
    headers = {"Authorization": f"Bearer {_token(org)}"}
    record = {"Name": "n", "Provider": "Other", "Posted": "2024-05-01T12:00:00Z", "IsOutbound": True}
    first = requests.patch(
        f"{base}/sobjects/SocialPost/{SCRM_KEY}/p1", json=record, headers=headers, verify=org.server.ca_file, timeout=5
    )
    assert first.status_code == 201 and first.json()["created"] is True
    again = requests.patch(
        f"{base}/sobjects/SocialPost/{SCRM_KEY}/p1", json=record, headers=headers, verify=org.server.ca_file, timeout=5
    )
    assert again.status_code == 400 and again.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    update = {k: v for k, v in record.items() if k not in ("Provider", "IsOutbound")}
    ok = requests.patch(
        f"{base}/sobjects/SocialPost/{SCRM_KEY}/p1", json=update, headers=headers, verify=org.server.ca_file, timeout=5
    )
    assert ok.status_code == 200 and ok.json()["created"] is False


def test_contact_and_case_op_helpers_are_fitted_even_on_the_first_write(org: Any, tmp_path: Path) -> None:
    subject = "S" * 400

    async def scenario(a: SalesforceCrm) -> None:
        contact = contact_op(1)
        assert (await a.apply([contact]))[0].ok
        op = CrmOperation(
            object=CrmObject.case,
            external_key=case_op(1).external_key,
            fields={**case_op(1).fields, "subject": subject},
            refs={"contact": contact.external_key},
        )
        (result,) = await a.apply([op])
        assert result.ok, result.error

    run(org.adapter(tmp_path), scenario)
    (case,) = org.fake.records("Case")
    assert len(case["Subject"]) <= 255 and case["Subject"].startswith("SSS")
