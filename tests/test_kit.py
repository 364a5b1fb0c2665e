"""The adapter kit: rate-limit headers, the retry policy, HttpApi, PollingAdapter, cursors, settings names."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from scrm_core import (
    AdapterSettings,
    Batch,
    FatalError,
    HttpApi,
    HttpSettings,
    JsonCursor,
    Message,
    MessageCreated,
    MessageEdited,
    NetworkCapability,
    PollingAdapter,
    PollingSettings,
    RateBudget,
    RetryableError,
    SocialProfile,
    html_to_text,
    parse_rate_limit,
    retry_after_seconds,
    retrying,
)
from scrm_core.testing import FakeServer
from scrm_core.testing.network import drain

# ---------------------------------------------------------------- headers


def test_retry_after_takes_seconds_and_http_dates() -> None:
    now = datetime(2026, 10, 21, 7, 27, 30, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2026 07:28:00 GMT", now=now) == 30.0
    assert retry_after_seconds("Wed, 21 Oct 2026 07:00:00 GMT", now=now) == 0.0  # in the past: now
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-ratelimit-limit": "300", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "42"}, (300, 0, 42.0)),
        (
            {"x-rate-limit-limit": "450", "x-rate-limit-remaining": "3", "x-rate-limit-reset": "1700000100"},
            (450, 3, 100.0),
        ),
        ({"ratelimit-limit": "3000", "ratelimit-remaining": "1", "ratelimit-reset": "1700000060"}, (3000, 1, 60.0)),
        ({"x-ratelimit-remaining": "595.0", "x-ratelimit-reset": "12"}, (None, 595, 12.0)),  # Reddit sends floats
    ],
)
def test_rate_limit_header_families(headers: dict[str, str], expected: tuple[Any, Any, Any]) -> None:
    limits = parse_rate_limit(httpx.Headers(headers), now=1_700_000_000.0)
    assert (limits.limit, limits.remaining, limits.reset_seconds) == expected


def test_mastodon_iso_reset_and_a_spent_window_pause_the_budget() -> None:
    clock = [1_000.0]
    budget = RateBudget(None, 5, clock=lambda: clock[0])
    reset = datetime.fromtimestamp(1_700_000_030, UTC).isoformat()
    limits = parse_rate_limit(
        httpx.Headers({"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}), now=1_700_000_000.0
    )
    assert limits.spent and limits.wait == 30.0
    limits.feed(budget)
    assert budget.delay() == pytest.approx(30.0)


def test_crm_header_families_shape_the_budget_window_and_quota() -> None:
    hubspot = parse_rate_limit(
        httpx.Headers(
            {
                "X-HubSpot-RateLimit-Max": "190",
                "X-HubSpot-RateLimit-Remaining": "189",
                "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                "X-HubSpot-RateLimit-Daily": "1000000",
                "X-HubSpot-RateLimit-Daily-Remaining": "999000",
            }
        ),
        now=datetime(2026, 3, 2, 23, 0, tzinfo=UTC).timestamp(),
    )
    assert (hubspot.limit, hubspot.remaining, hubspot.window_seconds) == (190, 189, 10.0)
    assert hubspot.quota is not None and (hubspot.quota.used, hubspot.quota.limit) == (1000, 1_000_000)
    assert hubspot.quota.resets_in == 3600.0  # HubSpot's daily count resets at midnight (UTC assumed)
    assert hubspot.refused_wait == 10.0, "a 429 without Retry-After waits out the window"
    clock = [1_000.0]
    budget = RateBudget(None, 50, clock=lambda: clock[0])
    hubspot.feed(budget, pace=True)
    assert budget.rate is not None and budget.rate < 19.0  # 190 per 10 s, less the margin
    salesforce = parse_rate_limit(httpx.Headers({"Sforce-Limit-Info": "api-usage=14990/15000"}))
    assert salesforce.quota is not None and (salesforce.quota.used, salesforce.quota.limit) == (14990, 15000)
    assert salesforce.quota.resets_in is None and salesforce.wait is None  # a rolling 24 h quota
    assert parse_rate_limit(httpx.Headers({"retry-after": "7", "x-rate-limit-reset": "1700000100"})).refused_wait == 7.0


# ---------------------------------------------------------------- retrying


def test_retrying_honours_the_wait_asked_caps_it_and_gives_up() -> None:
    waits: list[float] = []

    async def run() -> int:
        calls = 0
        policy = retrying(attempts=3, initial=0.001, cap=0.05)
        policy.sleep = lambda s: waits.append(s) or asyncio.sleep(0)  # type: ignore[method-assign,func-returns-value]
        async for attempt in policy:
            with attempt:
                calls += 1
                raise RetryableError("busy", retry_after=10.0)
        return calls

    with pytest.raises(RetryableError):
        asyncio.run(run())
    assert waits == [0.05, 0.05]  # asked 10 s, capped; 3 attempts, 2 waits


def test_retrying_does_not_retry_what_is_not_retryable() -> None:
    calls = 0

    async def run() -> None:
        nonlocal calls
        async for attempt in retrying(attempts=5, initial=0.001):
            with attempt:
                calls += 1
                raise FatalError("bad token")

    with pytest.raises(FatalError):
        asyncio.run(run())
    assert calls == 1


# ---------------------------------------------------------------- HttpApi


@pytest.fixture
def service(serve_fake: Callable[..., FakeServer]) -> tuple[FakeServer, list[str]]:
    """A tiny service served by the ``serve_fake`` fixture (stopped after the test)."""
    seen: list[str] = []

    async def endpoint(request: Request) -> Response:
        seen.append(request.headers.get("user-agent", ""))
        status = int(request.path_params["status"])
        if status == 429:
            return JSONResponse({"ok": False, "parameters": {"retry_after": 3}}, status_code=429)
        if status == 503:
            return Response("busy", status_code=503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
        if status == 403:
            return JSONResponse({"errors": ["invalid_access"]}, status_code=403)
        return JSONResponse({"status": status}, status_code=status)

    return serve_fake(Starlette(routes=[Route("/s/{status}", endpoint)])), seen


def test_http_api_maps_answers_to_scrms_errors(service: tuple[FakeServer, list[str]]) -> None:
    server, seen = service

    async def run() -> None:
        api = HttpApi("demo", server.url, credentials="the token setting")
        try:
            assert (await api.get_json("/s/200")) == {"status": 200}
            assert (await api.request("GET", "/s/404")).status_code == 404  # for the adapter to judge
            with pytest.raises(RetryableError) as limited:
                await api.get_json("/s/429")
            assert limited.value.retry_after == 3.0  # from the JSON body
            assert api.budget.delay() > 2.0  # the budget waits it out before the next call
            api.budget.paused_until = 0.0
            with pytest.raises(RetryableError) as busy:
                await api.get_json("/s/503")
            assert busy.value.retry_after == 0.0  # an HTTP date in the past
            with pytest.raises(FatalError, match=r"invalid_access.*the token setting"):
                await api.get_json("/s/403")
        finally:
            await api.aclose()

    asyncio.run(run())
    assert seen and all(agent.startswith("scrm/") for agent in seen)


def test_http_api_turns_a_dead_service_into_a_retryable_error() -> None:
    async def run() -> None:
        api = HttpApi("demo", "http://127.0.0.1:9", timeout_seconds=2)
        try:
            await api.get_json("/x")
        finally:
            await api.aclose()

    with pytest.raises(RetryableError, match="connection failed"):
        asyncio.run(run())


# ---------------------------------------------------------------- PollingAdapter


class _Settings(PollingSettings):
    items: list[dict[str, Any]] = Field(default_factory=list)


class _After(JsonCursor):
    prefix = "t1:"
    after: int = 0


class _Items(PollingAdapter[_Settings, _After]):
    """Serves ``settings.items`` (``{"id": n, "text": ...}``), two per fetch."""

    name = "items"
    Settings = _Settings
    cursor_type = _After
    capabilities = frozenset({NetworkCapability.poll})

    async def fetch(self, cursor: _After) -> Batch[_After]:
        rest = [i for i in self.settings.items if i["id"] > cursor.after]
        got = rest[:2]
        return Batch(got, _After(after=got[-1]["id"]) if got else cursor, more=len(rest) > 2)

    def to_events(self, item: dict[str, Any]) -> list[MessageCreated]:
        who = SocialProfile(network="items", account_id="1")
        text = item["text"].upper()  # a missing or non-text "text" fails here: that item's reject
        return [
            MessageCreated(
                message=Message(
                    network="items",
                    id=str(item["id"]),
                    author=who,
                    text=text,
                    created_at=datetime(2026, 1, 1, tzinfo=UTC),
                )
            )
        ]


def test_polling_adapter_pages_resumes_and_rejects_only_the_bad_item() -> None:
    items = [{"id": 1, "text": "a"}, {"id": 2, "text": None}, {"id": 3, "text": "c"}, {"id": 4, "text": "d"}]
    adapter = _Items({"items": items})
    pages = asyncio.run(drain(adapter))
    assert [[e.key for e in p.events] for p in pages] == [["c:items:1"], ["c:items:3", "c:items:4"]]
    assert pages[0].rejects == [("2", "AttributeError: 'NoneType' object has no attribute 'upper'")]
    assert [p.cursor for p in pages] == ['t1:{"after":2}', 't1:{"after":4}']
    again = asyncio.run(drain(_Items({"items": items}), pages[0].cursor))
    assert [e.key for p in again for e in p.events] == ["c:items:3", "c:items:4"]


def test_polling_adapter_follows_and_refuses_a_foreign_cursor() -> None:
    adapter = _Items({"items": [{"id": 1, "text": "a"}], "poll_seconds": 0.01})

    async def follow() -> list[str]:
        got: list[str] = []
        async for page in adapter.listen(None, follow=True):
            got += [e.key for e in page.events]
            adapter.settings.items.append({"id": 2, "text": "b"})  # arrives while it waits
            if len(got) == 2:
                return got
        raise AssertionError("listen ended while following")

    assert asyncio.run(asyncio.wait_for(follow(), 5)) == ["c:items:1", "c:items:2"]
    with pytest.raises(FatalError, match="reset the source's checkpoint"):
        asyncio.run(drain(_Items({}), "x1;m=1"))


# ---------------------------------------------------------------- settings, models, text


def test_renamed_settings_still_work_and_say_the_new_name(caplog: pytest.LogCaptureFixture) -> None:
    class S(HttpSettings, PollingSettings):
        renamed = {"recheck_window": "recheck_recent"}
        recheck_recent: int = 5

    with caplog.at_level(logging.WARNING, logger="scrm.config"):
        s = S.model_validate(
            {"api_base_url": "https://x.example/", "request_timeout": 3, "poll_interval": 9, "recheck_window": 2}
        )
    assert (s.base_url, s.timeout_seconds, s.poll_seconds, s.recheck_recent) == ("https://x.example", 3, 9, 2)
    assert "'api_base_url' is now called 'base_url'" in caplog.text
    with pytest.raises(ValueError, match=r"extra_forbidden|Extra inputs"):
        S.model_validate({"base_url": "https://x.example", "surely_not": 1})


def test_adapters_take_settings_as_a_mapping_and_type_them() -> None:
    adapter = _Items({"page_size": 7})
    assert isinstance(adapter.settings, _Settings) and adapter.settings.page_size == 7
    assert adapter.context.name == "items"
    assert isinstance(_Items(AdapterSettings.model_construct()).settings, _Settings) is True


def test_an_edits_explicit_version_is_its_key() -> None:
    who = SocialProfile(network="n", account_id="1")
    at = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    m = Message(network="n", id="5", author=who, text="x", created_at=at, edited_at=at)
    first, second = MessageEdited(message=m, version="101"), MessageEdited(message=m, version="102")
    assert first.key != second.key  # two edits in one second stay two edits
    assert MessageEdited(message=m).key == f"e:n:5:{at.isoformat()}"  # no version: edited_at, as before


def test_html_to_text_keeps_what_a_reader_sees() -> None:
    mastodon = (
        '<p>Hi <span class="h-card"><a href="https://m.example/@brand">@<span>brand</span></a></span>, see '
        '<a href="https://example.com/a/very/long"><span class="invisible">https://</span>'
        '<span class="ellipsis">example.com/a/very</span><span class="invisible">/long</span></a></p>'
        "<p>line one<br>line two &amp; #<span>tag</span></p>"
    )
    assert html_to_text(mastodon) == "Hi @brand, see https://example.com/a/very/long\n\nline one\nline two & #tag"
    assert html_to_text("plain") == "plain"


def test_http_api_retries_reads_only_when_asked_and_never_a_write_nor_a_rate_limit() -> None:
    calls: dict[str, int] = {"GET": 0, "POST": 0, "limited": 0}

    async def flaky(request: Request) -> Response:
        calls[request.method] += 1
        return JSONResponse({"n": calls[request.method]}, status_code=500 if calls[request.method] < 3 else 200)

    async def limited(request: Request) -> Response:
        calls["limited"] += 1
        return JSONResponse({}, status_code=429, headers={"Retry-After": "9"})

    app = Starlette(routes=[Route("/flaky", flaky, methods=["GET", "POST"]), Route("/limited", limited)])

    async def run(url: str) -> None:
        with pytest.raises(RetryableError):  # by default the engine retries, not the kit: one layer
            await HttpApi("demo", url).get_json("/flaky")
        calls["GET"] = 0
        api = HttpApi("demo", url, retries=2)
        try:
            assert await api.get_json("/flaky") == {"n": 3}  # two 500s, then the answer
            with pytest.raises(RetryableError):
                await api.post_json("/flaky", json={})  # a write is never repeated here
            with pytest.raises(RetryableError) as caught:
                await api.get_json("/limited")
            assert caught.value.retry_after == 9.0
        finally:
            await api.aclose()

    with FakeServer(app) as server:
        asyncio.run(run(server.url))
    assert calls == {"GET": 3, "POST": 1, "limited": 1}


def test_http_api_retry_policy_leaves_no_cyclic_garbage_per_request() -> None:
    # `scrm run` makes the collector rare (tune_gc_for_throughput): a reference cycle made per
    # request would pile up between collections. Reads with retries on must leave no more
    # garbage than reads without (httpx's own cycles are the same for both).
    import gc

    async def ok(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def garbage_of(url: str, retries: int, requests: int) -> int:
        api = HttpApi("demo", url, retries=retries)
        try:
            await api.get_json("/ok")  # the connection and the lazy imports, before counting
            gc.collect()
            gc.disable()
            try:
                for _ in range(requests):
                    assert await api.get_json("/ok") == {"ok": True}
                return gc.collect()
            finally:
                gc.enable()
        finally:
            await api.aclose()

    with FakeServer(Starlette(routes=[Route("/ok", ok)])) as server:
        plain = asyncio.run(garbage_of(server.url, 0, 30))
        retried = asyncio.run(garbage_of(server.url, 2, 30))
    assert retried - plain < 30, f"{retried - plain} more unreachable objects for 30 reads with retries on"
