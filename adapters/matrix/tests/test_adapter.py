"""What the conformance suite cannot see: gaps in a limited sync, live edits and redactions,
long polling, transaction-id idempotency on the server, error mapping and settings."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import SecretStr, ValidationError
from scrm_matrix import MatrixAdapter, MatrixSettings, txn_id_for
from scrm_matrix.testing import MatrixFaultProxy

from scrm_core import AdapterContext
from scrm_core.errors import FatalError, RetryableError, SkippableError
from scrm_core.models import (
    Direction,
    Event,
    MessageCreated,
    MessageDeleted,
    MessageEdited,
    ProfileUpdated,
    Visibility,
)

from .conftest import Homeserver

T = TypeVar("T")


def run(make: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
    async def go() -> T:
        return await asyncio.wait_for(make(), timeout)

    return asyncio.run(go())


class Room:
    """A brand (the adapter's account), a customer, and a public room they share."""

    def __init__(self, hs: Homeserver, url: str, tmp_path: Path) -> None:
        self.brand = hs.register("brand", displayname="Acme")
        self.alice = hs.register("alice", displayname="Alice")
        self.room = self.brand.create_room(preset="public_chat")
        self.alice.join(self.room, "Alice")
        self.url, self.tmp_path = url, tmp_path

    def adapter(self, **settings: Any) -> MatrixAdapter:
        settings.setdefault("access_token", self.brand.token)
        settings.setdefault("rooms", [self.room])
        settings.setdefault("page_size", 2)
        return MatrixAdapter(
            MatrixSettings(base_url=self.url, **settings), AdapterContext(name="m", base_dir=self.tmp_path)
        )

    def drain(self, cursor: str | None = None, **settings: Any) -> tuple[list[Event], str | None]:
        adapter = self.adapter(**settings)

        async def go() -> tuple[list[Event], str | None]:
            await adapter.start()
            events: list[Event] = []
            last = cursor
            try:
                async for page in adapter.listen(cursor, follow=False):
                    assert not page.rejects, page.rejects
                    events += page.events
                    last = page.cursor
            finally:
                await adapter.close()
            return events, last

        return run(go)


@pytest.fixture
def world(synapse: Homeserver, proxy: MatrixFaultProxy, proxy_url: str, tmp_path: Path) -> Room:
    return Room(synapse, proxy_url, tmp_path)


def created(events: list[Event]) -> list[MessageCreated]:
    return [e for e in events if isinstance(e, MessageCreated)]


# ---------------------------------------------------------------- listening


def test_a_limited_sync_is_back_filled(world: Room, proxy: MatrixFaultProxy) -> None:
    _, cursor = world.drain()
    texts = [f"message {i}" for i in range(9)]
    for text in texts:
        world.alice.say(world.room, text)
    proxy.requests.clear()
    events, _ = world.drain(cursor, page_size=2)  # the sync's timeline.limit is 2: seven are in the gap
    assert [e.message.text for e in created(events)] == texts
    paths = [path for _, path in proxy.requests]
    assert any(p.endswith("/messages") for p in paths), "the gap was not back-filled with /messages"


def test_resuming_mid_batch_after_new_messages_loses_nothing(world: Room) -> None:
    for i in range(4):
        world.alice.say(world.room, f"early {i}")
    adapter = world.adapter(page_size=2)

    async def first_page() -> str:
        await adapter.start()
        try:
            async for page in adapter.listen(None, follow=False):
                assert page.cursor is not None
                return page.cursor
        finally:
            await adapter.close()
        raise AssertionError("no page")

    cursor = run(first_page)
    assert json.loads(cursor)["done"], "the first page of a batch should carry a per-room count"
    world.alice.say(world.room, "late")
    # Synapse may answer the repeated sync from its response cache (without "late", and with
    # the old next_batch): then "late" comes with the drain after. Either way: each once.
    first, after = world.drain(cursor)
    second, _ = world.drain(after)
    texts = [e.message.text for e in created(first + second)]
    assert texts == ["early 0", "early 1", "early 2", "early 3", "late"]


def test_an_edit_after_a_reply_keeps_its_place(world: Room) -> None:
    root = world.brand.say(world.room, "we are open today")
    reply = world.alice.say(world.room, "great", **{"m.relates_to": {"m.in_reply_to": {"event_id": root}}})
    world.alice.edit(world.room, reply, "great, see you soon")
    events, _ = world.drain()
    edits = [e for e in events if isinstance(e, MessageEdited)]
    assert len(edits) == 1
    edited = edits[0].message
    assert (edited.id, edited.parent_id, edited.thread_root_id) == (reply, root, root)
    assert edited.text == "great, see you soon" and edited.edited_at is not None
    assert edited.author.account_id == world.alice.user_id


def test_an_edit_by_someone_else_is_ignored(world: Room) -> None:
    mine = world.alice.say(world.room, "my words")
    world.brand.send(
        world.room,
        {
            "msgtype": "m.text",
            "body": "* not yours",
            "m.new_content": {"msgtype": "m.text", "body": "not yours"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": mine},
        },
    )
    events, _ = world.drain()
    assert not [e for e in events if isinstance(e, MessageEdited)]


def test_redacting_an_edited_message_deletes_the_message(world: Room) -> None:
    message = world.alice.say(world.room, "first try")
    edit = world.alice.edit(world.room, message, "second try")
    events, cursor = world.drain()
    assert [type(e) for e in events if not isinstance(e, ProfileUpdated)] == [MessageCreated, MessageEdited]
    world.alice.redact(world.room, message)
    later, _ = world.drain(cursor)
    assert [(type(e), getattr(e, "message_id", None)) for e in later] == [(MessageDeleted, message)]
    assert edit != message


def test_a_thread_and_a_direct_room(world: Room, synapse: Homeserver) -> None:
    root = world.alice.say(world.room, "thread root")
    inner = world.brand.say(world.room, "in the thread", **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}})
    dm = world.brand.create_room(preset="trusted_private_chat", is_direct=True)
    world.brand.invite(dm, world.alice.user_id)
    world.alice.join(dm)
    world.brand.call("PUT", f"/user/{world.brand.user_id}/account_data/m.direct", {world.alice.user_id: [dm]})
    world.alice.say(dm, "psst", **{"m.mentions": {"user_ids": [world.brand.user_id]}})
    events, _ = world.drain(rooms=[world.room, dm])
    by_text = {e.message.text: e.message for e in created(events)}
    assert by_text["in the thread"].thread_root_id == root and by_text["in the thread"].parent_id == root
    assert by_text["in the thread"].direction is Direction.outbound and by_text["in the thread"].id == inner
    assert by_text["psst"].visibility is Visibility.direct and by_text["thread root"].visibility is Visibility.public
    assert by_text["psst"].mentions == [world.brand.user_id]


