"""What the webhook tests need per network: its fake, a source's settings, how it signs, valid and
hostile bodies. ``KITS`` must cover every installed network adapter with the ``webhook``
capability (a test checks it), so a new webhook network cannot skip the fuzzer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from scrm_discourse.testing import FakeDiscourse
from scrm_meta.testing import FakeMeta

from scrm_core.testing.network import default_scenario
from scrm_core.webhooks import hmac_sha256_hex

PAGE_ID = "9000"
IG_USER_ID = "17841400000000000"

# ---------------------------------------------------------------- hostile values

#: Any JSON value, with the types and sizes that break careless readers: huge and negative
#: numbers, floats where ints belong, empty and odd strings, nesting where scalars belong.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1e30, -1e18, 1e308, -1e308, 2**63, 2**64, 1.5, 253402300800, -62135596801]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["", " ", "0", "-1", "1e30", "null", "2024-13-45T99:99:99Z", "\u0000", "\u202e", "é" * 3]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def deep(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


def hostile(valid: st.SearchStrategy[Any], odds: int = 6) -> st.SearchStrategy[Any]:
    """The right shape, except one time in ``odds``: any JSON value at all (hypothesis leans
    towards small draws, so 0 (valid) is its simplest choice and it explores from there)."""
    return st.integers(0, odds - 1).flatmap(lambda i: json_values if i == odds - 1 else valid)


def hostile_document(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A whole body: mostly the right shape, sometimes anything, sometimes nested 40-80 deep."""
    return st.integers(0, 9).flatmap(
        lambda i: json_values if i == 8 else st.integers(40, 80).map(deep) if i == 9 else valid
    )


