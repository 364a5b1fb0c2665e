"""Focused behaviour of the Salesforce adapter against the fake org, over real HTTPS on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from pydantic import ValidationError
from scrm.engine import mapping
from scrm_salesforce import SalesforceCrm, SalesforceSettings
from scrm_salesforce.auth import JWT_GRANT
from scrm_salesforce.testing import COLLECTION_LIMIT
from scrm_salesforce.testing.errors import ApiError

from scrm_core import CrmObject, CrmOperation, PendingReply, WriteBatch, external_key
from scrm_core.errors import FatalError, RetryableError
from scrm_core.models import Direction, Message, SocialProfile
from scrm_core.testing.crm import case_op, contact_op, message_op, profile_op

T = TypeVar("T")
KEY = "Scrm_Key__c"


def run(adapter: SalesforceCrm, scenario: Callable[[SalesforceCrm], Awaitable[T]]) -> T:
    async def main() -> T:
        await adapter.start()
        try:
            return await scenario(adapter)
        finally:
            await adapter.close()

    return asyncio.run(main())


async def seed(adapter: SalesforceCrm, n: int = 1) -> dict[str, str]:
    contact, profile, case = contact_op(n), profile_op(n, contact=contact_op(n).external_key), case_op(n)
    for op in (contact, profile, case):
        assert all(r.ok for r in await adapter.apply([op]))
    return {"contact": contact.external_key, "profile": profile.external_key, "case": case.external_key}


def upsert_calls(org: Any, sobject: str) -> list[Any]:
    return org.fake.calls(path_contains=f"/composite/sobjects/{sobject}/", method="PATCH")


# ---------------------------------------------------------------- plugin and settings


def test_the_entry_point_registers_the_adapter() -> None:
    (entry,) = [e for e in entry_points(group="scrm") if e.name == "salesforce"]
    assert entry.value == "scrm_salesforce.plugin"


def test_each_login_flow_names_the_settings_it_misses() -> None:
    with pytest.raises(ValidationError) as jwt_error:
        SalesforceSettings(auth="jwt", username="u@example.org")
    assert "'consumer_key'" in str(jwt_error.value) and "'private_key_file'" in str(jwt_error.value)
    with pytest.raises(ValidationError) as cc_error:
        SalesforceSettings(auth="client_credentials", client_id="id")
    assert "'client_secret'" in str(cc_error.value)
    with pytest.raises(ValidationError):
        SalesforceSettings(auth="client_credentials", client_id="id", client_secret="s", surprise=1)


# ---------------------------------------------------------------- auth


def test_jwt_bearer_login_with_a_key_file_beside_the_config(
    org: Any, rsa_keys: tuple[str, str], tmp_path: Path
) -> None:
    (tmp_path / "sf.key").write_text(rsa_keys[0])
    adapter = org.adapter(
        tmp_path,
        auth="jwt",
        consumer_key=org.fake.consumer_key,
        username=org.fake.username,
        private_key_file="sf.key",
        client_id=None,
        client_secret=None,
    )

    async def scenario(a: SalesforceCrm) -> None:
        assert (await a.apply([contact_op(1)]))[0].ok

    run(adapter, scenario)
    assert org.fake.token_requests == [JWT_GRANT]


def test_jwt_signed_by_another_key_is_refused_with_the_fix(org: Any, tmp_path: Path) -> None:
    from scrm_salesforce.testing import make_rsa_key_pair

    other_private, _ = make_rsa_key_pair()
    (tmp_path / "wrong.key").write_text(other_private)
    adapter = org.adapter(
        tmp_path,
        auth="jwt",
        consumer_key=org.fake.consumer_key,
        username=org.fake.username,
        private_key_file="wrong.key",
    )
    with pytest.raises(FatalError) as refused:
        asyncio.run(adapter.start())
    assert "invalid_grant" in refused.value.operator_message
    assert "private_key_file" in refused.value.operator_message
    assert "PRIVATE KEY" not in refused.value.operator_message


def test_a_missing_key_file_names_the_setting(org: Any, tmp_path: Path) -> None:
    adapter = org.adapter(
        tmp_path, auth="jwt", consumer_key=org.fake.consumer_key, username="u", private_key_file="nope.key"
    )
    with pytest.raises(FatalError, match="private_key_file"):
        asyncio.run(adapter.start())


def test_client_credentials_login_and_a_wrong_secret(org: Any, tmp_path: Path) -> None:
    run(org.adapter(tmp_path), lambda a: a.apply([contact_op(1)]))
    assert org.fake.token_requests == ["client_credentials"]
    with pytest.raises(FatalError, match="invalid_client") as refused:
        asyncio.run(org.adapter(tmp_path, client_secret="not-the-secret").start())
    assert "not-the-secret" not in str(refused.value)


def test_legacy_password_flow_works_and_warns(org: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    adapter = org.adapter(tmp_path, auth="password", username=org.fake.username, password=org.fake.password)
    with caplog.at_level(logging.WARNING):
        run(adapter, lambda a: a.apply([contact_op(1)]))
    assert "retiring" in caplog.text
    assert org.fake.password not in caplog.text


def test_an_expired_session_logs_in_again_once(org: Any, tmp_path: Path) -> None:
    async def scenario(a: SalesforceCrm) -> None:
        await a.apply([contact_op(1)])
        org.fake.expire_sessions()
        assert (await a.apply([contact_op(2)]))[0].ok
        assert a.connection.logins == 2

    run(org.adapter(tmp_path), scenario)
    assert [r.error_code for r in org.fake.requests if r.status == 401] == ["INVALID_SESSION_ID"]


# ---------------------------------------------------------------- per-record results


def test_record_errors_split_into_permanent_and_retryable(org: Any, tmp_path: Path) -> None:
    async def scenario(a: SalesforceCrm) -> list[Any]:
        refs = await seed(a)
        no_posted = message_op(2, refs=refs)
        no_posted = CrmOperation(
            object=CrmObject.message,
            external_key=no_posted.external_key,
            fields={k: v for k, v in no_posted.fields.items() if k != "created_at"},
            refs=refs,
        )
        ghost = message_op(3, refs={**refs, "case": case_op(404).external_key})
        return await a.apply([message_op(1, refs=refs), no_posted, ghost])

    good, missing, ghost = run(org.adapter(tmp_path), scenario)
    assert good.ok and good.crm_id and good.crm_id.startswith("0ST")
    assert not missing.ok and not missing.retryable
    assert missing.error == "REQUIRED_FIELD_MISSING: Required fields are missing: [Posted]"
    assert not ghost.ok and ghost.retryable and ghost.error and ghost.error.startswith("INVALID_FIELD: Foreign key")
    assert org.fake.count("SocialPost") == 1


def test_a_locked_row_is_retryable(make_org: Callable[..., Any], tmp_path: Path) -> None:
    org = make_org()

    async def scenario(a: SalesforceCrm) -> list[Any]:
        org.fake.faults.partial_rate = 1.0
        return await a.apply([contact_op(1), contact_op(2)])

    results = run(org.adapter(tmp_path), scenario)
    assert all(not r.ok and r.retryable and r.error.startswith("UNABLE_TO_LOCK_ROW") for r in results)


def test_redaction_leaves_no_trace_of_the_text(org: Any, tmp_path: Path) -> None:
    secret = "my card is 4111 1111 1111 1111"

    async def scenario(a: SalesforceCrm) -> None:
        refs = await seed(a)
        await a.apply([message_op(1, refs=refs, text=secret)])
        redaction = CrmOperation(
            object=CrmObject.message, external_key=message_op(1).external_key, fields={"text": "", "deleted": True}
        )
        assert (await a.apply([redaction]))[0].ok

    run(org.adapter(tmp_path), scenario)
    (post,) = org.fake.records("SocialPost")
    assert post["Content"] is None and post["Scrm_Deleted__c"] is True
    assert "4111" not in repr(post)


# ---------------------------------------------------------------- limits


def test_the_collection_cap_is_never_exceeded(org: Any, tmp_path: Path) -> None:
    ops = [contact_op(n) for n in range(450)]
    results = run(org.adapter(tmp_path), lambda a: a.apply(ops))
    assert all(r.ok for r in results) and org.fake.count("Contact") == 450
    assert [c.records for c in upsert_calls(org, "Contact")] == [200, 200, 50]


def test_the_fake_refuses_more_than_200_records(org: Any) -> None:
    token = requests.post(
        f"{org.server.url}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": org.fake.consumer_key,
            "client_secret": org.fake.client_secret,
        },
        verify=org.server.ca_file,
        timeout=5,
    ).json()["access_token"]
    records = [{"attributes": {"type": "Contact"}, KEY: f"k{n}", "LastName": "x"} for n in range(COLLECTION_LIMIT + 1)]
    response = requests.patch(
        f"{org.server.url}/services/data/v62.0/composite/sobjects/Contact/{KEY}",
        json={"allOrNone": False, "records": records},
        headers={"Authorization": f"Bearer {token}"},
        verify=org.server.ca_file,
        timeout=5,
    )
    assert response.status_code == 400 and response.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert org.fake.count("Contact") == 0


def test_request_limit_exceeded_pauses_the_budget_and_asks_for_a_retry(
    make_org: Callable[..., Any], tmp_path: Path
) -> None:
    org = make_org(api_limit=2)  # the describe (one composite request), then one write

    async def scenario(a: SalesforceCrm) -> None:
        assert (await a.apply([contact_op(1)]))[0].ok
        with pytest.raises(RetryableError) as limited:
            await a.apply([contact_op(2)])
        assert limited.value.retry_after == 42
        assert a.budget.stats.pauses >= 1 and a.budget.delay() > 0

    run(org.adapter(tmp_path, limit_pause_seconds=42), scenario)
    assert org.fake.requests[-1].error_code == "REQUEST_LIMIT_EXCEEDED"
    assert org.fake.count("Contact") == 1


def test_a_limit_hit_mid_call_settles_what_went_out(make_org: Callable[..., Any], tmp_path: Path) -> None:
    org = make_org(api_limit=3)  # the describe, then two collections of 200
    results = run(org.adapter(tmp_path), lambda a: a.apply([contact_op(n) for n in range(450)]))
    assert all(r.ok for r in results[:400])
    assert all(not r.ok and r.retryable and "not sent" in (r.error or "") for r in results[400:])


def test_sforce_limit_info_slows_the_budget_down(make_org: Callable[..., Any], tmp_path: Path) -> None:
    org = make_org(api_limit=10)

    async def scenario(a: SalesforceCrm) -> None:
        assert a.budget.rate is None
        for n in range(8):
            await a.apply([contact_op(n)])
        # 9 of 10 daily calls spent (the describe and 8 writes): the rest is spread over the day.
        assert a.budget.rate is not None and a.budget.rate < 1 / 3600
        assert a.budget.stats.slowdowns == 1

    run(org.adapter(tmp_path), scenario)


def test_server_errors_and_timeouts_are_retryable_and_retries_duplicate_nothing(
    make_org: Callable[..., Any], tmp_path: Path
) -> None:
    org = make_org()

    async def scenario(a: SalesforceCrm) -> None:
        for fault in ("rate_5xx", "rate_lost_response", "rate_timeout"):
            org.fake.faults.clear()
            setattr(org.fake.faults, fault, 1.0)
            with pytest.raises(RetryableError):
                await a.apply([contact_op(1)])
        org.fake.faults.clear()
        assert (await a.apply([contact_op(1)]))[0].ok

    org.fake.faults.timeout_seconds = 1.0
    run(org.adapter(tmp_path, timeout_seconds=0.3), scenario)
    assert org.fake.count("Contact") == 1


# ---------------------------------------------------------------- check and setup errors


def test_check_names_the_fields_to_create(make_org: Callable[..., Any], tmp_path: Path) -> None:
    org = make_org(scrm_fields=False)
    problems = run(org.adapter(tmp_path), lambda a: a.check())
    missing_key = {p.problem.split()[0]: p.fix for p in problems if KEY in p.problem}
    assert set(missing_key) == {"Contact", "SocialPersona", "Case", "Lead", "SocialPost"}
    assert missing_key["SocialPost"] == (
        "Setup > Object Manager > SocialPost > Fields & Relationships > New: Text(255) with 'Unique' (case "
        "sensitive) and 'External ID' ticked; Field Name Scrm_Key (API name Scrm_Key__c); give the integration "
        "user's permission set Edit access"
    )
    assert any("Scrm_Conversation_Key__c" in p.problem for p in problems)


def test_check_is_clean_on_a_ready_org_and_reports_missing_access(org: Any, tmp_path: Path) -> None:
    assert run(org.adapter(tmp_path), lambda a: a.check()) == []
    org.fake.object_access["Lead"]["createable"] = False
    org.fake.schema["Case"]["Subject"].updateable = False
    problems = run(org.adapter(tmp_path), lambda a: a.check())
    assert [p.problem for p in problems] == [
        "Case.Subject is not writable by the integration user",
        "Lead: the integration user lacks createable access",
    ]


def test_writing_without_the_external_id_field_stops_with_the_fix(make_org: Callable[..., Any], tmp_path: Path) -> None:
    org = make_org(scrm_fields=False)
    with pytest.raises(FatalError, match="create the field") as stopped:
        run(org.adapter(tmp_path), lambda a: a.apply([contact_op(1)]))
    assert "Scrm_Key__c" in stopped.value.operator_message


def test_a_field_the_user_may_not_edit_is_left_out_and_check_names_it(org: Any, tmp_path: Path) -> None:
    org.fake.schema["Contact"]["Email"].createable = False
    (result,) = run(org.adapter(tmp_path), lambda a: a.apply([contact_op(1, email="a@example.org")]))
    assert result.ok and org.fake.records("Contact")[0]["Email"] is None
    problems = run(org.adapter(tmp_path), lambda a: a.check())
    assert [(p.problem, p.blocking) for p in problems] == [
        ("Contact.Email is not writable by the integration user", True)
    ]


# ---------------------------------------------------------------- SOQL, erase, replies


HOSTILE = ["it's", "back\\slash", "quote\\'; DELETE", 'dq"', "new\nline", "100%_like"]


def test_erase_escapes_hostile_keys(org: Any, tmp_path: Path) -> None:
    ops = [
        CrmOperation(object=CrmObject.contact, external_key=external_key(f"x:{k}"), fields={"name": k}) for k in HOSTILE
    ]
    keep = contact_op(1)

    async def scenario(a: SalesforceCrm) -> tuple[int, int]:
        assert all(r.ok for r in await a.apply([*ops, keep]))
        keys = [op.external_key for op in ops]
        return await a.erase({CrmObject.contact: keys}), await a.erase({CrmObject.contact: keys})

    assert run(org.adapter(tmp_path), scenario) == (len(HOSTILE), 0)
    assert [r[KEY] for r in org.fake.records("Contact")] == [keep.external_key]


def test_the_fake_refuses_soql_it_does_not_understand(org: Any, tmp_path: Path) -> None:
    async def scenario(a: SalesforceCrm) -> None:
        with pytest.raises(FatalError, match="MALFORMED_QUERY"):
            await a._run("query", lambda sf: sf.query("SELECT Id FROM Contact WHERE Name LIKE 'x%'"))

    run(org.adapter(tmp_path), scenario)


def test_pending_replies_skip_what_is_already_posted(org: Any, tmp_path: Path) -> None:
    async def scenario(a: SalesforceCrm) -> None:
        refs = await seed(a)
        await a.apply([message_op(1, refs=refs, conversation=1)])
        parent = org.fake.find("SocialPost", "ExternalPostId", "m1")
        base = {"Name": "r", "IsOutbound": True, "ReplyToId": parent["Id"], "Posted": "2024-05-01T13:00:00Z"}
        org.fake.insert("SocialPost", {**base, "Content": "posted already", "ExternalPostId": "m9"})
        org.fake.insert("SocialPost", {**base, "Content": "please send"})
        replies, cursor = await a.pending_replies(None)
        assert [(r.text, r.in_reply_to, r.conversation_key) for r in replies] == [
            ("please send", "m1", "conformance:root1")
        ]
        assert await a.pending_replies(cursor) == ([], cursor)

    run(org.adapter(tmp_path), scenario)


BRAND = SocialProfile(network="conformance", account_id="brand", handle="brand")


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
    return mapping.message_op(message, BRAND.key, case_open=True)


async def agent_wrote_a_reply(org: Any, a: SalesforceCrm, text: str = "A new kettle is on its way.") -> PendingReply:
    """Seed a conversation and the brand's profile; an agent answers m1; return it as pending."""
    refs = await seed(a)
    assert all(r.ok for r in await a.apply([message_op(1, refs=refs, conversation=1)]))
    for op in mapping.profile_ops(BRAND, BRAND.key):
        assert all(r.ok for r in await a.apply([op]))
    parent = org.fake.find("SocialPost", "ExternalPostId", "m1")
    reply_id = org.fake.agent_reply(parent["Id"], text)
    (reply,), cursor = await a.pending_replies(None)
    assert (reply.crm_id, reply.text, reply.in_reply_to, reply.conversation_key) == (
        reply_id,
        text,
        "m1",
        "conformance:root1",
    )
    assert await a.pending_replies(cursor) == ([], cursor)
    return reply