def test_a_display_name_change_is_a_profile_update(world: Room) -> None:
    _, cursor = world.drain()
    world.alice.join(world.room, "Alice Smith")  # a new member event with a new displayname
    world.alice.say(world.room, "hello")
    events, _ = world.drain(cursor)
    profiles = [e for e in events if isinstance(e, ProfileUpdated)]
    assert [(p.profile.account_id, p.profile.display_name) for p in profiles] == [(world.alice.user_id, "Alice Smith")]


def test_follow_picks_up_a_message_sent_while_listening(world: Room, proxy: MatrixFaultProxy) -> None:
    _, cursor = world.drain()
    adapter = world.adapter(sync_seconds=10)

    async def go() -> list[Event]:
        await adapter.start()
        got: list[Event] = []

        async def listen() -> None:
            async for page in adapter.listen(cursor, follow=True):
                got.extend(page.events)
                if created(got):
                    return

        task = asyncio.create_task(listen())
        # Wait until the long poll is out (a /sync is in flight), then post.
        deadline = asyncio.get_running_loop().time() + 10
        while not any(p.endswith("/sync") for _, p in proxy.requests):
            assert asyncio.get_running_loop().time() < deadline, "the listener never called /sync"
            await asyncio.sleep(0.02)
        await asyncio.to_thread(world.alice.say, world.room, "are you there?")
        await asyncio.wait_for(task, 10)
        await adapter.close()
        return got

    proxy.requests.clear()
    events = run(go)
    assert [e.message.text for e in created(events)] == ["are you there?"]


