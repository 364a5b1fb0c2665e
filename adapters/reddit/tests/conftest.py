"""A fake Reddit served on 127.0.0.1 per test module, the scenario in Reddit's ids, adapter factories."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from scrm_reddit import RedditAdapter, RedditSettings
from scrm_reddit.testing import FakeReddit, to_base36

from scrm_core import AdapterContext, Event, EventPage, MessageCreated, MessageDeleted, MessageEdited, Visibility
from scrm_core.testing.fakes import FakeServer
from scrm_core.testing.network import default_scenario

T = TypeVar("T")
PASSWORD = "brand-password"
USER_AGENT = "python:com.acme.scrm:v0.1.0 (by /u/brand)"


class Switchable:
    """An ASGI app that forwards to the current fake, so one server serves a fresh fake per test."""

    def __init__(self) -> None:
        self.fake = FakeReddit()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.fake.app(scope, receive, send)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Switchable, FakeServer]]:
    switch = Switchable()
    with FakeServer(switch) as server:
        yield switch, server


def new_fake(**kwargs: Any) -> FakeReddit:
    kwargs.setdefault("users", {"brand": PASSWORD})
    # A 1 s window: prawcore spreads requests over what is left of the window (0.6 s apart
    # with 1000 per 600 s), which would make every test slow.
    kwargs.setdefault("window", 1)
    return FakeReddit(**kwargs)


def make_adapter(url: str, tmp_path: Path, **settings: Any) -> RedditAdapter:
    values: dict[str, Any] = {
        "client_id": FakeReddit.CLIENT_ID,
        "client_secret": FakeReddit.CLIENT_SECRET,
        "username": "brand",
        "password": PASSWORD,
        "user_agent": USER_AGENT,
        "subreddits": ["acme"],
        "page_size": 3,
        "base_url": url,
        "reddit_url": url,
    }
    values.update(settings)
    return RedditAdapter(RedditSettings(**values), AdapterContext(name="reddit-test", base_dir=tmp_path))


def reddit_scenario() -> list[Event]:
    """The core's default scenario in Reddit's terms: roots are self posts (t3_), replies are
    comments (t1_), accounts are t2_ ids. Reddit cannot change a username and this adapter
    reads no private messages, so the handle change, every profile event and the direct
    message are left out (the adapter emits no profile events: a t2_ id never changes)."""
    events = default_scenario("reddit")
    ids: dict[str, str] = {}
    accounts: dict[str, str] = {}
    out: list[Event] = []
    for event in events:
        if isinstance(event, MessageCreated | MessageEdited):
            m = event.message
            if m.visibility is Visibility.direct:
                continue
            if m.id not in ids:
                kind = "t3" if m.thread_root_id is None else "t1"
                ids[m.id] = f"{kind}_{to_base36(36**5 + int(m.id))}"
            author = m.author.model_copy(
                update={
                    "account_id": accounts.setdefault(
                        m.author.account_id, f"t2_{to_base36(36**4 + int(m.author.account_id))}"
                    )
                }
            )
            update = {
                "id": ids[m.id],
                "author": author,
                "thread_root_id": ids.get(m.thread_root_id) if m.thread_root_id else None,
                "parent_id": ids.get(m.parent_id) if m.parent_id else None,
            }
            out.append(type(event)(message=m.model_copy(update=update)))
        elif isinstance(event, MessageDeleted):
            out.append(event.model_copy(update={"message_id": ids[event.message_id]}))
    return out


def run(coro: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(coro(), 30))


async def drain(adapter: RedditAdapter, cursor: str | None = None) -> list[EventPage]:
    await adapter.start()
    try:
        return [page async for page in adapter.listen(cursor, follow=False)]
    finally:
        await adapter.close()