def test_an_agents_reply_comes_back_as_the_same_social_post(org: Any, tmp_path: Path) -> None:
    async def scenario(a: SalesforceCrm) -> Message:
        reply = await agent_wrote_a_reply(org, a)
        message = sent_message(reply, "n-500")
        for _ in range(2):  # a crash after the first call repeats it
            await a.reply_sent(reply, external_key(message.key), message.id)
        assert await a.pending_replies(None) == ([], None)
        assert all(r.ok for r in await a.apply([sync_back(message)]))
        assert await a.pending_replies(None) == ([], None)
        return message

    message = run(org.adapter(tmp_path), scenario)
    # A restarted adapter (nothing remembered) applies the same sync-back again.
    assert all(r.ok for r in run(org.adapter(tmp_path), lambda a: a.apply([sync_back(message)])))

    posts = [p for p in org.fake.records("SocialPost") if p["ExternalPostId"] == "n-500"]
    assert len(posts) == 1 and org.fake.count("SocialPost") == 2
    (post,) = posts
    assert post["IsOutbound"] is True and post["Content"] == "A new kettle is on its way."
    assert post[KEY] == "scrm:conformance:n-500" and post["Scrm_Conversation_Key__c"] == "conformance:root1"
    assert org.fake.get("SocialPost", post["ReplyToId"])["ExternalPostId"] == "m1"
    assert post["ParentId"] == org.fake.find("Case", KEY, "scrm:conformance:root1")["Id"]
    by_id = org.fake.calls(path_contains=f"/sobjects/SocialPost/{post['Id']}", method="PATCH")
    assert [c.status for c in by_id] == [204, 204]  # one request per reply_sent


