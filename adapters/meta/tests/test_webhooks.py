"""Meta webhooks: the verification handshake, X-Hub-Signature-256 on the raw body, feed and comments payloads."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr
from scrm_meta import MetaAdapter
from scrm_meta.testing import FakeMeta

from scrm_core import Event, MessageCreated, MessageDeleted, MessageEdited, SkippableError
from scrm_core.testing.fakes import FakeServer
from scrm_core.webhooks import WebhookAnswer, WebhookRejected, WebhookRequest

from .conftest import IG_USER_ID, PAGE_ID, make_adapter

T = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def feed(*values: dict[str, Any], page: str = PAGE_ID, time: int = 1714554300) -> dict[str, Any]:
    return {
        "object": "page",
        "entry": [{"id": page, "time": time, "changes": [{"field": "feed", "value": v} for v in values]}],
    }


def comment(verb: str, **more: Any) -> dict[str, Any]:
    value = {
        "item": "comment",
        "verb": verb,
        "post_id": f"{PAGE_ID}_1",
        "comment_id": "1_2",
        "parent_id": f"{PAGE_ID}_1",
        "from": {"id": "77", "name": "Alice"},
        "message": "the lid broke",
        "created_time": 1714554000,
    }
    return value | more


def parse(adapter: MetaAdapter, request: WebhookRequest) -> list[Event]:
    async def run() -> list[Event]:
        await adapter.start()
        try:
            assert adapter.verify_webhook(request) is None
            return await adapter.parse_webhook(request.body, {})
        finally:
            await adapter.close()

    return asyncio.run(run())


# ---------------------------------------------------------------- handshake


def test_handshake_echoes_the_challenge_for_the_right_token(fake: FakeMeta) -> None:
    answer = make_adapter("http://127.0.0.1:9").verify_webhook(fake.verification_request(challenge="4242"))
    assert answer == WebhookAnswer(body="4242", status=200, media_type="text/plain")


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [({"token": "not-the-token"}, "bad_verify_token"), ({"mode": "unsubscribe"}, "bad_mode")],
)
def test_handshake_refuses_a_wrong_token_or_mode(fake: FakeMeta, kwargs: dict[str, str], reason: str) -> None:
    with pytest.raises(WebhookRejected) as caught:
        make_adapter("http://127.0.0.1:9").verify_webhook(fake.verification_request(**kwargs))
    assert (caught.value.status, caught.value.reason) == (403, reason)


def test_handshake_refused_when_no_verify_token_is_configured(fake: FakeMeta) -> None:
    adapter = make_adapter("http://127.0.0.1:9", verify_token=None)
    with pytest.raises(WebhookRejected, match="403"):
        adapter.verify_webhook(fake.verification_request(token=""))


# ---------------------------------------------------------------- signature


def test_signature_is_checked_on_the_raw_bytes(fake: FakeMeta) -> None:
    adapter = make_adapter("http://127.0.0.1:9")
    request = fake.signed_delivery(feed(comment("add")))
    assert adapter.verify_webhook(request) is None
    # Same JSON content, serialised differently: Meta signed the bytes, not the meaning.
    reserialised = json.dumps(json.loads(request.body), indent=1).encode()
    assert json.loads(reserialised) == json.loads(request.body)
    with pytest.raises(WebhookRejected) as caught:
        adapter.verify_webhook(WebhookRequest("POST", request.headers, {}, reserialised))
    assert (caught.value.status, caught.value.reason) == (403, "bad_signature")


def test_signature_with_another_secret_or_none_is_refused(fake: FakeMeta) -> None:
    adapter = make_adapter("http://127.0.0.1:9")
    forged = fake.signed_delivery(feed(comment("add")), secret="someone-elses-secret")
    with pytest.raises(WebhookRejected, match="bad_signature"):
        adapter.verify_webhook(forged)
    with pytest.raises(WebhookRejected, match="missing_signature"):
        adapter.verify_webhook(WebhookRequest("POST", {}, {}, forged.body))
    without_secret = make_adapter("http://127.0.0.1:9", app_secret=None)
    with pytest.raises(WebhookRejected, match="no_app_secret"):
        without_secret.verify_webhook(fake.signed_delivery(feed(comment("add"))))


def test_signature_header_is_sha256_of_the_body_with_the_app_secret(fake: FakeMeta) -> None:
    import hashlib
    import hmac

    request = fake.signed_delivery(b'{"object":"page","entry":[]}')
    digest = hmac.new(FakeMeta.APP_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-hub-signature-256"] == f"sha256={digest}"


# ---------------------------------------------------------------- payloads


def test_add_edited_and_remove_become_created_edited_deleted(fake: FakeMeta) -> None:
    adapter = make_adapter("http://127.0.0.1:9")
    events = parse(
        adapter,
        fake.signed_delivery(feed(comment("add"), comment("edited", message="the lid AND handle"), comment("remove"))),
    )
    created, edited, deleted = events
    assert (
        isinstance(created, MessageCreated)
        and isinstance(edited, MessageEdited)
        and isinstance(deleted, MessageDeleted)
    )
    assert created.message.id == "1_2" and created.message.network == "facebook"
    assert created.message.thread_root_id == f"{PAGE_ID}_1" and created.message.parent_id == f"{PAGE_ID}_1"
    assert created.message.author.account_id == "77" and created.message.author.handle is None
    assert edited.message.text == "the lid AND handle"
    assert edited.message.edited_at == datetime.fromtimestamp(1714554300, UTC)  # the entry's time: a stable version
    assert deleted.message_key == "facebook:1_2" and deleted.deleted_at == edited.message.edited_at


def test_reply_to_a_comment_names_its_parent_and_page_comments_are_outbound(fake: FakeMeta) -> None:
    adapter = make_adapter("http://127.0.0.1:9")
    value = comment("add", comment_id="1_3", parent_id="1_2", **{"from": {"id": PAGE_ID, "name": "Acme"}})
    (event,) = parse(adapter, fake.signed_delivery(feed(value)))
    assert isinstance(event, MessageCreated)
    assert event.message.parent_id == "1_2" and event.message.thread_root_id == f"{PAGE_ID}_1"
    assert event.message.direction.value == "outbound"


def test_reactions_other_pages_and_unknown_fields_are_ignored(fake: FakeMeta) -> None:
    adapter = make_adapter("http://127.0.0.1:9")
    payload = feed({"item": "reaction", "verb": "add", "post_id": f"{PAGE_ID}_1", "reaction_type": "like"})
    payload["entry"].append(feed(comment("add"), page="123")["entry"][0])
    payload["entry"].append({"id": PAGE_ID, "time": 1, "changes": [{"field": "mention", "value": {}}]})
    assert parse(adapter, fake.signed_delivery(payload)) == []


def test_an_instagram_payload_on_a_facebook_source_is_skippable(fake: FakeMeta) -> None:
    adapter = make_adapter("http://127.0.0.1:9")
    with pytest.raises(SkippableError, match="'instagram'"):
        parse(adapter, fake.signed_delivery({"object": "instagram", "entry": []}))


def test_a_payload_without_the_text_is_completed_from_the_graph(fake: FakeMeta) -> None:
    post = fake.add_post("77", "photo of my broken kettle", T)
    with FakeServer(fake.app) as server:
        adapter = make_adapter(server.url)
        value = {"item": "photo", "verb": "add", "post_id": post, "from": {"id": "77"}, "created_time": 1714554000}
        (event,) = parse(adapter, fake.signed_delivery(feed(value)))
    assert isinstance(event, MessageCreated) and event.message.text == "photo of my broken kettle"
    assert event.message.created_at == T


def test_instagram_comment_notifications_parse(fake: FakeMeta) -> None:
    adapter = make_adapter("http://127.0.0.1:9", platform="instagram")
    payload = {
        "object": "instagram",
        "entry": [
            {
                "id": IG_USER_ID,
                "time": 1714554300,
                "changes": [
                    {
                        "field": "comments",
                        "value": {
                            "from": {"id": "555", "username": "alice"},
                            "media": {"id": "801"},
                            "id": "901",
                            "text": "love it #kettles",
                            "parent_id": "900",
                        },
                    }
                ],
            }
        ],
    }
    (event,) = parse(adapter, fake.signed_delivery(payload))
    assert isinstance(event, MessageCreated)
    m = event.message
    assert (m.network, m.id, m.thread_root_id, m.parent_id) == ("instagram", "901", "801", "900")
    assert m.author.handle == "alice" and m.hashtags == ["kettles"]


def test_secrets_never_in_settings_repr() -> None:
    adapter = make_adapter("http://127.0.0.1:9", app_secret=SecretStr("s3cr3t-app"))
    text = repr(adapter.settings) + str(adapter.settings.model_dump())
    assert "s3cr3t-app" not in text and FakeMeta.TOKEN not in text and FakeMeta.VERIFY_TOKEN not in text
