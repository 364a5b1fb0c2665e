"""What the conformance suite cannot see: paging, edits, deletions, the reply rule, errors, settings."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
import requests
from pydantic import ValidationError
from scrm_x import XAdapter, XSettings
from scrm_x.client import XClient
from scrm_x.testing import FakeX

from scrm_core import (
    EventPage,
    FatalError,
    MessageCreated,
    MessageDeleted,
    MessageEdited,
    RetryableError,
    SkippableError,
)
from scrm_core.testing.fakes import FakeServer

from .conftest import Switchable, make

T = TypeVar("T")
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BRAND = "1004"


@pytest.fixture
def fake(served: tuple[Switchable, FakeServer]) -> FakeX:
    switch, _ = served
    switch.fake = FakeX()
    for uid, name in (("1000", "alice"), ("1001", "bob")):
        switch.fake.add_user(uid, name)
    return switch.fake


@pytest.fixture
def url(served: tuple[Switchable, FakeServer]) -> str:
    return served[1].url


def run(adapter: XAdapter, work: Any) -> Any:
    """Start the adapter, await ``work(adapter)``, close it."""

    async def go() -> Any:
        await adapter.start()
        try:
            return await asyncio.wait_for(work(adapter), 20)
        finally:
            await adapter.close()

    return asyncio.run(go())


def drain(adapter: XAdapter, cursor: str | None = None) -> list[EventPage]:
    async def pages(a: XAdapter) -> list[EventPage]:
        return [p async for p in a.listen(cursor, follow=False)]

    result: list[EventPage] = run(adapter, pages)
    return result


def events(pages: list[EventPage]) -> list[Any]:
    return [e for p in pages for e in p.events]


def send(adapter: XAdapter, target: str, text: str, key: str = "k1") -> Any:
    return run(adapter, lambda a: a.send_reply(target, text, key))


def wait(coro: Awaitable[T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 20))  # type: ignore[arg-type]


# ------------------------------------------------------------ listening


def test_pagination_tokens_are_followed(fake: FakeX, url: str) -> None:
    for i in range(25):
        fake.post("1000", f"@brand kettle question {i}", at=T0 + timedelta(minutes=i))
    pages = drain(make(url, query="kettle", page_size=100))
    created = [e.message.text for e in events(pages) if isinstance(e, MessageCreated)]
    assert created == [f"@brand kettle question {i}" for i in range(25)]  # once each, oldest first
    searches = [r for r in fake.requests if r.path == "/2/tweets/search/recent"]
    mentions = [r for r in fake.requests if r.path.endswith("/mentions")]
    assert [("next_token" in r.params) for r in searches] == [False, True, True]
    assert [("pagination_token" in r.params) for r in mentions] == [False, True, True]
    assert all(r.params["max_results"] == "10" for r in searches + mentions)


def test_since_id_resumes_after_the_newest_post(fake: FakeX, url: str) -> None:
    first = fake.post("1000", "@brand hello", at=T0)
    pages = drain(make(url))
    again = fake.post("1001", "@brand me too", at=T0 + timedelta(minutes=1))
    later = drain(make(url), pages[-1].cursor)
    assert [e.message.id for e in events(later)] == [again["id"]]
    since = [r.params.get("since_id") for r in fake.requests if r.path.endswith("/mentions")]
    assert since[-1] == first["id"]


def test_threads_come_from_conversation_id(fake: FakeX, url: str) -> None:
    root = fake.post("1000", "@brand my kettle leaks", at=T0)
    reply = fake.post("1001", "mine too", reply_to=root["id"], at=T0 + timedelta(minutes=1))
    deeper = fake.post(BRAND, "@bob sorry! DM us", reply_to=reply["id"], at=T0 + timedelta(minutes=2))
    messages = [e.message for e in events(drain(make(url, query="kettle OR mine OR sorry")))]
    by_id = {m.id: m for m in messages}
    assert by_id[root["id"]].thread_root_id is None and by_id[root["id"]].parent_id is None
    assert (by_id[reply["id"]].thread_root_id, by_id[reply["id"]].parent_id) == (root["id"], root["id"])
    assert (by_id[deeper["id"]].thread_root_id, by_id[deeper["id"]].parent_id) == (root["id"], reply["id"])
    assert by_id[deeper["id"]].direction == "outbound" and by_id[root["id"]].direction == "inbound"
    assert by_id[root["id"]].author.account_id == "1000" and by_id[root["id"]].mentions == ["brand"]


def test_an_edit_maps_to_the_original_id(fake: FakeX, url: str) -> None:
    original = fake.post("1000", "@brand kettel broken", at=T0)
    pages = drain(make(url))
    version = fake.edit(original["id"], "@brand kettle broken", at=T0 + timedelta(minutes=3))
    later = events(drain(make(url), pages[-1].cursor))
    assert len(later) == 1 and isinstance(later[0], MessageEdited)
    edited = later[0].message
    assert version["id"] != original["id"] and edited.id == original["id"]
    assert edited.text == "@brand kettle broken"
    assert edited.edited_at == T0 + timedelta(minutes=3) and edited.created_at == T0


def test_a_deleted_post_is_found_on_recheck(fake: FakeX, url: str) -> None:
    kept = fake.post("1000", "@brand thanks", at=T0)
    doomed = fake.post("1001", "@brand buy crypto", at=T0 + timedelta(minutes=1))
    pages = drain(make(url))
    assert str(doomed["id"]) in pages[-1].cursor.split("w=")[1].split(",")  # type: ignore[union-attr]
    fake.delete(doomed["id"])
    later = drain(make(url), pages[-1].cursor)
    assert [(type(e), e.message_id) for e in events(later)] == [(MessageDeleted, doomed["id"])]
    assert events(drain(make(url), later[-1].cursor)) == []  # reported once
    lookups = [r for r in fake.requests if r.path == "/2/tweets" and r.method == "GET"]
    assert set(lookups[-1].params["ids"].split(",")) == {kept["id"]}  # the deleted one is no longer looked up


def test_deletion_window_zero_makes_no_lookups(fake: FakeX, url: str) -> None:
    fake.post("1000", "@brand hi", at=T0)
    drain(make(url, recheck_recent=0))
    assert not [r for r in fake.requests if r.path == "/2/tweets" and r.method == "GET"]


def test_a_rate_limit_is_retryable_with_the_reset_wait(fake: FakeX, url: str) -> None:
    fake.post("1000", "@brand hi", at=T0)
    adapter = make(url)

    async def limited(a: XAdapter) -> None:
        fake.rate_limit_next()
        async for _ in a.listen(None, follow=False):
            pass

    with pytest.raises(RetryableError) as caught:
        run(adapter, limited)
    assert caught.value.retry_after is not None and 0 <= caught.value.retry_after <= 2
    assert fake.requests[-1].status == 429


def test_every_answer_carries_rate_limit_headers(fake: FakeX, url: str) -> None:
    client = XClient(url, 5, bearer_token=FakeX.APP_TOKEN)
    client.return_type = requests.Response  # the raw answer, headers included
    answer = client.get_tweets(["1"], user_auth=False)
    assert {"x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"} <= set(answer.headers)


def test_follow_mode_picks_up_new_posts(fake: FakeX, url: str) -> None:
    adapter = make(url, poll_seconds=0.05)

    async def follow(a: XAdapter) -> str:
        async for page in a.listen(None, follow=True):
            for event in page.events:
                return str(event.message.text)
        raise AssertionError("listen ended")

    async def later() -> None:
        # Post only once the listener has polled and found nothing (two mentions reads).
        deadline = asyncio.get_running_loop().time() + 10
        while sum(1 for r in fake.requests if "/mentions" in r.path) < 2:
            assert asyncio.get_running_loop().time() < deadline, "the listener never polled"
            await asyncio.sleep(0.01)
        fake.post("1000", "@brand are you there?")

    async def both(a: XAdapter) -> str:
        task = asyncio.create_task(later())
        text = await follow(a)
        await task
        return text

    assert run(adapter, both) == "@brand are you there?"


def test_a_cursor_from_elsewhere_is_fatal(fake: FakeX, url: str) -> None:
    with pytest.raises(FatalError, match="not a cursor"):
        drain(make(url), "v1:3:100:file.ndjson")


# ------------------------------------------------------------ replies


def test_self_serve_refuses_a_reply_to_a_post_without_mention_before_calling_x(fake: FakeX, url: str) -> None:
    post = fake.post("1000", "my kettle broke", at=T0)
    with pytest.raises(SkippableError, match="does not mention or quote @brand"):
        send(make(url), post["id"], "Sorry to hear that")
    assert fake.writes() == 0


def test_self_serve_allows_replies_to_mentions_replies_and_quotes(fake: FakeX, url: str) -> None:
    ours = fake.post(BRAND, "The X200 is out", at=T0)
    quoting = fake.post("1000", "look at this", quote=ours["id"], at=T0 + timedelta(minutes=1))
    replying = fake.post("1001", "nice", reply_to=ours["id"], at=T0 + timedelta(minutes=2))
    mentioning = fake.post("1000", "@Brand help", at=T0 + timedelta(minutes=3))
    for i, target in enumerate((quoting, replying, mentioning)):
        sent = send(make(url), target["id"], f"Thanks {i}", key=f"k{i}")
        assert sent.message.parent_id == target["id"]
    assert fake.writes() == 3


def test_x_403_for_a_disallowed_reply_is_skippable(fake: FakeX, url: str) -> None:
    post = fake.post("1000", "my kettle broke", at=T0)
    with pytest.raises(SkippableError, match="403: Forbidden: Reply to this conversation is not allowed"):
        send(make(url, access_tier="enterprise"), post["id"], "Sorry to hear that")
    assert fake.writes() == 1  # an enterprise setting does not check; the self-serve app was refused


def test_enterprise_access_replies_to_anything(served: tuple[Switchable, FakeServer], url: str) -> None:
    served[0].fake = fake = FakeX(self_serve=False)
    fake.add_user("1000", "alice")
    post = fake.post("1000", "my kettle broke", at=T0)
    sent = send(make(url, access_tier="enterprise"), post["id"], "Sorry to hear that")
    assert sent.message.thread_root_id == post["id"] and fake.writes() == 1


def test_a_retried_reply_posts_once(fake: FakeX, url: str) -> None:
    post = fake.post("1000", "@brand where is my order", at=T0)
    adapter = make(url)
    fake.lose_next_response()
    with pytest.raises(RetryableError):
        send(adapter, post["id"], "It ships today", key="r1")
    first = send(adapter, post["id"], "It ships today", key="r1")
    again = send(adapter, post["id"], "It ships today", key="r1")
    assert first.message.id == again.message.id
    assert fake.writes() == 1
    assert [t for t in fake.tweets.values() if t["text"] == "It ships today"] == [fake.tweets[first.message.id]]


def test_a_reply_to_a_deleted_post_is_skippable(fake: FakeX, url: str) -> None:
    post = fake.post("1000", "@brand hi", at=T0)
    fake.delete(post["id"])
    with pytest.raises(SkippableError, match="was deleted"):
        send(make(url), post["id"], "Hello")
    assert fake.writes() == 0


# ------------------------------------------------------------ credentials and settings


def test_a_bad_token_is_fatal_and_never_echoed(fake: FakeX, url: str, caplog: pytest.LogCaptureFixture) -> None:
    secret = "sekrit-user-token-123"
    adapter = make(url, user_access_token=secret)
    with caplog.at_level(logging.DEBUG, logger="tweepy.client"), pytest.raises(FatalError) as caught:
        drain(adapter)
    assert "user_access_token" in caught.value.operator_message and "401" in caught.value.operator_message
    assert secret not in str(caught.value) and secret not in (caught.value.detail or "")
    assert "Making API request" in caplog.text and secret not in caplog.text  # tweepy logs headers: redacted
    assert secret not in repr(adapter.settings)


def test_a_bad_app_token_names_bearer_token(fake: FakeX, url: str) -> None:
    fake.post("1000", "kettle", at=T0)
    with pytest.raises(FatalError, match="bearer_token"):
        drain(make(url, bearer_token="wrong", mentions=False, query="kettle"))


def test_oauth1_user_keys_work(fake: FakeX, url: str) -> None:
    fake.post("1000", "@brand hi", at=T0)
    adapter = make(
        url,
        user_access_token=None,
        consumer_key=FakeX.CONSUMER_KEY,
        consumer_secret=FakeX.CONSUMER_SECRET,
        access_token=FakeX.ACCESS_TOKEN,
        access_token_secret=FakeX.ACCESS_TOKEN_SECRET,
    )
    assert [e.message.text for e in events(drain(adapter))] == ["@brand hi"]
    oauth = [r for r in fake.requests if r.path.endswith("/mentions")]
    assert oauth and oauth[-1].status == 200


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"consumer_key": "a"}, "OAuth 1.0a needs all four keys"),
        ({"user_access_token": None}, "mentions need the account's user context"),
        ({"mentions": False, "query": None}, "nothing to listen to"),
        ({"max_results": 5}, "greater than or equal to 10"),
    ],
)
def test_settings_are_checked(settings: dict[str, Any], problem: str) -> None:
    base = {"bearer_token": "b", "user_access_token": "u", "query": "kettle"}
    with pytest.raises(ValidationError, match=problem):
        XSettings.model_validate({**base, **settings})
