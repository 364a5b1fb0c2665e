"""What the conformance suite cannot see: Link paging, streaming, re-checks, replies, errors."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from pydantic import ValidationError
from scrm_mastodon import Cursor, MastodonAdapter, MastodonSettings
from scrm_mastodon.testing import FakeMastodon

from scrm_core.errors import FatalError, RetryableError
from scrm_core.models import EventPage, MessageCreated, MessageDeleted, MessageEdited, Visibility
from scrm_core.testing.fakes import FakeServer
from scrm_core.testing.network import default_scenario, drain

from .conftest import make_adapter, run

ALICE, CAROL = "1000", "1002"


def loaded(fake: FakeMastodon) -> FakeMastodon:
    fake.load(default_scenario("mastodon"))
    return fake


def keys(pages: list[EventPage]) -> list[str]:
    return [e.key for p in pages for e in p.events]


def test_link_header_pagination_is_followed(fake: FakeMastodon, server: FakeServer) -> None:
    loaded(fake)
    pages = run(lambda: drain(make_adapter(server.url, page_size=2)))
    asked = [r for r in fake.requests if r.path == "/api/v1/notifications"]
    assert len(asked) >= 4, "with page_size=2 the notifications take several requests"
    assert asked[0].query["min_id"] == ["0"]
    # Each later request carries the min_id of the previous answer's rel="prev" link: its newest id.
    seen = [n.id for n in fake.notifications if n.account_id == fake.brand_id]
    for before, after in itertools.pairwise(asked):
        got = [nid for nid in seen if int(nid) > int(before.query["min_id"][0])][:2]
        if got:
            assert after.query["min_id"] == [max(got, key=int)]
        assert after.query["types[]"] == ["mention", "status", "update"], "the Link keeps the type filter"
    created = [k for k in keys(pages) if k.startswith("c:")]
    assert len(created) == len(set(created)) == 10  # 11 statuses, one deleted before any poll


def test_polling_recheck_finds_deletes_and_edits_once(fake: FakeMastodon, server: FakeServer) -> None:
    loaded(fake)
    first = run(lambda: drain(make_adapter(server.url)))
    cursor = first[-1].cursor
    assert cursor is not None and "111" in Cursor.parse(cursor).window
    fake.delete("109")
    fake.edit("111", "where can I buy the X200 in Berlin?")
    second = run(lambda: drain(make_adapter(server.url), cursor))
    events = [e for p in second for e in p.events]
    assert [e.key for e in events if isinstance(e, MessageDeleted)] == ["d:mastodon:109"]
    edits = [e for e in events if isinstance(e, MessageEdited)]
    assert [e.message.id for e in edits] == ["111"] and "Berlin" in edits[0].message.text
    again = run(lambda: drain(make_adapter(server.url), second[-1].cursor))
    assert keys(again) == [], "a re-check must not deliver the same edit or deletion twice"


def test_recheck_window_is_bounded(fake: FakeMastodon, server: FakeServer) -> None:
    loaded(fake)
    pages = run(lambda: drain(make_adapter(server.url, recheck_recent=3)))
    window = Cursor.parse(pages[-1].cursor).window
    assert sorted(window, key=int) == ["109", "110", "111"]


def test_stream_follow_picks_up_new_edited_and_deleted(fake: FakeMastodon, server: FakeServer) -> None:
    loaded(fake)
    adapter = make_adapter(server.url, poll_seconds=0.2)
    received: list[Any] = []

    async def until(predicate: Any, what: str, deadline: float = 10.0) -> None:
        end = time.monotonic() + deadline
        while not predicate():
            if time.monotonic() > end:
                raise AssertionError(f"timed out waiting for {what}; got {[e.key for e in received]}")
            await asyncio.sleep(0.02)

    async def listen() -> None:
        async for page in adapter.listen(None, follow=True):
            received.extend(page.events)

    async def scenario() -> None:
        await adapter.start()
        task = asyncio.create_task(listen())
        try:
            await until(lambda: fake.stream_listeners == 1 and len(received) >= 12, "the catch-up")
            new_id = fake.post(ALICE, "@brand the lid is loose now")
            await until(
                lambda: any(isinstance(e, MessageCreated) and e.message.id == new_id for e in received), "update"
            )
            fake.edit(new_id, "@brand the lid is loose now, photo attached")
            await until(lambda: any(isinstance(e, MessageEdited) and e.message.id == new_id for e in received), "edit")
            fake.delete(new_id)
            await until(lambda: f"d:mastodon:{new_id}" in [e.key for e in received], "delete")
            edited = next(e for e in received if isinstance(e, MessageEdited) and e.message.id == new_id)
            assert edited.message.edited_at is not None and "photo" in edited.message.text
        finally:
            task.cancel()
            await adapter.close()
        created = [e.key for e in received if isinstance(e, MessageCreated)]
        assert len(created) == len(set(created)), "the stream repeated what the catch-up delivered"

    run(scenario)


def test_reply_sends_idempotency_key_once_and_mentions_author(fake: FakeMastodon, server: FakeServer) -> None:
    loaded(fake)
    adapter = make_adapter(server.url)

    async def send(key: str) -> Any:
        await adapter.start()
        try:
            return await adapter.send_reply("105", "Yes, it does.", key)
        finally:
            await adapter.close()

    first = run(lambda: send("key-1"))
    before = len(fake.posted())
    again = run(lambda: send("key-1"))
    assert again.message.id == first.message.id and len(fake.posted()) == before
    posts = [r for r in fake.requests if r.method == "POST" and r.path == "/api/v1/statuses"]
    assert [r.idempotency_key for r in posts] == ["key-1", "key-1"]
    assert first.message.text.startswith("@carol Yes, it does.")
    assert first.message.parent_id == "105" and first.message.thread_root_id == "105"
    assert first.message.visibility is Visibility.public


def test_reply_to_a_direct_message_stays_direct(fake: FakeMastodon, server: FakeServer) -> None:
    loaded(fake)
    adapter = make_adapter(server.url)

    async def send() -> Any:
        await adapter.start()
        try:
            return await adapter.send_reply("107", "Your order ships tomorrow.", "dm-1")
        finally:
            await adapter.close()

    sent = run(send)
    assert sent.message.visibility is Visibility.direct
    assert sent.message.text.startswith("@carol ")
    assert fake.statuses[sent.message.id].visibility == "direct"


def test_html_content_becomes_plain_text(fake: FakeMastodon, server: FakeServer) -> None:
    fake.account(ALICE, "alice")
    fake.watched.add(ALICE)
    fake.post(ALICE, "Hi @brand & team,\nsee https://shop.example/kettles/x200?ref=1\n\nthanks #kettles")
    pages = run(lambda: drain(make_adapter(server.url)))
    message = next(e.message for p in pages for e in p.events if isinstance(e, MessageCreated))
    html = fake.posted(ALICE)[0]["content"]
    assert html.startswith("<p>") and "<br />" in html and 'class="invisible"' in html, "the fake must send HTML"
    assert message.text == "Hi @brand & team,\nsee https://shop.example/kettles/x200?ref=1\n\nthanks #kettles"
    assert message.mentions == ["brand"] and message.hashtags == ["kettles"] and message.language == "en"


def test_bad_token_is_fatal_and_not_echoed(server: FakeServer) -> None:
    secret = "s3cret-token-value-123"
    adapter = make_adapter(server.url, token=secret)
    with pytest.raises(FatalError) as caught:
        run(lambda: drain(adapter))
    assert "access_token" in caught.value.operator_message
    assert secret not in str(caught.value) and secret not in repr(adapter.settings)


def test_rate_limit_becomes_retryable_with_reset(fake: FakeMastodon, server: FakeServer) -> None:
    loaded(fake)
    adapter = make_adapter(server.url)

    async def go() -> None:
        await adapter.start()
        fake.rate_limit_next()
        try:
            [p async for p in adapter.listen(None, follow=False)]
        finally:
            await adapter.close()

    with pytest.raises(RetryableError) as caught:
        run(go)
    assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 301
    assert fake.requests[-1].status == 429


def test_profile_keeps_fields_as_evidence(fake: FakeMastodon, server: FakeServer) -> None:
    fake.account(
        ALICE,
        "alice",
        display_name="Alice A.",
        note="<p>Tea &amp; kettles</p>",
        followers_count=42,
        fields=[
            {
                "name": "Website",
                "value": '<a href="https://alice.example">alice.example</a>',
                "verified_at": "2024-01-01T00:00:00.000Z",
            }
        ],
    )
    adapter = make_adapter(server.url)

    async def go() -> Any:
        await adapter.start()
        try:
            return await adapter.fetch_profile(ALICE)
        finally:
            await adapter.close()

    profile = run(go)
    assert profile.account_id == ALICE and profile.handle == "alice" and profile.followers == 42
    assert profile.bio == "Tea & kettles\nWebsite: alice.example (verified link)" and profile.verified


def test_settings_validate() -> None:
    with pytest.raises(ValidationError):
        MastodonSettings(base_url="mastodon.social", access_token="t")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        MastodonSettings(base_url="https://m.example", access_token="t", notification_types=["follow"])  # type: ignore[arg-type,list-item]
    assert MastodonAdapter.name == "mastodon"
