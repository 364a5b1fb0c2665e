"""Poison input: whatever one payload, line or item makes an adapter raise, it is that item's dead
letter, named; the engine, ``scrm serve`` and ``scrm run`` go on, and valid input still syncs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from scrm.config import load_config
from scrm.engine import Engine
from scrm.plugins import PluginHost
from scrm.store import SqliteStore

from scrm_core import (
    Event,
    EventPage,
    FatalError,
    MessageCreated,
    NetworkAdapter,
    RetryableError,
    SkippableError,
    SocialProfile,
    hookimpl,
)
from scrm_core.testing.fakes import FakeServer
from tests import testnet
from tests.e2e import toml_inline
from tests.serving import query, scrm, start_serve, wait_until
from tests.webhook_kits import PAGE_ID, Kit, body_of, deep, discourse_kit, meta_kit


def _config(folder: Path, sources: list[tuple[str, str, dict[str, Any]]], extra: str = "") -> Path:
    text = '[state]\nurl = "sqlite:///state.db"\n[crm]\nadapter = "localcrm"\nsettings = { path = "crm.db" }\n'
    for name, adapter, settings in sources:
        text += f'[[sources]]\nname = "{name}"\nadapter = "{adapter}"\nsettings = {toml_inline(settings)}\n'
    text += "[engine]\nbatch_window_ms = 0\nmax_attempts = 3\nretry_max_seconds = 0.05\n" + extra
    path = folder / "scrm.toml"
    path.write_text(text)
    return path


# ---------------------------------------------------------------- the payloads, end to end


@pytest.fixture
def kits() -> Iterator[tuple[Kit, Kit, str, str]]:
    meta, forum = meta_kit(), discourse_kit()
    with FakeServer(meta.fake.app) as meta_server, FakeServer(forum.fake.app) as forum_server:
        yield meta, forum, meta_server.url, forum_server.url


def _sources(meta: Kit, forum: Kit, meta_url: str, forum_url: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [(n, "meta", s) for n, s in meta.sources(meta_url)] + [
        (n, "discourse", s) for n, s in forum.sources(forum_url)
    ]


def _meta_feed(entry: dict[str, Any]) -> dict[str, Any]:
    return {"object": "page", "entry": [entry]}


def _comment(**more: Any) -> dict[str, Any]:
    value = {
        "item": "comment",
        "verb": "add",
        "post_id": f"{PAGE_ID}_1",
        "comment_id": "1_55",
        "from": {"id": "77", "name": "Alice"},
        "message": "hello",
        "created_time": 1714554000,
    }
    return value | more


#: The four payloads of the issue: each acknowledged, then stopping every later sync.
POISON = {
    "changes is a number": _meta_feed({"id": PAGE_ID, "time": 1714554300, "changes": 5}),
    "created_time 1e30": _meta_feed(
        {"id": PAGE_ID, "time": 1714554300, "changes": [{"field": "feed", "value": _comment(created_time=1e30)}]}
    ),
    "time -1e18": _meta_feed(
        {"id": PAGE_ID, "time": -1e18, "changes": [{"field": "feed", "value": _comment(created_time=None)}]}
    ),
}


@pytest.mark.slow
def test_poison_payloads_are_dead_letters_and_serve_and_run_go_on(
    tmp_path: Path, kits: tuple[Kit, Kit, str, str]
) -> None:
    meta, forum, meta_url, forum_url = kits
    config = _config(tmp_path, _sources(meta, forum, meta_url, forum_url))
    served = start_serve(config)
    db, crm = tmp_path / "state.db", tmp_path / "crm.db"
    try:
        with httpx.Client(base_url=served.url, timeout=30) as http:

            def post(source: str, event: str, document: Any, kit: Kit) -> httpx.Response:
                body = document if isinstance(document, bytes) else body_of(document)
                return http.post(f"/webhooks/{source}", content=body, headers=kit.headers(source, body, event))

            # 990 levels: refused at the door now (the same parser and limit as the readers)
            deep_body = b"[" * 990 + b"]" * 990
            answer = post("fb", "", deep_body, meta)
            assert (answer.status_code, answer.json()) == (400, {"error": "json_too_deep"})
            stored: dict[str, int] = {}
            for name, document in POISON.items():
                answer = post("fb", "", document, meta)
                assert answer.status_code == 200, (name, answer.text)
                stored[name] = answer.json()["stored"]
            # a Discourse post whose fields have the wrong types
            answer = post("forum", "post_created", {"post": {"id": 5, "topic_id": [1], "created_at": 1e30}}, forum)
            assert answer.status_code == 200
            forum_id = answer.json()["stored"]
            # and then valid deliveries sync
            for kit, n in ((meta, 1), (forum, 2)):
                source, event, document, key = kit.valid(n)
                assert post(source, event, document, kit).status_code == 200
                wait_until(
                    lambda key=key: query(crm, "SELECT 1 FROM messages WHERE external_key = ?", f"scrm:{key}"),
                    what=f"{key} in the CRM",
                )
            health = http.get("/health")
            assert health.status_code == 200 and health.json()["status"] == "ok", health.text
        assert served.alive(), served.output()
        letters = query(db, "SELECT source, locator, reason FROM dead_letters")
        for name, payload_id in stored.items():
            mine = [x for x in letters if x[1] == f"webhook payload #{payload_id} of source 'fb'"]
            assert len(mine) == 1, (name, letters)
        assert [x for x in letters if x[1] == f"webhook payload #{forum_id} of source 'forum'"]
        assert len(letters) == len(stored) + 1, letters
    finally:
        code = served.stop()
    assert code == 0, served.output()
    assert "Traceback" not in served.output()
    # a later run on the same state reads nothing twice and stops on nothing
    again = scrm("run", "--once", "-c", str(config), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(query(db, "SELECT id FROM dead_letters")) == len(stored) + 1


def test_payloads_an_older_receiver_stored_are_dead_letters_too(
    tmp_path: Path, kits: tuple[Kit, Kit, str, str]
) -> None:
    """Bodies stored before the door refused them (990 levels of nesting, JSON with NaN): the
    reader makes each one dead letter and the valid one after them syncs."""
    meta, forum, meta_url, forum_url = kits
    config = _config(tmp_path, _sources(meta, forum, meta_url, forum_url))
    store = SqliteStore(tmp_path / "state.db")
    store.migrate()
    bodies = [
        b"[" * 990 + b"]" * 990,
        b'{"object": "page", "entry": [{"id": "9000", "time": NaN}]}',
        b"\xff\xfe not utf-8",
        body_of(POISON["changes is a number"]),
        body_of(meta.valid(3)[2]),
    ]
    for i, body in enumerate(bodies):
        assert store.store_webhook("fb", f"digest-{i}", {}, body) is not None
    store.close()
    run = scrm("run", "--once", "-c", str(config), cwd=tmp_path)  # what an operator runs
    assert run.returncode == 0, run.stdout + run.stderr
    assert "dead letters 4" in " ".join(run.stdout.split()) and "Traceback" not in run.stderr
    letters = query(tmp_path / "state.db", "SELECT locator, reason FROM dead_letters ORDER BY id")
    assert [x[0] for x in letters] == [f"webhook payload #{i} of source 'fb'" for i in range(1, 5)]
    assert "json_too_deep" in letters[0][1] or "deeper" in letters[0][1]
    assert query(tmp_path / "crm.db", "SELECT text FROM messages WHERE external_key = ?", "scrm:facebook:1_700003")


# ---------------------------------------------------------------- any exception type, one place


class Poisoned(testnet.LoopbackNetAdapter):
    """testnet, whose payload ``{"raise": "<kind>"}`` makes parse_webhook raise that."""

    name = "poisoned"
    failures: ClassVar[dict[str, int]] = {}  # kind -> times raised

    async def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[Event]:
        data = json.loads(body)
        kind = data.get("raise")
        if kind is not None:
            Poisoned.failures[kind] = Poisoned.failures.get(kind, 0) + 1
            if kind == "retryable-once" and Poisoned.failures[kind] > 1:
                return await super().parse_webhook(b'{"id": 77, "text": "after a retry"}', headers)
            raise _EXCEPTIONS[kind]()
        return await super().parse_webhook(body, headers)


def _recursion() -> Exception:
    def dive(n: int) -> int:
        return dive(n + 1) + 1

    try:
        dive(0)
    except RecursionError as exc:
        return exc
    raise AssertionError("unreachable")


_EXCEPTIONS: dict[str, Callable[[], BaseException]] = {
    "recursion": _recursion,
    "type": lambda: TypeError("'int' object is not iterable"),
    "overflow": lambda: OverflowError("date value out of range"),
    "os": lambda: OSError(75, "Value too large for defined data type"),
    "key": lambda: KeyError("entry"),
    "fatal": lambda: FatalError("the adapter thinks this is fatal"),
    "skippable": lambda: SkippableError("a payload it knows it cannot read"),
    "retryable-once": lambda: RetryableError("the network hiccuped", retry_after=0),
}


class _Registers:
    """A plugin that registers the given network adapter classes."""

    def __init__(self, *classes: type[NetworkAdapter]) -> None:
        self.classes = classes

    @hookimpl
    def scrm_register_networks(self, register: Callable[[type[NetworkAdapter]], None]) -> None:
        for cls in self.classes:
            register(cls)


def _host(*classes: type[NetworkAdapter]) -> PluginHost:
    import scrm_localcrm.plugin as localcrm

    host = PluginHost(env={}).load(entry_points=False)
    host.register(localcrm, "localcrm")
    host.register(_Registers(*classes), "test-networks")
    return host


def test_any_exception_while_parsing_a_payload_is_its_dead_letter(tmp_path: Path) -> None:
    Poisoned.failures.clear()
    host = _host(Poisoned)
    config = _config(tmp_path, [("p", "poisoned", {"network_id": "poison"})])
    cfg = load_config(config, env={}, networks=host.networks, crms=host.crms)
    store = SqliteStore(tmp_path / "state.db")
    store.migrate()
    kinds = list(_EXCEPTIONS)
    for i, kind in enumerate(kinds):
        store.store_webhook("p", f"d{i}", {"x-test-event": "created"}, json.dumps({"raise": kind}).encode())
    store.store_webhook("p", "valid", {"x-test-event": "created"}, b'{"id": 1, "text": "still synced"}')
    store.close()
    stats = asyncio.run(Engine(cfg, host).run(follow=False, handle_signals=False))
    assert stats.failed_sources == {}
    letters = dict(query(tmp_path / "state.db", "SELECT locator, reason FROM dead_letters"))
    expected = {f"webhook payload #{i + 1} of source 'p'" for i, kind in enumerate(kinds) if kind != "retryable-once"}
    assert set(letters) == expected, letters
    assert "RecursionError" in letters["webhook payload #1 of source 'p'"]
    assert "OverflowError: date value out of range" in letters["webhook payload #3 of source 'p'"]
    assert Poisoned.failures["retryable-once"] == 2  # retried, then synced: no dead letter
    texts = {t for (t,) in query(tmp_path / "crm.db", "SELECT text FROM messages")}
    assert texts == {"still synced", "after a retry"}


# ---------------------------------------------------------------- mapping and storing one event


class _Source(testnet.LoopbackNetAdapter):
    name = "pages"
    pages: ClassVar[list[EventPage]] = []

    async def listen(self, cursor: str | None, *, follow: bool) -> AsyncIterator[EventPage]:
        for page in self.pages[int(cursor or 0) :]:
            yield page


def _message(mid: str, *, at: datetime, followers: int | None = None, root: str | None = None) -> MessageCreated:
    who = SocialProfile(network="testnet", account_id=f"a{mid}", handle=f"user{mid}", followers=followers)
    return MessageCreated(
        message=testnet.customer_message(mid, f"text {mid}", author=f"a{mid}", parent=root).model_copy(
            update={"author": who, "created_at": at}
        )
    )


def test_an_event_that_fails_in_ingest_or_in_the_store_is_its_own_dead_letter(tmp_path: Path) -> None:
    aware = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    naive = datetime(2026, 1, 1, 9, 5)  # compared with the thread's aware time: TypeError in ingest
    _Source.pages = [
        EventPage(
            events=[
                _message("1", at=aware),
                _message("2", at=naive, root="1"),  # same thread as 1
                _message("3", at=aware, followers=2**70),  # more than the store's JSON takes: fails to commit
                _message("4", at=aware),
            ],
            cursor="1",
        )
    ]
    host = _host(_Source)
    config = _config(tmp_path, [("s", "pages", {"network_id": "pages"})])
    cfg = load_config(config, env={}, networks=host.networks, crms=host.crms)
    stats = asyncio.run(Engine(cfg, host).run(follow=False, handle_signals=False))
    assert stats.failed_sources == {}
    letters = dict(query(tmp_path / "state.db", "SELECT locator, reason FROM dead_letters"))
    assert set(letters) == {"message testnet:2", "message testnet:3"}, letters
    assert "TypeError" in letters["message testnet:2"] and "could not be processed" in letters["message testnet:2"]
    assert "could not be stored" in letters["message testnet:3"]
    texts = {t for (t,) in query(tmp_path / "crm.db", "SELECT text FROM messages")}
    assert texts == {"text 1", "text 4"}
    assert query(tmp_path / "state.db", "SELECT cursor FROM checkpoints WHERE source = 's'") == [("1",)]
    # the failed events are known: a second run adds no second dead letter
    asyncio.run(Engine(cfg, host).run(follow=False, handle_signals=False))
    assert len(query(tmp_path / "state.db", "SELECT id FROM dead_letters")) == 2


def test_the_receiver_refuses_what_the_readers_cannot_parse() -> None:
    from scrm_core.webhooks import MAX_JSON_DEPTH, WebhookPayloadError, parse_webhook_json

    assert parse_webhook_json(body_of(deep(MAX_JSON_DEPTH - 1))) is not None
    for body in (body_of(deep(MAX_JSON_DEPTH + 1)), b"[1, NaN]", b'"\\ud800"', b"\xff", b"1e400", b"{"):
        with pytest.raises(WebhookPayloadError):
            parse_webhook_json(body)
