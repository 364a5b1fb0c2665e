"""The Meta adapter over HTTP against FakeMeta: polling, cursors, replies, errors and settings."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from pydantic import ValidationError
from scrm_meta import MetaAdapter, MetaSettings
from scrm_meta.testing import WRITE_FB, FakeMeta

from scrm_core import (
    EventPage,
    FatalError,
    MessageCreated,
    MessageEdited,
    RetryableError,
    SentReply,
    SkippableError,
)
from scrm_core.testing.fakes import FakeServer

from .conftest import PAGE_ID, make_adapter

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
R = TypeVar("R")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def run(adapter: MetaAdapter, fn: Callable[[MetaAdapter], Awaitable[R]]) -> R:
    async def go() -> R:
        await adapter.start()
        try:
            return await fn(adapter)
        finally:
            await adapter.close()

    return asyncio.run(go())


def drain(adapter: MetaAdapter, cursor: str | None = None) -> list[EventPage]:
    async def pages(a: MetaAdapter) -> list[EventPage]:
        return [p async for p in a.listen(cursor, follow=False)]

    return run(adapter, pages)


def keys(pages: list[EventPage]) -> list[str]:
    return [e.key for p in pages for e in p.events]


def reply(adapter: MetaAdapter, target: str, text: str, key: str = "k1") -> SentReply:
    return run(adapter, lambda a: a.send_reply(target, text, key))


# ---------------------------------------------------------------- polling


def test_resume_sees_new_comments_and_post_edits_but_no_false_edits(fake: FakeMeta, served: FakeServer) -> None:
    post = fake.add_post("77", "kettle broke", at(0))
    quiet = fake.add_post("78", "nice kettle", at(1))
    pages = drain(make_adapter(served.url))
    assert keys(pages) == [f"c:facebook:{post}", f"c:facebook:{quiet}"]
    cursor = pages[-1].cursor
    c1 = fake.add_comment(post, "79", "mine too", at(2))  # moves the post's updated_time: not an edit
    fake.edit(quiet, "nice kettle (edited)", at(3))
    rest = [e for p in drain(make_adapter(served.url), cursor) for e in p.events]
    assert [e.key for e in rest] == [f"c:facebook:{c1}", f"e:facebook:{quiet}:{at(3).isoformat()}"]
    edit = rest[1]
    assert isinstance(edit, MessageEdited) and edit.message.text == "nice kettle (edited)"
    assert drain(make_adapter(served.url), drain(make_adapter(served.url), cursor)[-1].cursor) == []


def test_an_event_in_the_same_second_as_the_cursor_is_delivered_once(fake: FakeMeta, served: FakeServer) -> None:
    post = fake.add_post("77", "hello", at(0))
    first = drain(make_adapter(served.url))
    late = fake.add_comment(post, "78", "same second", at(0))
    again = drain(make_adapter(served.url), first[-1].cursor)
    assert keys(again) == [f"c:facebook:{late}"]
    assert drain(make_adapter(served.url), again[-1].cursor) == []


def test_comment_pages_are_followed(fake: FakeMeta, served: FakeServer) -> None:
    post = fake.add_post("77", "giveaway: comment to win", at(0))
    for i in range(130):  # more than one Graph page of 100
        fake.add_comment(post, str(1000 + i), f"me {i}", at(1) + timedelta(seconds=i))
    events = [e for p in drain(make_adapter(served.url, page_size=50)) for e in p.events]
    assert len(events) == 131 and len({e.key for e in events}) == 131
    assert any(path.endswith("/comments") and status == 200 for _, path, status in fake.requests)


def test_max_posts_bounds_a_pass(fake: FakeMeta, served: FakeServer) -> None:
    for i in range(5):
        fake.add_post("77", f"post {i}", at(i))
    events = [e for p in drain(make_adapter(served.url, max_posts=2)) for e in p.events]
    assert [e.message.text for e in events if isinstance(e, MessageCreated)] == ["post 3", "post 4"]


def test_a_cursor_of_another_platform_or_shape_is_fatal(served: FakeServer) -> None:
    with pytest.raises(FatalError, match="belongs to a 'instagram' source"):
        drain(make_adapter(served.url), "meta1|instagram|0")
    with pytest.raises(FatalError, match="whole Unix seconds"):
        drain(make_adapter(served.url), "meta1|facebook|soon")


def test_instagram_media_comments_and_replies(fake: FakeMeta, served: FakeServer) -> None:
    media = fake.add_media("new X200 #kettles", at(0))
    top = fake.add_comment(media, "555", "does it do 110V?", at(1))
    fake.add_comment(top, fake.ig_user_id, "yes it does", at(2))
    events = [e for p in drain(make_adapter(served.url, platform="instagram")) for e in p.events]
    messages = [e.message for e in events if isinstance(e, MessageCreated)]
    assert [(m.network, m.thread_root_id, m.parent_id, m.direction.value) for m in messages] == [
        ("instagram", None, None, "outbound"),
        ("instagram", media, media, "inbound"),
        ("instagram", media, top, "outbound"),
    ]
    assert messages[0].hashtags == ["kettles"] and messages[1].author.account_id == "555"


# ---------------------------------------------------------------- replies


def test_a_retried_reply_after_a_lost_answer_posts_once(fake: FakeMeta, served: FakeServer) -> None:
    post = fake.add_post("77", "kettle broke", at(0))
    comment = fake.add_comment(post, "77", "still broken", at(1))
    fake.lose_next_response()
    with pytest.raises(RetryableError):
        reply(make_adapter(served.url), comment, "We are sending a new one.")
    sent = reply(make_adapter(served.url), comment, "We are sending a new one.")
    assert [n.id for n in fake.replies_to(comment)] == [sent.message.id]
    m = sent.message
    assert (m.parent_id, m.thread_root_id, m.direction.value) == (comment, post, "outbound")
    assert m.author.account_id == PAGE_ID


def test_instagram_reply_to_a_reply_goes_under_the_top_comment_once(fake: FakeMeta, served: FakeServer) -> None:
    media = fake.add_media("X200", at(0))
    top = fake.add_comment(media, "555", "price?", at(1))
    nested = fake.add_comment(top, "556", "also want to know", at(2))
    adapter = make_adapter(served.url, platform="instagram")
    first = reply(adapter, nested, "It is 49 EUR.")
    again = reply(adapter, nested, "It is 49 EUR.")
    assert first.message.id == again.message.id
    assert [n.text for n in fake.replies_to(top)] == ["also want to know", "It is 49 EUR."]
    assert first.message.thread_root_id == media and first.message.network == "instagram"


def test_replying_to_a_deleted_comment_is_skippable(fake: FakeMeta, served: FakeServer) -> None:
    post = fake.add_post("77", "x", at(0))
    gone = fake.add_comment(post, "77", "spam", at(1))
    fake.remove(gone)
    with pytest.raises(SkippableError, match="no longer exists"):
        reply(make_adapter(served.url), gone, "hello")


# ---------------------------------------------------------------- errors


def test_a_bad_token_is_fatal_names_the_setting_and_does_not_echo_it(served: FakeServer) -> None:
    wrong = "EAAB-not-a-real-token-123"
    with pytest.raises(FatalError) as caught:
        drain(make_adapter(served.url, page_access_token=wrong))
    text = f"{caught.value} {caught.value.detail} {caught.value!r}"
    assert "page_access_token" in text and "190" in text
    assert wrong not in text


def test_a_missing_permission_is_fatal_and_names_it(served: FakeServer) -> None:
    fake = FakeMeta(permissions={"pages_read_engagement"})
    post = fake.add_post("77", "x", at(0))
    with FakeServer(fake.app) as server, pytest.raises(FatalError, match=WRITE_FB):
        reply(make_adapter(server.url), post, "hello")


@pytest.mark.parametrize("how", ["page_limit", "app_limit"])
def test_rate_limits_are_retryable_with_the_wait_meta_names(fake: FakeMeta, served: FakeServer, how: str) -> None:
    fake.add_post("77", "x", at(0))
    if how == "page_limit":
        fake.rate_limit_next()
    else:
        fake.faults.rate_429 = 1.0
    with pytest.raises(RetryableError) as caught:
        drain(make_adapter(served.url))
    assert caught.value.retry_after == 60.0  # estimated_time_to_regain_access: 1 minute
    assert ("(#32)" if how == "page_limit" else "(#4)") in caught.value.operator_message
    assert fake.refusals == 1


def test_server_errors_are_retryable(fake: FakeMeta, served: FakeServer) -> None:
    fake.faults.rate_5xx = 1.0
    with pytest.raises(RetryableError, match="temporary Graph error 2"):
        drain(make_adapter(served.url))


# ---------------------------------------------------------------- settings


def test_settings_need_the_account_of_their_platform() -> None:
    base: dict[str, Any] = {"page_access_token": "t"}
    with pytest.raises(ValidationError, match="needs page_id"):
        MetaSettings.model_validate(base)
    with pytest.raises(ValidationError, match="needs ig_user_id"):
        MetaSettings.model_validate(base | {"platform": "instagram", "page_id": "1"})
    with pytest.raises(ValidationError, match="api_version"):
        MetaSettings.model_validate(base | {"page_id": "1", "api_version": "21"})
    assert MetaSettings.model_validate(base | {"page_id": "1"}).api_version == "v21.0"


def test_network_follows_the_platform() -> None:
    assert make_adapter("http://127.0.0.1:9").network == "facebook"
    assert make_adapter("http://127.0.0.1:9", platform="instagram").network == "instagram"


def test_the_entry_point_registers_the_adapter() -> None:
    from importlib.metadata import entry_points

    from scrm_meta import plugin

    (point,) = [p for p in entry_points(group="scrm") if p.name == "meta"]
    assert point.load() is plugin
    registered: list[type] = []
    plugin.scrm_register_networks(registered.append)
    assert registered == [MetaAdapter]
