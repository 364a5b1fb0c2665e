"""Webhook signature checks and what each Discourse post event becomes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import scrm_discourse.webhook as webhook_module
from pydantic import SecretStr
from scrm_discourse.testing import FakeDiscourse, WebhookDelivery

from scrm_core import MessageCreated, MessageDeleted, MessageEdited, Visibility
from scrm_core.testing.fakes import FakeServer
from scrm_core.webhooks import WebhookAnswer, WebhookRejected, WebhookRequest

from .conftest import make_adapter

SECRET = FakeDiscourse.WEBHOOK_SECRET


def request_of(delivery: WebhookDelivery, **header_changes: str | None) -> WebhookRequest:
    headers = {k.lower(): v for k, v in delivery.headers.items()}
    for name, value in header_changes.items():
        key = name.lower().replace("_", "-")
        if value is None:
            headers.pop(key, None)
        else:
            headers[key] = value
    return WebhookRequest("POST", headers, {}, delivery.body)


def rejected(adapter: Any, request: WebhookRequest) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify_webhook(request)
    assert 400 <= caught.value.status < 500
    return caught.value


def parse(adapter: Any, delivery: WebhookDelivery) -> list[Any]:
    stored = {k.lower(): v for k, v in delivery.headers.items() if k.lower() in adapter.webhook_headers}

    async def go() -> list[Any]:
        try:
            return await adapter.parse_webhook(delivery.body, stored)
        finally:
            await adapter.close()

    return asyncio.run(go())


# ------------------------------------------------------------ signatures


def test_valid_signature_is_accepted(fake: FakeDiscourse, server: FakeServer) -> None:
    delivery = fake.webhook_payloads()[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
    assert delivery.headers["X-Discourse-Event-Signature"] == expected  # the fake signs as Discourse does
    assert make_adapter(server.url).verify_webhook(request_of(delivery)) is None


def test_wrong_secret_is_refused(fake: FakeDiscourse, server: FakeServer) -> None:
    forged = fake.signed_request("post_created", json.loads(fake.webhook_payloads()[0].body), secret="not-it")
    assert rejected(make_adapter(server.url), request_of(forged)).reason == "bad_signature"


def test_a_changed_byte_is_refused(fake: FakeDiscourse, server: FakeServer) -> None:
    delivery = fake.webhook_payloads()[0]
    body = bytearray(delivery.body)
    body[-3] ^= 0x01
    tampered = WebhookRequest("POST", request_of(delivery).headers, {}, bytes(body))
    assert rejected(make_adapter(server.url), tampered).reason == "bad_signature"


def test_missing_signature_is_refused(fake: FakeDiscourse, server: FakeServer) -> None:
    request = request_of(fake.webhook_payloads()[0], x_discourse_event_signature=None)
    assert rejected(make_adapter(server.url), request).reason == "missing_signature"


def test_sha256_prefix_is_required_and_normalised(fake: FakeDiscourse, server: FakeServer) -> None:
    adapter = make_adapter(server.url)
    delivery = fake.webhook_payloads()[0]
    digest = delivery.headers["X-Discourse-Event-Signature"].removeprefix("sha256=")
    # The bare hex (no scheme) and another scheme are refused, even with the right digest.
    assert rejected(adapter, request_of(delivery, x_discourse_event_signature=digest)).reason == "bad_signature"
    bad_scheme = request_of(delivery, x_discourse_event_signature=f"sha1={digest}")
    assert rejected(adapter, bad_scheme).reason == "bad_signature"
    # Upper-case scheme or hex and surrounding spaces are the same signature.
    assert (
        adapter.verify_webhook(request_of(delivery, x_discourse_event_signature=f" SHA256={digest.upper()} ")) is None
    )


def test_comparison_goes_through_signature_matches(
    fake: FakeDiscourse, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str | None]] = []
    real = webhook_module.signature_matches

    def spy(expected: str, given: str | None) -> bool:
        calls.append((expected, given))
        return real(expected, given)

    monkeypatch.setattr(webhook_module, "signature_matches", spy)
    delivery = fake.webhook_payloads()[0]
    make_adapter(server.url).verify_webhook(request_of(delivery))
    assert calls == [(delivery.headers["X-Discourse-Event-Signature"],) * 2]


def test_no_secret_configured_refuses_every_delivery(fake: FakeDiscourse, server: FakeServer) -> None:
    adapter = make_adapter(server.url, webhook_secret=None)
    assert rejected(adapter, request_of(fake.webhook_payloads()[0])).status == 404


def test_ping_is_answered_without_storing(fake: FakeDiscourse, server: FakeServer) -> None:
    answer = make_adapter(server.url).verify_webhook(request_of(fake.ping()))
    assert isinstance(answer, WebhookAnswer) and answer.status == 200


def test_stored_headers_are_only_the_event_names(server: FakeServer) -> None:
    kept = set(make_adapter(server.url).webhook_headers)
    assert kept == {"x-discourse-event", "x-discourse-event-type"}


# ------------------------------------------------------------ payloads


def test_post_created_reply_gets_root_and_parent_from_the_api(fake: FakeDiscourse, server: FakeServer) -> None:
    created = [d for d in fake.webhook_payloads() if d.event == "post_created"]
    reply = next(d for d in created if json.loads(d.body)["post"]["id"] == 104)  # alice answers post 103
    [event] = parse(make_adapter(server.url), reply)
    assert isinstance(event, MessageCreated)
    assert (event.message.thread_root_id, event.message.parent_id) == ("101", "103")
    assert event.message.author.account_id == "1000" and event.message.author.handle == "alice"  # as it was then


def test_post_created_in_a_private_message_is_direct(fake: FakeDiscourse, server: FakeServer) -> None:
    dm = next(d for d in fake.webhook_payloads() if json.loads(d.body)["post"]["id"] == 107)
    [event] = parse(make_adapter(server.url), dm)
    assert isinstance(event, MessageCreated) and event.message.visibility is Visibility.direct


def test_post_edited_is_an_edit_versioned_by_updated_at(fake: FakeDiscourse, server: FakeServer) -> None:
    at = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    fake.edit(105, "does the X200 work with 110V outlets in Canada?", at=at)
    [event] = parse(make_adapter(server.url), fake.webhook_payloads()[-1])
    assert isinstance(event, MessageEdited)
    assert event.message.edited_at == at and "Canada" in event.message.text
    assert event.key == f"e:discourse:105:{at.isoformat()}"


def test_post_edited_without_a_revision_is_dropped(fake: FakeDiscourse, server: FakeServer) -> None:
    fake.touch(105)  # e.g. made a wiki: post_edited fires, the text and version stay
    assert fake.webhook_payloads()[-1].event == "post_edited"
    assert parse(make_adapter(server.url), fake.webhook_payloads()[-1]) == []


def test_post_destroyed_is_a_deletion(fake: FakeDiscourse, server: FakeServer) -> None:
    at = datetime(2024, 6, 2, tzinfo=UTC)
    fake.delete(109, at=at)
    [event] = parse(make_adapter(server.url), fake.webhook_payloads()[-1])
    assert isinstance(event, MessageDeleted)
    assert (event.message_id, event.deleted_at) == ("109", at)


def test_author_withdrawal_is_a_deletion_not_an_edit(fake: FakeDiscourse, server: FakeServer) -> None:
    fake.delete(110, by_author=True)
    payload = json.loads(fake.webhook_payloads()[-1].body)
    edited = fake.signed_request("post_edited", payload)  # Discourse also revises the text to "withdrawn"
    [event] = parse(make_adapter(server.url), edited)
    assert isinstance(event, MessageDeleted) and event.message_id == "110"


def test_topic_events_and_garbage(fake: FakeDiscourse, server: FakeServer) -> None:
    adapter = make_adapter(server.url)
    topic = fake.signed_request("topic_created", {"topic": {"id": 1, "title": "x"}})
    assert parse(adapter, topic) == []
    from scrm_core import SkippableError

    broken = WebhookDelivery("post_created", "post", {"X-Discourse-Event-Type": "post"}, b"{not json")
    with pytest.raises(SkippableError):
        parse(make_adapter(server.url), broken)


def test_category_filter_applies_to_webhooks(fake: FakeDiscourse, server: FakeServer) -> None:
    created = next(d for d in fake.webhook_payloads() if d.event == "post_created")
    assert parse(make_adapter(server.url, categories=[fake.category_id + 1]), created) == []
    assert len(parse(make_adapter(server.url, categories=[fake.category_id]), created)) == 1


def test_secret_never_in_repr(server: FakeServer) -> None:
    adapter = make_adapter(server.url, webhook_secret=SecretStr("s3cr3t-value"))
    assert "s3cr3t-value" not in repr(adapter) + repr(adapter.settings) + str(adapter.settings.model_dump())
