"""What the conformance suite cannot see: re-checks, threads, mentions, replies, errors, settings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from scrm_reddit import RedditAdapter, RedditSettings
from scrm_reddit.testing import FakeReddit

from scrm_core import (
    Direction,
    EventPage,
    FatalError,
    MessageCreated,
    MessageDeleted,
    MessageEdited,
    ProfileUpdated,
    RetryableError,
    SentReply,
    SkippableError,
    SocialProfile,
)
from scrm_core.testing.fakes import FakeServer
from scrm_core.testing.network import default_scenario

from .conftest import PASSWORD, USER_AGENT, Switchable, drain, make_adapter, new_fake, reddit_scenario, run


@pytest.fixture
def fake(served: tuple[Switchable, FakeServer]) -> Iterator[FakeReddit]:
    switch, _ = served
    switch.fake = new_fake()
    yield switch.fake


@pytest.fixture
def url(served: tuple[Switchable, FakeServer]) -> str:
    return served[1].url


def events_of(pages: list[EventPage]) -> list[Any]:
    return [e for p in pages for e in p.events]


def created(pages: list[EventPage]) -> dict[str, Any]:
    return {e.message.id: e.message for e in events_of(pages) if isinstance(e, MessageCreated)}


def reply(adapter: RedditAdapter, parent: str, text: str, key: str) -> SentReply:
    async def go() -> SentReply:
        await adapter.start()
        try:
            return await adapter.send_reply(parent, text, key)
        finally:
            await adapter.close()

    return run(go)


def seed(fake: FakeReddit) -> tuple[str, str, str, str]:
    """A post, a comment on it, a reply to that comment and a reply to the reply."""
    post = fake.add_submission("alice", "kettle broke", "it stopped after two weeks")
    first = fake.add_comment("bob", post, "same here")
    second = fake.add_comment("carol", first, "mine too")
    third = fake.add_comment("dave", second, "and mine")
    return post, first, second, third


# ------------------------------------------------------------ re-check: deletions and edits


def test_deleted_and_removed_after_reading_become_message_deleted(fake: FakeReddit, url: str, tmp_path: Path) -> None:
    post, first, second, third = seed(fake)
    pages = run(lambda: drain(make_adapter(url, tmp_path)))
    assert set(created(pages)) == {post, first, second, third}
    assert not [e for e in events_of(pages) if isinstance(e, MessageDeleted)]

    fake.delete(first)  # by its author
    fake.remove(third)  # by a moderator
    again = run(lambda: drain(make_adapter(url, tmp_path), pages[-1].cursor))
    assert [e.key for e in events_of(again)] == [f"d:reddit:{first}", f"d:reddit:{third}"]
    assert any(r.path.rstrip("/") == "/api/info" for r in fake.requests)

    # Reported once: the next run from the new cursor has nothing more to say.
    assert events_of(run(lambda: drain(make_adapter(url, tmp_path), again[-1].cursor))) == []


def test_author_deleting_the_account_is_a_deletion(fake: FakeReddit, url: str, tmp_path: Path) -> None:
    _, first, _, _ = seed(fake)
    pages = run(lambda: drain(make_adapter(url, tmp_path)))
    fake.delete_account("bob")  # bob's comment keeps its text; its author reads [deleted]
    again = run(lambda: drain(make_adapter(url, tmp_path), pages[-1].cursor))
    assert [e.key for e in events_of(again)] == [f"d:reddit:{first}"]


def test_an_edit_becomes_message_edited_with_edited_at(fake: FakeReddit, url: str, tmp_path: Path) -> None:
    post, first, _, _ = seed(fake)
    pages = run(lambda: drain(make_adapter(url, tmp_path)))
    at = time.time() + 60
    fake.edit(first, "same here, fixed by the replacement", at=at)
    fake.edit(post, "update: fixed", at=at + 1)
    again = events_of(run(lambda: drain(make_adapter(url, tmp_path), pages[-1].cursor)))
    edits = {e.message.id: e.message for e in again if isinstance(e, MessageEdited)}
    assert set(edits) == {post, first} and len(again) == 2
    assert edits[first].text == "same here, fixed by the replacement"
    assert edits[first].edited_at is not None and abs(edits[first].edited_at.timestamp() - at) < 1e-3
    assert edits[post].text == "kettle broke\n\nupdate: fixed"  # title, then the self text
    assert edits[first].thread_root_id == post and edits[first].parent_id == post


def test_items_beyond_the_recheck_window_are_not_rechecked(fake: FakeReddit, url: str, tmp_path: Path) -> None:
    post, _, _, third = seed(fake)
    pages = run(lambda: drain(make_adapter(url, tmp_path, recheck_recent=2)))
    fake.delete(post)  # the oldest: out of a window of 2
    fake.delete(third)
    again = run(lambda: drain(make_adapter(url, tmp_path, recheck_recent=2), pages[-1].cursor))
    assert [e.key for e in events_of(again)] == [f"d:reddit:{third}"]


def test_first_read_of_an_already_edited_or_deleted_item(fake: FakeReddit, url: str, tmp_path: Path) -> None:
    _, first, second, third = seed(fake)
    fake.edit(first, "edited before we looked", at=1_800_000_000.0)
    fake.delete(second)
    fake.remove(third)  # removed before anyone read it: gone from the listing, never seen
    keys = [e.key for e in events_of(run(lambda: drain(make_adapter(url, tmp_path))))]
    assert keys.index(f"e:reddit:{first}:2027-01-15T08:00:00+00:00") == keys.index(f"c:reddit:{first}") + 1
    assert keys.index(f"d:reddit:{second}") == keys.index(f"c:reddit:{second}") + 1
    assert not [k for k in keys if third in k]


# ------------------------------------------------------------ threads, cursors, mentions


def test_threads_use_link_id_and_parent_id(fake: FakeReddit, url: str, tmp_path: Path) -> None:
    post, first, second, third = seed(fake)
    messages = created(run(lambda: drain(make_adapter(url, tmp_path))))
    assert (messages[post].thread_root_id, messages[post].parent_id) == (None, None)
    assert (messages[first].thread_root_id, messages[first].parent_id) == (post, post)
    assert (messages[second].thread_root_id, messages[second].parent_id) == (post, first)
    assert (messages[third].thread_root_id, messages[third].parent_id) == (post, second)
    assert messages[third].author.account_id == f"t2_{fake.accounts['dave'].id36}"
    assert messages[third].author.handle == "dave"
    assert messages[third].url and messages[third].url.startswith(url + "/r/acme/comments/")


def test_resume_reads_only_what_came_after(fake: FakeReddit, url: str, tmp_path: Path) -> None:
    post, *_ = seed(fake)
    pages = run(lambda: drain(make_adapter(url, tmp_path)))
    later = [fake.add_comment("erin", post, f"comment {i}") for i in range(7)]
    newer_post = fake.add_submission("frank", "another question")
    again = run(lambda: drain(make_adapter(url, tmp_path), pages[-1].cursor))
    assert [m for m in created(again)] == [*later, newer_post]
    befores = [r for r in fake.requests if r.method == "GET" and r.path.endswith("/comments")]
    assert befores, "the resumed read must use the listing"


def test_an_anchor_that_left_the_listing_does_not_stall_it(fake: FakeReddit, url: str, tmp_path: Path) -> None:
    post, _, _, third = seed(fake)
    pages = run(lambda: drain(make_adapter(url, tmp_path)))
    fake.remove(third)  # the newest comment read: the cursor's anchor for r/acme/comments
    later = [fake.add_comment("erin", post, f"comment {i}") for i in range(5)]
    again = run(lambda: drain(make_adapter(url, tmp_path), pages[-1].cursor))
    assert [e.key for e in events_of(again)] == [f"c:reddit:{c}" for c in later] + [f"d:reddit:{third}"]
    assert events_of(run(lambda: drain(make_adapter(url, tmp_path), again[-1].cursor))) == []


def test_mentions_outside_the_subreddits_and_no_duplicates(fake: FakeReddit, url: str, tmp_path: Path) -> None:
    fake.add_account("brand")
    elsewhere = fake.add_submission("gina", "best kettles?", subreddit="kitchen")
    mention = fake.add_comment("gina", elsewhere, "ask u/brand about it")
    post = fake.add_submission("alice", "kettle question")
    inside = fake.add_comment("bob", post, "hey /u/brand, any news?")
    pages = run(lambda: drain(make_adapter(url, tmp_path)))
    messages = created(pages)
    assert list(messages) == [mention, post, inside]  # r/kitchen is not read: only the mention comes
    assert messages[mention].thread_root_id == elsewhere and messages[mention].parent_id == elsewhere
    assert messages[mention].mentions == ["brand"]
    assert [e.key for e in events_of(pages)].count(f"c:reddit:{inside}") == 1, "listed twice, read once"


def test_outbound_is_the_configured_account(fake: FakeReddit, url: str, tmp_path: Path) -> None:
    post = fake.add_submission("alice", "help")
    ours = fake.add_comment("brand", post, "we are on it")
    messages = created(run(lambda: drain(make_adapter(url, tmp_path))))
    assert messages[ours].direction is Direction.outbound
    assert messages[post].direction is Direction.inbound


# ------------------------------------------------------------ replies


def test_reply_to_a_reply_is_posted_once(fake: FakeReddit, url: str, tmp_path: Path) -> None:
    post, _, second, _ = seed(fake)
    adapter = make_adapter(url, tmp_path)
    sent = reply(adapter, second, "Sorry about that, we will send a new one.", "k1")
    assert sent.message.parent_id == second and sent.message.thread_root_id == post
    assert sent.message.direction is Direction.outbound
    fake.lose_next_response()
    with pytest.raises(RetryableError):
        reply(adapter, second, "And a coupon.", "k2")
    again = reply(adapter, second, "And a coupon.", "k2")  # the engine's retry, same key
    assert reply(adapter, second, "Sorry about that, we will send a new one.", "k1").message.id == sent.message.id
    mine = fake.replies_to(second, "brand")
    assert sorted(d["body"] for d in mine) == ["And a coupon.", "Sorry about that, we will send a new one."]
    assert again.message.id in {f"t1_{d['id']}" for d in mine}
    posts = [r for r in fake.requests if r.method == "POST" and r.path.rstrip("/") == "/api/comment"]
    assert len(posts) == 2, "prawcore must not retry the POST whose answer was lost"


def test_reply_to_deleted_or_locked_is_skippable(fake: FakeReddit, url: str, tmp_path: Path) -> None:
    post, first, second, _ = seed(fake)
    fake.delete(first)
    with pytest.raises(SkippableError, match="DELETED_COMMENT"):
        reply(make_adapter(url, tmp_path), first, "hello", "k")
    fake.lock(post)
    with pytest.raises(SkippableError, match="THREAD_LOCKED"):
        reply(make_adapter(url, tmp_path), second, "hello", "k")
    with pytest.raises(SkippableError, match="fullname"):
        reply(make_adapter(url, tmp_path), "12345", "hello", "k")


# ------------------------------------------------------------ errors and rate limits


def test_429_is_retryable_with_the_reset_from_the_headers(fake: FakeReddit, url: str, tmp_path: Path) -> None:
    seed(fake)
    fake.rate_limit_next()
    with pytest.raises(RetryableError) as caught:
        run(lambda: drain(make_adapter(url, tmp_path)))
    assert caught.value.retry_after == pytest.approx(1.0)
    assert fake.statuses(429) == 1


def test_spent_budget_is_retryable_without_sleeping(
    url: str, tmp_path: Path, served: tuple[Switchable, FakeServer]
) -> None:
    served[0].fake = fake = new_fake(rate_limit=1, window=600)
    seed(fake)
    started = time.monotonic()
    with pytest.raises(RetryableError) as caught:  # /api/v1/me spends the budget
        run(lambda: drain(make_adapter(url, tmp_path)))
    assert time.monotonic() - started < 5, "prawcore must not sleep until the window resets"
    assert caught.value.retry_after is not None and caught.value.retry_after > 60
    assert fake.statuses(429) == 0, "the adapter stopped before Reddit had to refuse"


def test_bad_password_is_fatal_and_names_the_setting(fake: FakeReddit, url: str, tmp_path: Path) -> None:
    secret = "wrong-password-1234"
    with pytest.raises(FatalError) as caught:
        run(lambda: drain(make_adapter(url, tmp_path, password=secret)))
    text = f"{caught.value.operator_message} {caught.value.detail} {caught.value!r}"
    assert "password" in text and "invalid_grant" in text
    assert secret not in text and PASSWORD not in text


def test_bad_client_secret_is_fatal_and_names_the_setting(fake: FakeReddit, url: str, tmp_path: Path) -> None:
    secret = "not-the-client-secret"
    with pytest.raises(FatalError) as caught:
        run(lambda: drain(make_adapter(url, tmp_path, client_secret=secret)))
    text = f"{caught.value.operator_message} {caught.value.detail} {caught.value!r}"
    assert "client_secret" in text and secret not in text and PASSWORD not in text


def test_refresh_token_login(fake: FakeReddit, url: str, tmp_path: Path, served: tuple[Switchable, FakeServer]) -> None:
    served[0].fake = fake = new_fake(refresh_tokens={"rt-123": "brand"})
    post = fake.add_submission("alice", "hello")
    adapter = make_adapter(url, tmp_path, password=None, refresh_token="rt-123")
    assert set(created(run(lambda: drain(adapter)))) == {post}


def test_missing_or_private_subreddit_is_fatal(fake: FakeReddit, url: str, tmp_path: Path) -> None:
    with pytest.raises(FatalError, match="check the subreddits setting"):
        run(lambda: drain(make_adapter(url, tmp_path, subreddits=["nosuchplace"])))
    fake.add_subreddit("secretclub", private=True)
    with pytest.raises(FatalError, match="403"):
        run(lambda: drain(make_adapter(url, tmp_path, subreddits=["secretclub"])))


# ------------------------------------------------------------ settings


def _settings(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "client_id": "id",
        "client_secret": "s3cret-value",
        "username": "brand",
        "password": "p4ss-value",
        "user_agent": USER_AGENT,
        "subreddits": ["acme"],
    }
    values.update(changes)
    return values


@pytest.mark.parametrize(
    "agent",
    ["scrm/1.0", "python:com.acme.scrm:v1 by brand", "python:com.acme.scrm (by /u/brand)", "python:a:b:c (by /u/x)"],
)
def test_malformed_user_agent_is_refused_naming_the_setting(agent: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RedditSettings(**_settings(user_agent=agent))
    errors = caught.value.errors()
    assert [e["loc"] for e in errors] == [("user_agent",)]
    assert "<platform>:<app ID>:<version string> (by /u/<reddit username>)" in str(caught.value)


def test_good_user_agents_are_taken() -> None:
    for agent in ("android:com.example.myredditapp:v1.2.3 (by /u/kemitche)", "linux:scrm:0.1 (by /u/acme_support)"):
        assert RedditSettings(**_settings(user_agent=agent)).user_agent == agent


def test_settings_need_exactly_one_grant_and_hide_secrets() -> None:
    with pytest.raises(ValidationError, match="exactly one of password"):
        RedditSettings(**_settings(refresh_token="rt"))
    with pytest.raises(ValidationError, match="exactly one of password"):
        RedditSettings(**_settings(password=None))
    with pytest.raises(ValidationError, match="client_secret"):
        RedditSettings(**_settings(client_secret=None))
    settings = RedditSettings(**_settings(subreddits=["r/acme", "/r/acme", "Kettles"]))
    assert settings.subreddits == ["acme", "Kettles"]
    shown = f"{settings!r} {settings}"
    assert "s3cret-value" not in shown and "p4ss-value" not in shown


def test_garbage_and_foreign_cursors_are_fatal(fake: FakeReddit, url: str, tmp_path: Path) -> None:
    for bad in ("v1:3:120:file.ndjson", 'rd1:{"a":{"x":"not-a-fullname"},"w":[]}', "rd1:[]"):
        with pytest.raises(FatalError, match="is not a cursor this adapter wrote"):
            run(lambda bad=bad: drain(make_adapter(url, tmp_path), bad))


def test_fake_loads_roots_as_posts_and_refuses_what_reddit_cannot_express() -> None:
    fake = FakeReddit()
    fake.load(reddit_scenario())
    assert sorted(t.kind for t in fake.things.values()) == ["t1"] * 5 + ["t3"] * 5
    alice = SocialProfile(network="reddit", account_id="t2_abc", handle="alice")
    renamed = alice.model_copy(update={"handle": "alice_new"})
    with pytest.raises(ValueError, match="usernames cannot change"):
        FakeReddit().load([ProfileUpdated(profile=alice, version="1"), ProfileUpdated(profile=renamed, version="2")])
    with pytest.raises(ValueError, match="a root needs a t3_ fullname"):
        FakeReddit().load(default_scenario("reddit"))