def test_a_copy_made_before_reply_sent_is_folded_into_the_agents_post(org: Any, tmp_path: Path) -> None:
    async def scenario(a: SalesforceCrm) -> str:
        reply = await agent_wrote_a_reply(org, a)
        message = sent_message(reply, "n-501")
        assert all(r.ok for r in await a.apply([sync_back(message)]))  # scrm saw its own post first
        await a.reply_sent(reply, external_key(message.key), message.id)
        assert all(r.ok for r in await a.apply([sync_back(message)]))
        return reply.crm_id

    reply_id = run(org.adapter(tmp_path), scenario)
    (post,) = [p for p in org.fake.records("SocialPost") if p["ExternalPostId"] == "n-501"]
    assert post["Id"] == reply_id and post[KEY] == "scrm:conformance:n-501"
    assert org.fake.count("SocialPost") == 2


def test_reply_sent_for_a_deleted_post_only_logs(org: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(a: SalesforceCrm) -> None:
        reply = await agent_wrote_a_reply(org, a)
        await a._run(
            "delete", lambda sf: sf.restful("composite/sobjects", params={"ids": reply.crm_id}, method="DELETE")
        )
        with caplog.at_level(logging.WARNING):
            await a.reply_sent(reply, "scrm:conformance:n-502", "n-502")

    run(org.adapter(tmp_path), scenario)
    assert "was deleted after its reply was sent" in caplog.text
    (patch,) = org.fake.calls(path_contains="/data/v62.0/sobjects/SocialPost/", method="PATCH")
    assert patch.status == 404 and patch.error_code == "ENTITY_IS_DELETED"


def test_the_fake_updates_one_record_by_id_as_salesforce_does(org: Any) -> None:
    token = requests.post(
        f"{org.server.url}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": org.fake.consumer_key,
            "client_secret": org.fake.client_secret,
        },
        verify=org.server.ca_file,
        timeout=5,
    ).json()["access_token"]
    first = org.fake.insert("Contact", {"LastName": "a", KEY: "k1"})
    second = org.fake.insert("Contact", {"LastName": "b"})

    def patch(record_id: str, body: dict[str, Any]) -> requests.Response:
        return requests.patch(
            f"{org.server.url}/services/data/v62.0/sobjects/Contact/{record_id}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            verify=org.server.ca_file,
            timeout=5,
        )

    ok = patch(second, {KEY: "k2", "Email": "b@example.com"})
    assert ok.status_code == 204 and ok.content == b""
    assert org.fake.get("Contact", second)["Email"] == "b@example.com"
    assert org.fake.find("Contact", KEY, "k2")["Id"] == second
    duplicate = patch(second, {KEY: "k1"})
    assert duplicate.status_code == 400
    assert duplicate.json() == [
        {
            "message": f"duplicate value found: {KEY} duplicates value on record with id: {first}",
            "errorCode": "DUPLICATE_VALUE",
            "fields": [KEY],
        }
    ]
    unknown = patch(second, {"Nope__c": 1}).json()
    assert unknown[0]["errorCode"] == "INVALID_FIELD" and unknown[0]["fields"] == ["Nope__c"]
    assert patch("003000000000999AAA", {"LastName": "x"}).json()[0]["errorCode"] == "NOT_FOUND"


