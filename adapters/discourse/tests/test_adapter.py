"""Polling re-checks, replies, profiles and error mapping against the fake forum."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from pydantic import SecretStr, ValidationError
from scrm_discourse import DiscourseAdapter, DiscourseSettings
from scrm_discourse.cursor import PollState
from scrm_discourse.testing import FakeDiscourse

from scrm_core import (
    AdapterContext,
    Direction,
    EventPage,
    FatalError,
    MessageCreated,
    MessageDeleted,
    MessageEdited,
    RetryableError,
    SkippableError,
)
from scrm_core.testing.fakes import FakeServer
from scrm_core.testing.network import drain

from .conftest import BRAND, make_adapter

T = TypeVar("T")


def run(adapter: DiscourseAdapter, work: Awaitable[T]) -> T:
    async def go() -> T:
        try:
            return await work
        finally:
            await adapter.close()

    return asyncio.run(go())


def keys(pages: list[EventPage]) -> list[str]:
    return [e.key for p in pages for e in p.events]


# ------------------------------------------------------------ polling


def test_recheck_finds_an_edit_and_deletions_once(fake: FakeDiscourse, server: FakeServer) -> None:
    first = asyncio.run(drain(make_adapter(server.url)))
    cursor = first[-1].cursor
    at = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    fake.edit(105, "does the X200 work with 110V outlets in Canada?", at=at)
    fake.delete(109)  # a moderator: gone from /posts.json, 404 for non-staff
    fake.delete(110, by_author=True)  # withdrawn: still listed, user_deleted
    fake.touch(111)  # not a text change: no edit
    again = asyncio.run(drain(make_adapter(server.url), cursor))
    events = [e for p in again for e in p.events]
    assert [e.key for e in events] == [
        f"e:discourse:105:{at.isoformat()}",
        "d:discourse:109",
        "d:discourse:110",
    ]
    edit = events[0]
    assert isinstance(edit, MessageEdited) and "Canada" in edit.message.text
    assert (edit.message.thread_root_id, edit.message.parent_id) == (None, None)
    # Nothing is reported twice.
    assert keys(asyncio.run(drain(make_adapter(server.url), again[-1].cursor))) == []


def test_deletion_seen_by_a_non_staff_user_as_404(server: FakeServer, fake: FakeDiscourse) -> None:
    fake.add_user(2000, "watcher", "Watcher")
    adapter = make_adapter(server.url, api_username="watcher")
    cursor = asyncio.run(drain(adapter))[-1].cursor
    fake.delete(108)
    events = [e for p in asyncio.run(drain(make_adapter(server.url, api_username="watcher"), cursor)) for e in p.events]
    assert [type(e) for e in events] == [MessageDeleted] and events[0].message_id == "108"  # type: ignore[union-attr]


def test_new_posts_after_the_cursor_and_threads(fake: FakeDiscourse, server: FakeServer) -> None:
    cursor = asyncio.run(drain(make_adapter(server.url)))[-1].cursor
    new = fake.reply(fake.topic_of(102), "carol", "mine works again after a descale", reply_to_post_number=3)
    events = [e for p in asyncio.run(drain(make_adapter(server.url), cursor)) for e in p.events]
    assert [e.key for e in events] == [f"c:discourse:{new}"]
    message = events[0].message  # type: ignore[union-attr]
    assert (message.thread_root_id, message.parent_id) == ("101", "103")  # post number 3 is 103
    assert message.author.account_id == "1002" and message.direction is Direction.inbound


def test_outbound_and_urls(fake: FakeDiscourse, server: FakeServer) -> None:
    pages = asyncio.run(drain(make_adapter(server.url)))
    created = {e.message.id: e.message for p in pages for e in p.events if isinstance(e, MessageCreated)}
    assert created["103"].direction is Direction.outbound and created["102"].direction is Direction.inbound
    assert created["103"].url is not None and created["103"].url.startswith(f"{server.url}/t/")


def test_rechecks_are_bounded_by_the_window(fake: FakeDiscourse, server: FakeServer) -> None:
    cursor = asyncio.run(drain(make_adapter(server.url, recheck_recent=2)))[-1].cursor
    assert sorted(PollState.parse(cursor).window) == [110, 111]
    fake.edit(105, "edited long after it left the window")
    assert keys(asyncio.run(drain(make_adapter(server.url, recheck_recent=2), cursor))) == []


def test_category_filter_moves_the_cursor_without_events(fake: FakeDiscourse, server: FakeServer) -> None:
    pages = asyncio.run(drain(make_adapter(server.url, categories=[fake.category_id + 1])))
    assert keys(pages) == [] and PollState.parse(pages[-1].cursor).last_id == 111


def test_tag_filter(fake: FakeDiscourse, server: FakeServer) -> None:
    pages = asyncio.run(drain(make_adapter(server.url, tags=["Kettles"])))
    assert keys(pages) == ["c:discourse:111"]


def test_backfill_limit_on_a_fresh_start(fake: FakeDiscourse, server: FakeServer) -> None:
    fake.latest_page_size = 2  # so the limit is reached in the middle of the walk
    pages = asyncio.run(drain(make_adapter(server.url, backfill_posts=3)))
    assert [k for k in keys(pages) if k.startswith("c:")] == [f"c:discourse:{i}" for i in (109, 110, 111)]


@pytest.mark.parametrize("cursor", ["1234", "v1:abc:", "v2:1:", "v1:5:9.abcdef"])
def test_foreign_cursors_are_fatal(server: FakeServer, cursor: str) -> None:
    with pytest.raises(FatalError):
        asyncio.run(drain(make_adapter(server.url), cursor))


def test_follow_mode_picks_up_new_posts(fake: FakeDiscourse, server: FakeServer) -> None:
    adapter = make_adapter(server.url)

    async def follow() -> list[str]:
        seen: list[str] = []
        await adapter.start()
        try:
            async for page in adapter.listen(None, follow=True):
                seen += [e.key for e in page.events]
                if "c:discourse:112" in seen:
                    return seen
                if "c:discourse:111" in seen and len(seen) < 14:
                    fake.reply(fake.topic_of(105), "dave", "thanks, that answers it for me")
            raise AssertionError("listen(follow=True) ended")
        finally:
            await adapter.close()

    seen = asyncio.run(asyncio.wait_for(follow(), 10))
    assert seen.count("c:discourse:112") == 1


# ------------------------------------------------------------ errors


def test_rate_limit_is_retryable_with_the_wait(fake: FakeDiscourse, server: FakeServer) -> None:
    fake.rate_limit_wait = 7
    fake.rate_limit_next()
    with pytest.raises(RetryableError) as caught:
        asyncio.run(drain(make_adapter(server.url)))
    assert caught.value.retry_after == 7.0 and "too many times" in caught.value.operator_message


def test_bad_api_key_is_fatal_and_not_echoed(server: FakeServer) -> None:
    wrong = "wrong-key-0123456789abcdef"
    adapter = make_adapter(server.url, api_key=SecretStr(wrong))
    with pytest.raises(FatalError) as caught:
        asyncio.run(drain(adapter))
    error = caught.value
    assert "api_key" in error.operator_message and "api_username" in error.operator_message
    assert wrong not in f"{error.operator_message} {error.detail} {error!r}"
    assert wrong not in repr(adapter) + repr(adapter.settings)


def test_server_errors_are_retryable(fake: FakeDiscourse, server: FakeServer) -> None:
    fake.faults.rate_5xx = 1.0
    with pytest.raises(RetryableError):
        asyncio.run(drain(make_adapter(server.url)))


def test_unreachable_forum_is_retryable() -> None:
    adapter = make_adapter("http://127.0.0.1:9", timeout_seconds=2.0)
    with pytest.raises(RetryableError):
        asyncio.run(drain(adapter))


def test_settings_validation() -> None:
    with pytest.raises(ValidationError):
        DiscourseSettings(base_url="forum.example", api_key=SecretStr("k"), api_username="u")
    s = DiscourseSettings(base_url="https://forum.example/", api_key=SecretStr("k"), api_username="u")
    assert s.base_url == "https://forum.example" and s.recheck_recent == 100 and s.page_size == 50


# ------------------------------------------------------------ replies


def test_retried_reply_posts_once(fake: FakeDiscourse, server: FakeServer) -> None:
    text = "Sorry about that, a replacement is on its way."
    fake.lose_next_response()
    with pytest.raises(RetryableError):
        adapter = make_adapter(server.url)
        run(adapter, adapter.send_reply("102", text, "k1"))
    fake._memo.clear()
    adapter = make_adapter(server.url)
    sent = run(adapter, adapter.send_reply("102", text, "k1")).message
    assert len(fake.posts_by(BRAND, text)) == 1
    assert (sent.parent_id, sent.thread_root_id, sent.direction) == ("102", "101", Direction.outbound)
    again = make_adapter(server.url)
    assert run(again, again.send_reply("102", text, "k1")).message.id == sent.id
    assert len(fake.posts_by(BRAND, text)) == 1


def test_reply_to_a_topic_root(fake: FakeDiscourse, server: FakeServer) -> None:
    adapter = make_adapter(server.url)
    sent = run(adapter, adapter.send_reply("105", "Yes, it works from 110 to 240 volts.", "k2")).message
    assert (sent.parent_id, sent.thread_root_id) == ("105", "105")


def test_refused_reply_is_skippable_with_discourse_reason(fake: FakeDiscourse, server: FakeServer) -> None:
    adapter = make_adapter(server.url)
    with pytest.raises(SkippableError) as caught:
        run(adapter, adapter.send_reply("102", "ok", "k3"))
    assert "too short" in caught.value.operator_message


def test_reply_to_a_deleted_post_is_skippable(fake: FakeDiscourse, server: FakeServer) -> None:
    fake.delete(109)
    adapter = make_adapter(server.url)
    with pytest.raises(SkippableError):
        run(adapter, adapter.send_reply("109", "We are looking into it right now.", "k4"))


# ------------------------------------------------------------ profiles and threads


def test_fetch_profile_by_stable_id(fake: FakeDiscourse, server: FakeServer) -> None:
    adapter = make_adapter(server.url)
    profile = run(adapter, adapter.fetch_profile("1000"))  # by id, through the admin endpoint
    assert (profile.account_id, profile.handle, profile.display_name) == ("1000", "alice_new", "Alice")
    assert profile.avatar_url is not None and profile.avatar_url.startswith(server.url)


def test_fetch_thread_reads_every_chunk(fake: FakeDiscourse, server: FakeServer) -> None:
    topic = fake.topic_of(101)
    for i in range(25):  # past the 20-post first chunk of /t/{id}.json
        fake.reply(topic, "bob", f"me too, number {i} in the queue here")
    adapter = make_adapter(server.url)
    thread = run(adapter, adapter.fetch_thread("101"))
    assert len(thread) == 4 + 25 and thread[0].id == "101" and thread[0].thread_root_id is None
    assert all(m.thread_root_id == "101" for m in thread[1:])


def test_adapter_builds_from_plain_settings(server: FakeServer) -> None:
    from scrm_core import AdapterSettings

    class Loose(AdapterSettings):
        model_config = {"extra": "allow"}

    loose: Any = Loose(base_url=server.url, api_key="k", api_username=BRAND)
    adapter = DiscourseAdapter(loose, AdapterContext(name="x"))
    assert isinstance(adapter.settings, DiscourseSettings)