def body_of(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


# ---------------------------------------------------------------- the kits


@dataclass
class Kit:
    """One webhook source: ``sources`` are (source name, TOML settings) for a fake at ``url``."""

    adapter: str
    fake: Any = field(repr=False)
    sources: Callable[[str], list[tuple[str, dict[str, Any]]]]
    #: (source name, document) -> request headers for the body
    headers: Callable[[str, bytes, str], dict[str, str]]
    #: n -> (source name, event, document, the message key it must sync to)
    valid: Callable[[int], tuple[str, str, Any, str]]
    #: (source name, event, document) of hostile deliveries
    hostile: st.SearchStrategy[tuple[str, str, Any]] = field(repr=False)


def _discourse_post(post_id: Any, topic_id: Any = 1, number: Any = 1, **more: Any) -> dict[str, Any]:
    return {
        "id": post_id,
        "topic_id": topic_id,
        "post_number": number,
        "username": "alice",
        "name": "Alice",
        "user_id": 7,
        "created_at": "2026-01-05T10:00:00.000Z",
        "updated_at": "2026-01-05T10:00:00.000Z",
        "raw": "the kettle lid broke",
        "cooked": "<p>the kettle lid broke</p>",
        "version": 1,
        "topic_archetype": "regular",
        "category_id": 1,
        **more,
    }


_DISCOURSE_FIELDS = {
    "id": st.integers(1, 10**9),
    "topic_id": st.integers(1, 10**6),
    "post_number": st.integers(1, 50),
    "reply_to_post_number": st.none() | st.integers(1, 50),
    "user_id": st.integers(1, 10**6),
    "username": st.text(min_size=1, max_size=12),
    "name": st.none() | st.text(max_size=12),
    "created_at": st.sampled_from(["2026-01-05T10:00:00.000Z", "2026-01-05T10:00:00Z", "yesterday", "9999-12-31"]),
    "updated_at": st.sampled_from(["2026-01-05T10:00:00.000Z", "not a time"]),
    "raw": st.text(max_size=40),
    "cooked": st.text(max_size=40),
    "version": st.integers(0, 5),
    "deleted_at": st.none() | st.just("2026-01-05T11:00:00.000Z"),
    "user_deleted": st.booleans(),
    "topic_archetype": st.sampled_from(["regular", "private_message", "banner"]),
    "category_id": st.integers(0, 5),
}


def _discourse_hostile() -> st.SearchStrategy[tuple[str, str, Any]]:
    required = ("id", "topic_id", "created_at")
    post = st.fixed_dictionaries(
        {k: hostile(_DISCOURSE_FIELDS[k]) for k in required},
        optional={k: hostile(v) for k, v in _DISCOURSE_FIELDS.items() if k not in required},
    )
    document = hostile_document(
        st.fixed_dictionaries({"post": hostile(post)}) | st.fixed_dictionaries({"post": post, "topic": json_values})
    )
    event = st.sampled_from(["post_created", "post_edited", "post_destroyed", "post_recovered", "topic_created", "x"])
    return st.tuples(st.just("forum"), event, document)


def discourse_kit() -> Kit:
    fake = FakeDiscourse(staff=["brand"], rate_limit_wait=0)
    fake.load(default_scenario("discourse"))  # creates the users, "brand" among them

    def sources(url: str) -> list[tuple[str, dict[str, Any]]]:
        settings = {
            "base_url": url,
            "api_key": FakeDiscourse.API_KEY,
            "api_username": "brand",
            "webhook_secret": FakeDiscourse.WEBHOOK_SECRET,
            "poll_interval": 3600,
        }
        return [("forum", settings)]

    def headers(source: str, body: bytes, event: str) -> dict[str, str]:
        return {
            "content-type": "application/json",
            "x-discourse-event-type": "post" if event.startswith("post") else event.partition("_")[0],
            "x-discourse-event": event,
            "x-discourse-event-signature": "sha256=" + hmac_sha256_hex(FakeDiscourse.WEBHOOK_SECRET, body),
        }

    def valid(n: int) -> tuple[str, str, Any, str]:
        post_id = 900_000 + n
        return "forum", "post_created", {"post": _discourse_post(post_id)}, f"discourse:{post_id}"

    return Kit("discourse", fake, sources, headers, valid, _discourse_hostile())


_META_FEED_VALUE = {
    "item": st.sampled_from(["comment", "post", "status", "reaction", "photo"]),
    "verb": st.sampled_from(["add", "edited", "remove", "hide"]),
    "post_id": st.sampled_from([f"{PAGE_ID}_1", "1_2", "x"]),
    "comment_id": st.sampled_from(["1_2", "1_3", ""]),
    "parent_id": st.sampled_from([f"{PAGE_ID}_1", "1_2"]),
    "message": st.text(max_size=30),
    "from": st.fixed_dictionaries({"id": st.sampled_from(["77", "78"]), "name": st.text(max_size=10)}),
    "created_time": st.sampled_from([1714554000, 1e30, -1e18, "2024-05-01T09:00:00+0000", 0]),
}
_META_IG_VALUE = {
    "id": st.sampled_from(["18000000001", "x"]),
    "text": st.text(max_size=30),
    "from": st.fixed_dictionaries({"id": st.just("501"), "username": st.text(max_size=10)}),
    "media": st.fixed_dictionaries({"id": st.just("17900000001")}),
    "parent_id": st.none() | st.just("18000000002"),
}


def _meta_hostile() -> st.SearchStrategy[tuple[str, str, Any]]:
    def document(obj: str, account: str, field: str, values: dict[str, st.SearchStrategy[Any]]) -> Any:
        value = st.fixed_dictionaries({k: hostile(v, 12) for k, v in values.items()})
        change = st.fixed_dictionaries({"field": hostile(st.just(field)), "value": hostile(value)})
        entry = st.fixed_dictionaries(
            {
                "id": hostile(st.just(account)),
                "time": hostile(st.sampled_from([1714554300, 1e30, -1e18, 1714554300000])),
                "changes": hostile(st.lists(hostile(change), max_size=3)),
            }
        )
        return hostile_document(
            st.fixed_dictionaries(
                {"object": hostile(st.just(obj)), "entry": hostile(st.lists(hostile(entry), max_size=3))}
            )
        )

    return st.one_of(
        st.tuples(st.just("fb"), st.just(""), document("page", PAGE_ID, "feed", _META_FEED_VALUE)),
        st.tuples(st.just("ig"), st.just(""), document("instagram", IG_USER_ID, "comments", _META_IG_VALUE)),
    )


def meta_kit() -> Kit:
    fake = FakeMeta(page_id=PAGE_ID, ig_user_id=IG_USER_ID)

    def sources(url: str) -> list[tuple[str, dict[str, Any]]]:
        common = {
            "page_access_token": FakeMeta.TOKEN,
            "app_secret": FakeMeta.APP_SECRET,
            "verify_token": FakeMeta.VERIFY_TOKEN,
            "base_url": url,
            "poll_interval": 3600,
        }
        return [
            ("fb", {"platform": "facebook", "page_id": PAGE_ID, **common}),
            ("ig", {"platform": "instagram", "ig_user_id": IG_USER_ID, **common}),
        ]

    def headers(source: str, body: bytes, event: str) -> dict[str, str]:
        return {
            "content-type": "application/json",
            "x-hub-signature-256": "sha256=" + hmac_sha256_hex(FakeMeta.APP_SECRET, body),
        }

    def valid(n: int) -> tuple[str, str, Any, str]:
        comment = f"1_{700_000 + n}"
        value = {
            "item": "comment",
            "verb": "add",
            "post_id": f"{PAGE_ID}_1",
            "comment_id": comment,
            "parent_id": f"{PAGE_ID}_1",
            "from": {"id": "77", "name": "Alice"},
            "message": f"valid delivery {n}",
            "created_time": 1714554000,
        }
        document = {"object": "page", "entry": [{"id": PAGE_ID, "time": 1714554300, "changes": [
            {"field": "feed", "value": value}]}]}  # fmt: skip
        return "fb", "", document, f"facebook:{comment}"

    return Kit("meta", fake, sources, headers, valid, _meta_hostile())


KITS: dict[str, Callable[[], Kit]] = {"discourse": discourse_kit, "meta": meta_kit}