# ---------------------------------------------------------------- Bulk API 2.0


def test_a_backfill_goes_through_one_bulk_job(org: Any, tmp_path: Path) -> None:
    async def scenario(a: SalesforceCrm) -> list[Any]:
        refs = await seed(a)
        bad = message_op(3, refs=refs)
        bad = CrmOperation(
            object=CrmObject.message,
            external_key=bad.external_key,
            fields={k: v for k, v in bad.fields.items() if k != "created_at"},
            refs=refs,
        )
        ghost = message_op(4, refs={**refs, "contact": contact_op(404).external_key})
        first = await a.apply([message_op(1, refs=refs), message_op(2, refs=refs), bad, ghost])
        redact = CrmOperation(
            object=CrmObject.message, external_key=message_op(1).external_key, fields={"text": "", "deleted": True}
        )
        edit = CrmOperation(
            object=CrmObject.message, external_key=message_op(2).external_key, fields={"text": "edited, with a comma"}
        )
        second = await a.apply([redact, edit, message_op(5, refs=refs), message_op(6, refs=refs)])
        return [*first, *second]

    results = run(org.adapter(tmp_path, bulk_threshold=4), scenario)
    assert [r.ok for r in results] == [True, True, False, False, True, True, True, True]
    assert results[2].error == "REQUIRED_FIELD_MISSING: Required fields are missing: [Posted]"
    assert not results[2].retryable and results[3].retryable
    assert upsert_calls(org, "SocialPost") == []
    assert len(org.fake.calls(path_contains="/jobs/ingest", method="POST")) == 2
    m1, m2 = (org.fake.find("SocialPost", "ExternalPostId", m) for m in ("m1", "m2"))
    assert m1["Content"] is None and m1["Scrm_Deleted__c"] is True
    assert m2["Content"] == "edited, with a comma" and m2["Scrm_Conversation_Key__c"] == "conformance:root0"
    assert m2["WhoId"] == org.fake.find("Contact", KEY, contact_op(1).external_key)["Id"]


