"""What the conformance suite cannot see: sessions, handles, reply refs, rewinds, errors."""

from __future__ import annotations

import asyncio
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bluesky_testkit import BRAND, TEN_YEARS, Served, make
from scrm_bluesky import BlueskySettings
from scrm_bluesky.tid import reply_rkey, tid_time_us

from scrm_core.errors import FatalError, RetryableError
from scrm_core.models import EventPage, Message, MessageCreated, MessageDeleted, ProfileUpdated
from scrm_core.testing.network import drain

CREATE = "com.atproto.server.createSession"
REFRESH = "com.atproto.server.refreshSession"


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def messages(pages: list[EventPage]) -> list[Message]:
    return [e.message for p in pages for e in p.events if isinstance(e, MessageCreated)]


def by_text(pages: list[EventPage], text: str) -> Message:
    return next(m for m in messages(pages) if m.text == text)


# ------------------------------------------------------------ sessions


def test_second_start_reuses_the_saved_session(loaded: Served, tmp_path: Path) -> None:
    run(drain(make(loaded, tmp_path)))
    run(drain(make(loaded, tmp_path)))
    assert loaded.fake.calls[CREATE] == 1, "the second run logged in again instead of reusing the session file"
    path = tmp_path / "bsky.session"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert loaded.fake.APP_PASSWORD not in path.read_text()


def test_expired_access_token_is_refreshed_once(loaded: Served, tmp_path: Path) -> None:
    run(drain(make(loaded, tmp_path)))
    loaded.fake.expire_access_tokens()
    pages = run(drain(make(loaded, tmp_path)))
    assert messages(pages)
    assert loaded.fake.calls[REFRESH] == 1
    assert loaded.fake.calls[CREATE] == 1
    run(drain(make(loaded, tmp_path)))  # the refreshed session was saved: no second refresh
    assert loaded.fake.calls[REFRESH] == 1


def test_bad_app_password_is_fatal_and_not_echoed(loaded: Served, tmp_path: Path) -> None:
    wrong = "wxyz-wxyz-wxyz-wxyz"
    adapter = make(loaded, tmp_path, app_password=wrong)
    with pytest.raises(FatalError) as caught:
        run(drain(adapter))
    assert "app_password" in caught.value.operator_message
    assert wrong not in str(caught.value) and wrong not in repr(adapter.settings)
    assert not (tmp_path / "bsky.session").exists()


# ------------------------------------------------------------ identities and threads


def test_handle_change_keeps_the_did_in_jetstream(loaded: Served, tmp_path: Path) -> None:
    alice = loaded.fake.did_of("alice-new.bsky.social")
    adapter = make(loaded, tmp_path, mode="jetstream", wanted_dids=[alice], backfill_seconds=TEN_YEARS)
    updates = [e for p in run(drain(adapter)) for e in p.events if isinstance(e, ProfileUpdated)]
    assert [u.profile.handle for u in updates] == ["alice.bsky.social", "alice-new.bsky.social"]
    assert {u.profile.account_id for u in updates} == {alice}


def test_handle_change_keeps_the_did_when_polling(loaded: Served, tmp_path: Path) -> None:
    first = run(drain(make(loaded, tmp_path)))
    alice = by_text(first, "love the replacement kettle").author
    loaded.fake.set_handle(alice.account_id, "alice.example.com")
    loaded.fake.add_post(alice.account_id, "my new kettle is done", datetime.now(UTC))
    later = run(drain(make(loaded, tmp_path), first[-1].cursor))
    author = by_text(later, "my new kettle is done").author
    assert (author.account_id, author.handle) == (alice.account_id, "alice.example.com")


def test_reply_to_a_reply_refers_to_the_thread_root(loaded: Served, tmp_path: Path) -> None:
    pages = run(drain(make(loaded, tmp_path)))
    root, target = by_text(pages, "my kettle stopped working (fixed now)"), by_text(pages, "done, thanks")
    assert target.thread_root_id == root.id and target.parent_id != root.id
    adapter = make(loaded, tmp_path)

    async def send() -> Any:
        await adapter.start()
        try:
            return await adapter.send_reply(target.id, "glad we could help", "key-1")
        finally:
            await adapter.close()

    sent = run(send()).message
    assert (sent.thread_root_id, sent.parent_id) == (root.id, target.id)
    record = next(r for r in loaded.fake.posts_by(loaded.fake.did_of(BRAND)) if r["text"] == "glad we could help")
    records = loaded.fake.records
    strong_ref = {"uri", "cid"}
    # the root ref is copied from the parent's own record (the root's cid when that reply was made)
    assert {k: record["reply"]["root"][k] for k in strong_ref} == records[target.id].value["reply"]["root"]
    assert record["reply"]["root"]["uri"] == root.id
    assert {k: record["reply"]["parent"][k] for k in strong_ref} == {"uri": target.id, "cid": records[target.id].cid}