# ---------------------------------------------------------------- replies


def test_the_same_transaction_id_posts_once_on_the_server(world: Room) -> None:
    target = world.alice.say(world.room, "help please")

    async def send(text: str, key: str) -> str:
        adapter = world.adapter()  # a new adapter each time: the server, not the adapter, dedupes
        await adapter.start()
        try:
            return (await adapter.send_reply(target, text, key)).message.id
        finally:
            await adapter.close()

    first = run(lambda: send("on it", "key-1"))
    again = run(lambda: send("on it", "key-1"))
    other = run(lambda: send("on it", "key-2"))
    assert first == again != other
    bodies = [e["content"].get("body") for e in world.alice.messages(world.room)]
    assert bodies.count("on it") == 2  # key-1 once, key-2 once
    sent = world.alice.event(world.room, first)
    assert sent["content"]["m.relates_to"] == {"m.in_reply_to": {"event_id": target}}
    assert sent["unsigned"].get("transaction_id") is None  # only the sending device sees its txn id
    assert txn_id_for("key-1") == txn_id_for("key-1") != txn_id_for("key-2")


def test_password_login_on_one_device_keeps_replies_idempotent(world: Room) -> None:
    target = world.alice.say(world.room, "hello?")

    async def send() -> str:
        adapter = world.adapter(
            access_token=None, user=world.brand.user_id, password=SecretStr(world.brand.password), device_id="SCRMTEST"
        )
        await adapter.start()
        try:
            return (await adapter.send_reply(target, "hi!", "same-key")).message.id
        finally:
            await adapter.close()

    assert run(send) == run(send)  # two logins, one device: the txn id scope survives
    assert [e["content"].get("body") for e in world.alice.messages(world.room)].count("hi!") == 1


def test_a_reply_in_a_thread_stays_in_the_thread(world: Room) -> None:
    root = world.alice.say(world.room, "root")
    inner = world.alice.say(world.room, "inner", **{"m.relates_to": {"rel_type": "m.thread", "event_id": root}})

    async def send() -> Any:
        adapter = world.adapter()
        await adapter.start()
        try:
            return await adapter.send_reply(inner, "answer in thread", "k-thread")
        finally:
            await adapter.close()

    sent = run(send).message
    assert (sent.thread_root_id, sent.parent_id, sent.direction) == (root, inner, Direction.outbound)
    relates = world.alice.event(world.room, sent.id)["content"]["m.relates_to"]
    assert relates == {
        "rel_type": "m.thread",
        "event_id": root,
        "is_falling_back": False,
        "m.in_reply_to": {"event_id": inner},
    }


def test_a_reply_to_an_unknown_event_is_skippable(world: Room) -> None:
    async def send() -> None:
        adapter = world.adapter()
        await adapter.start()
        try:
            await adapter.send_reply("$does-not-exist", "hi", "k")
        finally:
            await adapter.close()

    with pytest.raises(SkippableError):
        run(send)


def test_fetch_profile_and_thread(world: Room) -> None:
    root = world.alice.say(world.room, "root")
    reply = world.brand.say(world.room, "reply", **{"m.relates_to": {"m.in_reply_to": {"event_id": root}}})
    world.alice.say(world.room, "unrelated")
    world.brand.edit(world.room, reply, "reply, edited")

    async def go() -> tuple[Any, Any]:
        adapter = world.adapter()
        await adapter.start()
        try:
            return await adapter.fetch_profile(world.alice.user_id), await adapter.fetch_thread(root)
        finally:
            await adapter.close()

    profile, thread = run(go)
    assert (profile.account_id, profile.display_name) == (world.alice.user_id, "Alice")
    assert [(m.id, m.text) for m in thread] == [(root, "root"), (reply, "reply, edited")]