def test_collections_only_when_bulk_is_off(org: Any, tmp_path: Path) -> None:
    adapter = org.adapter(tmp_path, bulk_threshold=None)
    assert adapter.limits.max_batch == COLLECTION_LIMIT
    assert org.adapter(tmp_path).limits.max_batch == 10_000


# ---------------------------------------------------------------- secrets


def test_secrets_stay_out_of_reprs_logs_and_errors(
    org: Any, rsa_keys: tuple[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "sf.key").write_text(rsa_keys[0])
    settings = org.settings(
        auth="jwt", consumer_key="ck-visible?", username=org.fake.username, private_key_file="sf.key"
    )
    assert "ck-visible?" not in repr(settings) and org.fake.client_secret not in repr(settings)
    adapter = org.adapter(tmp_path)

    async def scenario(a: SalesforceCrm) -> None:
        await a.apply([contact_op(1)])
        org.fake.expire_sessions()
        await a.apply([contact_op(2)])
        org.fake.faults.rate_5xx = 1.0
        with pytest.raises(RetryableError) as failed:
            await a.apply([contact_op(3)])
        assert org.fake.client_secret not in str(failed.value)
        assert "Bearer" not in repr(a.connection)

    with caplog.at_level(logging.DEBUG):
        run(adapter, scenario)
    assert org.fake.client_secret not in caplog.text
    assert "00Dfake!" not in caplog.text


def test_the_first_reply_poll_after_check_costs_no_request_and_misses_nothing(org: Any, tmp_path: Path) -> None:
    async def scenario(a: SalesforceCrm) -> None:
        refs = await seed(a)
        await a.apply([message_op(1, refs=refs, conversation=1)])
        parent = org.fake.find("SocialPost", "ExternalPostId", "m1")
        early = org.fake.agent_reply(parent["Id"], "written before the run")
        assert await a.check() == []  # the describes and the first page of replies: one composite request
        calls = len(org.fake.requests)
        late = org.fake.agent_reply(parent["Id"], "written after the check")
        replies, cursor = await a.pending_replies(None)
        assert len(org.fake.requests) == calls, "answered from the page read with the describes"
        assert [r.crm_id for r in replies] == [early]
        again, _ = await a.pending_replies(cursor)
        assert [r.crm_id for r in again] == [late], "the reply written since comes with the next poll"

    run(org.adapter(tmp_path), scenario)


def test_a_retry_after_a_failed_lookup_goes_on_where_it_stopped(org: Any, tmp_path: Path) -> None:
    """A backfill whose records may exist is looked up in many queries; one failing must not
    make the retry ask them all again (at a few % of failed requests, 150 queries would
    almost never all succeed in one attempt)."""
    ops = [contact_op(n, name=f"Person {n}") for n in range(400)]
    ops = [op.model_copy(update={"external_key": f"{op.external_key}:{'x' * 40}"}) for op in ops]
    batch = WriteBatch(ops, uncertain=[(op.object, op.external_key) for op in ops])
    lookups: list[str] = []
    answer = org.fake._run_query

    def third_fails(soql: str) -> dict[str, Any]:
        lookups.append(soql)
        if len(lookups) == 3:
            raise ApiError(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable.")
        return answer(soql)

    org.fake._run_query = third_fails

    async def scenario(a: SalesforceCrm) -> None:
        await a.metadata()
        with pytest.raises(RetryableError):
            await a.writer.apply(batch)
        assert all(r.ok for r in await a.writer.apply(batch))

    run(org.adapter(tmp_path, bulk_threshold=None), scenario)
    chunks = len({soql for soql in lookups})
    assert chunks > 3 and len(lookups) == chunks + 1, "the lookups that had answered were asked again"
    assert org.fake.count("Contact") == len(ops)
