"""Shared set-up: a FakeMeta served on 127.0.0.1 and adapters pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from scrm_meta import MetaAdapter, MetaSettings
from scrm_meta.testing import FakeMeta

from scrm_core import AdapterContext, Event, Message, MessageCreated, MessageDeleted, MessageEdited
from scrm_core.testing.fakes import FakeServer

PAGE_ID = "9000"
IG_USER_ID = "17841400000000000"


def make_settings(url: str, platform: str = "facebook", **overrides: Any) -> MetaSettings:
    values: dict[str, Any] = {
        "platform": platform,
        "page_id": PAGE_ID,
        "ig_user_id": IG_USER_ID,
        "page_access_token": SecretStr(FakeMeta.TOKEN),
        "app_secret": SecretStr(FakeMeta.APP_SECRET),
        "verify_token": SecretStr(FakeMeta.VERIFY_TOKEN),
        "base_url": url,
        "page_size": 3,
    }
    return MetaSettings.model_validate(values | overrides)


def make_adapter(url: str, platform: str = "facebook", **overrides: Any) -> MetaAdapter:
    return MetaAdapter(make_settings(url, platform, **overrides), AdapterContext(name=f"meta-{platform}"))


def graph_ids(events: list[Event], page_id: str = PAGE_ID) -> list[Event]:
    """The scenario with Facebook's id shapes: posts ``<page>_<n>``, comments ``<post n>_<n>``."""
    roots: dict[str, str] = {}
    ids: dict[str, str] = {}

    def new_id(m: Message) -> str:
        if m.id not in ids:
            root = m.thread_root_id
            ids[m.id] = f"{page_id}_{m.id}" if root is None else f"{roots.get(root, root)}_{m.id}"
            if root is None:
                roots[m.id] = m.id
        return ids[m.id]

    def convert(m: Message) -> Message:
        return m.model_copy(
            update={
                "id": new_id(m),
                "thread_root_id": ids[m.thread_root_id] if m.thread_root_id else None,
                "parent_id": ids[m.parent_id] if m.parent_id else None,
            }
        )

    out: list[Event] = []
    for event in events:
        if isinstance(event, MessageCreated):
            out.append(MessageCreated(message=convert(event.message)))
        elif isinstance(event, MessageEdited):
            out.append(MessageEdited(message=convert(event.message)))
        elif isinstance(event, MessageDeleted):
            out.append(event.model_copy(update={"message_id": ids[event.message_id]}))
        else:
            out.append(event)
    return out


@pytest.fixture
def fake() -> FakeMeta:
    return FakeMeta(page_id=PAGE_ID, ig_user_id=IG_USER_ID)


@pytest.fixture
def served(fake: FakeMeta) -> Iterator[FakeServer]:
    with FakeServer(fake.app) as server:
        yield server