# ---------------------------------------------------------------- errors and settings


def test_a_rate_limit_is_retryable_with_the_wait(world: Room, proxy: MatrixFaultProxy) -> None:
    adapter = world.adapter()

    async def go() -> None:
        await adapter.start()
        try:
            proxy.rate_limit_next()
            async for _ in adapter.listen(None, follow=False):
                pass
        finally:
            await adapter.close()

    with pytest.raises(RetryableError) as caught:
        run(go)
    assert caught.value.retry_after == pytest.approx(0.05)
    assert proxy.refusals == 1


def test_a_lost_answer_is_retryable(world: Room, proxy: MatrixFaultProxy) -> None:
    target = world.alice.say(world.room, "anyone?")
    adapter = world.adapter()

    async def go() -> None:
        await adapter.start()
        try:
            proxy.lose_next_response()
            await adapter.send_reply(target, "yes", "lost-1")
        finally:
            await adapter.close()

    with pytest.raises(RetryableError):
        run(go)
    assert [e["content"].get("body") for e in world.alice.messages(world.room)].count("yes") == 1  # it did go out


def test_a_bad_token_is_fatal_and_not_echoed(world: Room) -> None:
    secret = "syt_not_a_real_token_0123456789"
    adapter = world.adapter(access_token=secret)
    with pytest.raises(FatalError) as caught:
        run(adapter.start)  # a failed start closes what it opened
    assert "access_token" in caught.value.operator_message
    assert secret not in str(caught.value) and secret not in repr(caught.value.__dict__)


def test_a_bad_password_is_fatal(world: Room) -> None:
    adapter = world.adapter(access_token=None, user=world.brand.user_id, password=SecretStr("wrong"))
    with pytest.raises(FatalError) as caught:
        run(adapter.start)  # a failed start closes what it opened
    assert "password" in caught.value.operator_message and "wrong" not in caught.value.operator_message


def test_a_room_the_account_is_not_in_is_fatal(world: Room, synapse: Homeserver) -> None:
    other = world.alice.create_room(preset="private_chat")
    adapter = world.adapter(rooms=[world.room, other])
    with pytest.raises(FatalError) as caught:
        run(adapter.start)  # a failed start closes what it opened
    assert other in caught.value.operator_message and "rooms" in caught.value.operator_message


@pytest.mark.parametrize("cursor", ["", "s123_4", '{"v":2,"since":null,"done":{}}', '{"v":1,"since":5,"done":{}}'])
def test_foreign_cursors_are_fatal(cursor: str, world: Room) -> None:
    with pytest.raises(FatalError):
        world.drain(cursor)


def test_settings_validation_and_secrets() -> None:
    good = {
        "base_url": "https://matrix.example.com/",
        "access_token": "tok-123",
        "rooms": ["!abc", "#help:example.com"],
    }
    settings = MatrixSettings.model_validate(good)
    assert settings.base_url == "https://matrix.example.com"
    assert "tok-123" not in repr(settings) and "tok-123" not in str(settings.model_dump())
    for bad in (
        {**good, "rooms": []},
        {**good, "rooms": ["help"]},
        {**good, "rooms": ["#noserver"]},
        {**good, "rooms": ["!abc", "!abc"]},
        {k: v for k, v in good.items() if k != "access_token"},
        {**good, "password": "pw"},
        {**good, "base_url": "matrix.example.com"},
    ):
        with pytest.raises(ValidationError):
            MatrixSettings.model_validate(bad)
    assert (
        MatrixSettings.model_validate({**good, "access_token": None, "user": "scrm", "password": "pw"}).device_id
        == "SCRM"
    )