def test_a_retried_reply_hits_the_same_record_key(loaded: Served, tmp_path: Path) -> None:
    pages = run(drain(make(loaded, tmp_path)))
    target = by_text(pages, "where can I buy the X200?")
    adapter = make(loaded, tmp_path)

    async def send(key: str) -> Any:
        await adapter.start()
        try:
            return (await adapter.send_reply(target.id, "at our shop", key)).message
        finally:
            await adapter.close()

    first, again = run(send("k")), run(send("k"))
    assert first.id == again.id and first.id.endswith("/" + reply_rkey("k", tid_time_us(target.id.rsplit("/", 1)[1])))
    assert sum(r["text"] == "at our shop" for r in loaded.fake.posts_by(loaded.fake.did_of(BRAND))) == 1
    assert loaded.fake.calls["com.atproto.repo.createRecord"] == 1


def test_the_fake_refuses_an_existing_record_key_like_the_pds(loaded: Served) -> None:
    import httpx

    with httpx.Client(base_url=loaded.url) as http:
        session = http.post(f"/xrpc/{CREATE}", json={"identifier": BRAND, "password": loaded.fake.APP_PASSWORD}).json()
        auth = {"authorization": f"Bearer {session['accessJwt']}"}
        record = {"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2024-05-01T00:00:00.000Z"}
        body = {"repo": session["did"], "collection": "app.bsky.feed.post", "rkey": "3kq5ycqeykc22", "record": record}
        assert http.post("/xrpc/com.atproto.repo.createRecord", json=body, headers=auth).status_code == 200
        again = http.post("/xrpc/com.atproto.repo.createRecord", json=body, headers=auth)
        assert again.status_code == 500 and again.json()["error"] == "InternalServerError"
        assert "ratelimit-remaining" in again.headers


# ------------------------------------------------------------ deletes, rewinds, limits, cursors


def test_polling_notices_a_deleted_post(loaded: Served, tmp_path: Path) -> None:
    first = run(drain(make(loaded, tmp_path)))
    gone = by_text(first, "agreed")
    loaded.fake.delete_post(gone.id)
    later = run(drain(make(loaded, tmp_path), first[-1].cursor))
    deleted = [e for p in later for e in p.events if isinstance(e, MessageDeleted)]
    assert [d.message_id for d in deleted] == [gone.id]
    assert not run(drain(make(loaded, tmp_path), later[-1].cursor)), "the deletion was reported twice"


def test_jetstream_resume_rewinds_and_loses_nothing(served: Served, tmp_path: Path) -> None:
    fake = served.fake
    fake.add_account("did:plc:brand00000000000000000000", BRAND)
    fake.add_account("did:plc:watched000000000000000000", "w.bsky.social")
    t0 = datetime(2024, 6, 1, tzinfo=UTC)
    uris = [
        fake.add_post("did:plc:watched000000000000000000", f"post {i}", t0 + timedelta(seconds=i)) for i in range(9)
    ]
    extra = {"mode": "jetstream", "wanted_dids": ["did:plc:watched000000000000000000"], "backfill_seconds": TEN_YEARS}
    pages = run(drain(make(served, tmp_path, **extra)))
    assert [m.id for m in messages(pages)] == uris
    middle = pages[1].cursor
    assert middle is not None
    rest = [m.id for m in messages(run(drain(make(served, tmp_path, **extra), middle)))]
    saved_us = int(middle.rsplit(":", 1)[1])
    assert fake.subscriptions[-1]["cursor"] == [str(saved_us - 5_000_000)]
    assert set(uris[6:]) <= set(rest), "resuming lost events"
    assert set(rest) & set(uris[:6]), "a resume must rewind a few seconds, re-reading events before the cursor"


def test_rate_limit_is_retryable_with_the_reset_time(loaded: Served, tmp_path: Path) -> None:
    adapter = make(loaded, tmp_path)

    async def go() -> None:
        await adapter.start()
        try:
            loaded.fake.rate_limit_next()
            [p async for p in adapter.listen(None, follow=False)]
        finally:
            await adapter.close()

    with pytest.raises(RetryableError) as caught:
        run(go())
    assert caught.value.retry_after is not None and 200 < caught.value.retry_after <= 300  # ratelimit-reset: w=300


@pytest.mark.parametrize("mode", ["poll", "jetstream"])
def test_cursor_of_the_other_mode_is_fatal(loaded: Served, tmp_path: Path, mode: str) -> None:
    other = "bsky-js:v1:1714554000000000" if mode == "poll" else "bsky-poll:v1:e30"
    with pytest.raises(FatalError, match="mode"):
        run(drain(make(loaded, tmp_path, mode=mode), other))


def test_settings_keep_the_password_secret() -> None:
    s = BlueskySettings(identifier="a.bsky.social", app_password="abcd-efgh-ijkl-mnop")
    assert "abcd-efgh" not in repr(s) and "abcd-efgh" not in str(s.model_dump())
    with pytest.raises(ValueError):
        BlueskySettings(identifier="a", app_password="x", mode="firehose")  # type: ignore[arg-type]
