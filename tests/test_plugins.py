"""The plugin host: discovery, isolation of broken plugins, allow/deny lists, dispatch."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from scrm.plugins import PluginHost

from scrm_core import Message, PluginError, hookimpl

BROKEN_IMPORT = "import does_not_exist_anywhere\n"
GOOD = """
from scrm_core import hookimpl

@hookimpl
def scrm_classify_message(message):
    return ["good"]
"""


def host(**env: str) -> PluginHost:
    return PluginHost(env=env).load()


def test_broken_import_is_reported_by_name_and_skipped(fake_distribution: Callable[..., Path]) -> None:
    fake_distribution("acme-broken", "broken", BROKEN_IMPORT)
    fake_distribution("acme-good", "goodone", GOOD)
    h = host()
    assert "does_not_exist_anywhere" in (h.plugins["broken"].error or "")
    assert h.plugins["goodone"].error is None
    assert h.plugins["goodone"].hooks == ["scrm_classify_message"]
    assert h.plugins["goodone"].distribution == "acme-good"
    assert h.hooks.has("scrm_classify_message")


def test_strict_makes_a_broken_plugin_fatal(fake_distribution: Callable[..., Path]) -> None:
    fake_distribution("acme-broken", "broken", BROKEN_IMPORT)
    with pytest.raises(PluginError, match="broken"):
        PluginHost(strict=True, env={}).load()


def test_unknown_hook_and_async_registration_hook_are_refused(fake_distribution: Callable[..., Path]) -> None:
    fake_distribution(
        "acme-typo", "typo", "from scrm_core import hookimpl\n@hookimpl\ndef scrm_clasify_message(message): ...\n"
    )
    fake_distribution(
        "acme-async",
        "asyncreg",
        "from scrm_core import hookimpl\n@hookimpl\nasync def scrm_register_crms(register): ...\n",
    )
    h = host()
    assert "unknown hook 'scrm_clasify_message'" in (h.plugins["typo"].error or "")
    assert "must be a plain function" in (h.plugins["asyncreg"].error or "")


def test_failing_registration_hook_is_isolated(fake_distribution: Callable[..., Path]) -> None:
    fake_distribution(
        "acme-reg",
        "badreg",
        "from scrm_core import hookimpl\n@hookimpl\ndef scrm_register_crms(register): register(42)\n",
    )
    h = host()
    assert "not a CrmAdapter subclass" in (h.plugins["badreg"].error or "")
    assert "localcrm" in h.crms  # the other plugins registered theirs


def test_allow_and_deny_lists(fake_distribution: Callable[..., Path]) -> None:
    fake_distribution("acme-good", "goodone", GOOD)
    assert "goodone" not in host(SCRM_LOAD_PLUGINS="localcrm").plugins
    assert set(host(SCRM_LOAD_PLUGINS="").plugins) == {"scrm.sqlite", "scrm.routing", "scrm.identity"}
    assert "goodone" not in host(SCRM_DISABLE_PLUGINS="goodone").plugins
    assert "scrm.routing" not in host(SCRM_DISABLE_PLUGINS="scrm.routing").plugins


def test_scrm_plugins_json_lists_errors(fake_distribution: Callable[..., Path]) -> None:
    site = fake_distribution("acme-broken", "broken", BROKEN_IMPORT)
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run(
        [sys.executable, "-m", "scrm", "plugins", "--json"], env=env, capture_output=True, text=True, check=True
    )
    plugins = {p["name"]: p for p in json.loads(out.stdout)}
    assert "does_not_exist_anywhere" in plugins["broken"]["error"]
    assert plugins["localcrm"]["crms"] == ["localcrm"]
    assert plugins["replay"]["networks"] == ["replay"]
    assert "scrm_register_processors" in plugins["scrm.routing"]["hooks"]  # its Router routes, built per config
    assert plugins["scrm.routing"]["version"] == plugins["localcrm"]["version"] == "0.1.0"
    strict = subprocess.run([sys.executable, "-m", "scrm", "plugins", "--strict"], env=env, capture_output=True)
    assert strict.returncode != 0


class _Order:
    def __init__(self, name: str, result: object, *, fail: bool = False, is_async: bool = False) -> None:
        self.name, self.result, self.fail, self.calls = name, result, fail, 0
        if is_async:

            async def impl(text: str) -> object:
                return self._run()

        else:

            def impl(text: str) -> object:
                return self._run()

        self.scrm_detect_language = hookimpl(impl)

    def _run(self) -> object:
        self.calls += 1
        if self.fail:
            raise RuntimeError("boom")
        return self.result


def test_dispatch_first_result_awaits_isolates_and_stops() -> None:
    h = PluginHost(env={}).load(entry_points=False)
    last = _Order("last", "fr")
    winner = _Order("winner", "pt", is_async=True)
    none = _Order("none", None)
    broken = _Order("broken", "xx", fail=True)
    for name, plugin in [("last", last), ("winner", winner), ("none", none), ("broken", broken)]:
        h.register(plugin, name)  # pluggy calls the last registered first
    result = asyncio.run(h.hooks.detect_language("olá"))
    assert result == "pt"
    assert (broken.calls, none.calls, winner.calls, last.calls) == (1, 1, 1, 0)
    assert h.hooks.failures == {"broken": 1}


def test_dispatch_call_all_collects_every_non_none_result() -> None:
    h = PluginHost(env={}).load(entry_points=False)
    plugins = {"a": SimpleNamespace(), "b": SimpleNamespace()}
    plugins["a"].scrm_moderate = hookimpl(lambda message: ["spam"])

    async def b(message: object) -> list[str]:
        return ["abuse"]

    plugins["b"].scrm_moderate = hookimpl(b)
    for name, plugin in plugins.items():
        h.register(plugin, name)
    assert asyncio.run(h.hooks.call_all("scrm_moderate", message=None)) == [["abuse"], ["spam"]]
    assert asyncio.run(h.hooks.moderate(None)) == ["abuse", "spam"]  # type: ignore[arg-type]


def test_the_pytest_kit_fixtures(scrm_host: PluginHost, make_message: Callable[..., object]) -> None:
    """What a plugin author's tests get from the `scrm` pytest plugin."""
    message = make_message("refund please", network="mastodon", id="9")
    assert message.key == "mastodon:9"  # type: ignore[attr-defined]
    assert set(scrm_host.plugins) == {
        "scrm.sqlite",
        "scrm.routing",
        "scrm.identity",
    }  # only the built-ins: tests stay isolated
    scrm_host.register(SimpleNamespace(scrm_moderate=hookimpl(lambda message: ["spam"])), "mine")
    assert asyncio.run(scrm_host.hooks.moderate(message)) == ["spam"]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("api_key", True),
        ("access_token", True),
        ("client_secret", True),
        ("password", True),
        ("token_url", True),  # the stricter of the two old rules: one SecretStr too many beats a leak
        ("credentials_file", True),
        ("keywords", False),
        ("private_key_path", False),
        ("base_url", False),
    ],
)
def test_both_conformance_suites_share_one_secret_rule(name: str, secret: bool) -> None:
    from pydantic import SecretStr, create_model

    from scrm_core.testing.settings import looks_secret, secrets_not_secretstr

    assert looks_secret(name) is secret
    as_str = create_model("S", **{name: (str, "x")})
    as_secret = create_model("S", **{name: (SecretStr | None, None)})
    assert bool(secrets_not_secretstr(as_str)) is secret
    assert secrets_not_secretstr(as_secret) == []


# ---------------------------------------------------------------- the typed facade


def test_a_misspelt_hook_fails_loudly() -> None:
    h = PluginHost(env={}).load(entry_points=False)
    with pytest.raises(ValueError, match="no event hook named 'scrm_moderat'"):
        asyncio.run(h.hooks.call_all("scrm_moderat", message=None))
    with pytest.raises(ValueError, match="a typo"):
        h.hooks.has("scrm_route_conversations")  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        h.hooks.moderat  # type: ignore[attr-defined]  # noqa: B018


def test_a_result_of_the_wrong_type_counts_as_the_plugins_failure_and_the_next_one_answers() -> None:
    h = PluginHost(env={}).load(entry_points=False)
    h.register(_Order("right", "de"), "right")
    wrong = _Order("wrong", 42)
    h.register(wrong, "wrong")  # called first
    assert asyncio.run(h.hooks.detect_language("Hallo")) == "de"
    assert wrong.calls == 1 and h.hooks.failures == {"wrong": 1}


def test_an_async_plugin_that_raises_or_answers_the_wrong_type_is_isolated_like_a_sync_one() -> None:
    h = PluginHost(env={}).load(entry_points=False)
    right = _Order("right", "de")
    wrong = _Order("wrong", 42, is_async=True)
    broken = _Order("broken", "xx", fail=True, is_async=True)
    for name, plugin in [("right", right), ("wrong", wrong), ("broken", broken)]:
        h.register(plugin, name)  # broken is called first, then wrong
    assert asyncio.run(h.hooks.detect_language("Hallo")) == "de"
    assert (broken.calls, wrong.calls, right.calls) == (1, 1, 1)
    assert h.hooks.failures == {"broken": 1, "wrong": 1}
    assert asyncio.run(h.hooks.call_all("scrm_detect_language", kind=str, text="Hallo")) == ["de"]
    assert h.hooks.failures == {"broken": 2, "wrong": 2}


# ---------------------------------------------------------------- objects built from the config


class _Tagger:
    """A processor: built from one configuration, it labels with what it was built from."""

    built = 0

    def __init__(self, label: str) -> None:
        type(self).built += 1
        self.label = label

    @hookimpl
    def scrm_classify_message(self, message: object) -> list[str]:
        return [self.label]


def _config(queries: dict[str, str]) -> object:
    from scrm_core.config import Config, ListeningConfig, ListeningQuery

    listening = ListeningConfig(queries=[ListeningQuery(name=k, query=v) for k, v in queries.items()])
    return Config.model_construct(sources=[], listening=listening)


def test_objects_are_built_once_per_configuration_and_never_shared() -> None:
    module = SimpleNamespace(
        scrm_register_processors=hookimpl(lambda config, register: register(_Tagger(config.listening.queries[0].name)))
    )
    h = PluginHost(env={}).load(entry_points=False)
    h.register(module, "tagger")
    _Tagger.built = 0
    first, second = h.hooks_for(_config({"one": "a"})), h.hooks_for(_config({"two": "b"}))
    assert _Tagger.built == 2
    for _ in range(3):
        assert asyncio.run(first.classify_message(None)) == [["one"]]  # type: ignore[arg-type]
    assert asyncio.run(second.classify_message(None)) == [["two"]]  # type: ignore[arg-type]
    assert _Tagger.built == 2, "built once, not per call"
    assert not h.hooks.has("scrm_classify_message"), "the host's own hooks are left as they were"


def test_a_plugin_that_cannot_build_its_objects_is_reported_and_the_others_go_on() -> None:
    def broken(config: object, register: Callable[[object], None]) -> None:
        raise RuntimeError("no such rule file")

    class Registers:
        @hookimpl
        def scrm_register_networks(self, register: object) -> None: ...

    h = PluginHost(env={}).load(entry_points=False)
    h.register(SimpleNamespace(scrm_register_processors=hookimpl(broken)), "broken")
    h.register(
        SimpleNamespace(scrm_register_processors=hookimpl(lambda config, register: register(Registers()))), "bad"
    )
    hooks = h.hooks_for(_config({"q": "x"}))
    assert "no such rule file" in (h.plugins["broken"].error or "")
    assert "only its module may" in (h.plugins["bad"].error or "")
    assert hooks.has("scrm_route_conversation"), "the built-in routing is still there"
    strict = PluginHost(env={}, strict=True).load(entry_points=False)
    strict.register(SimpleNamespace(scrm_register_processors=hookimpl(broken)), "broken")
    with pytest.raises(PluginError, match="no such rule file"):
        strict.hooks_for(_config({"q": "x"}))


def test_the_facade_covers_every_event_hook() -> None:
    """A new hookspec needs its typed method (and its name in EventHook), or this fails."""
    from scrm.hooks import EVENT_HOOKS, Hooks

    from scrm_core import hookspecs

    specs = {name for name in dir(hookspecs) if name.startswith("scrm_")} - hookspecs.SYNC_ONLY
    assert specs == EVENT_HOOKS
    assert [name for name in sorted(specs) if not callable(getattr(Hooks, name.removeprefix("scrm_"), None))] == []


# ---------------------------------------------------------------- the hot path's *_now calls


def test_now_calls_answer_at_once_while_plugins_are_sync_and_later_when_one_is_async() -> None:
    from scrm.hooks import Later

    h = PluginHost(env={}).load(entry_points=False)
    right, broken = _Order("right", "de"), _Order("broken", "xx", fail=True)
    h.register(right, "right")
    h.register(broken, "broken")  # called first, isolated
    assert h.hooks.detect_language_now("Hallo") == "de"
    waiting = _Order("waiting", None, is_async=True)
    h.register(waiting, "waiting")  # called first now: answers None, so the next ones are asked
    later = h.hooks.detect_language_now("Hallo")
    assert isinstance(later, Later)

    async def settle() -> object:
        return await later

    assert asyncio.run(settle()) == "de"
    assert (waiting.calls, broken.calls, right.calls) == (1, 2, 2)
    assert h.hooks.failures == {"broken": 2}


def _understanding_plugins(is_async: bool) -> dict[str, SimpleNamespace]:
    """Plugins for every understanding hook, all sync or all async, with the same answers."""

    def hook(fn: Callable[..., object]) -> object:
        if not is_async:
            return hookimpl(fn)

        # The same parameter names (pluggy passes the hook's arguments by name).
        names = ", ".join(inspect.signature(fn).parameters)
        namespace: dict[str, Any] = {"fn": fn}
        exec(f"async def impl({names}):\n    return fn({names})\n", namespace)
        impl = namespace["impl"]
        return hookimpl(impl)

    from scrm_core import Sentiment

    return {
        "mask": SimpleNamespace(scrm_redact_text=hook(lambda text, message: text.replace("1234", "****"))),
        "shout": SimpleNamespace(scrm_redact_text=hook(lambda text, message: text.upper())),
        "lang": SimpleNamespace(scrm_detect_language=hook(lambda text: "en" if "HELLO" in text else None)),
        "mood": SimpleNamespace(
            scrm_analyze_sentiment=hook(lambda text, language: Sentiment(score=0.5, label="positive"))
        ),
        "listen": SimpleNamespace(scrm_listening_match=hook(lambda message, queries: sorted(queries))),
        "listen2": SimpleNamespace(scrm_listening_match=hook(lambda message, queries: ["b", "c"])),
        "moderate": SimpleNamespace(scrm_moderate=hook(lambda message: ["spam"])),
        "labels": SimpleNamespace(scrm_classify_message=hook(lambda message: ["x", "y"])),
        "scores": SimpleNamespace(scrm_classify_message=hook(lambda message: {"y": 0.25, "z": 0.75})),
    }


@pytest.mark.parametrize("mixed", ["sync", "async", "alternating"])
def test_understanding_gives_the_same_answers_with_sync_and_async_plugins(
    mixed: str, make_message: Callable[..., Message]
) -> None:
    from scrm.engine.understand import Understander

    results = []
    for is_async in (False, True):
        h = PluginHost(env={}).load(entry_points=False)
        plugins = _understanding_plugins(False)
        if is_async:
            async_ones = _understanding_plugins(True)
            for i, name in enumerate(plugins):
                if mixed == "async" or (mixed == "alternating" and i % 2):
                    plugins[name] = async_ones[name]
        for name, plugin in plugins.items():
            h.register(plugin, name)
        message = make_message(text="hello 1234", language=None)
        asyncio.run(Understander(h.hooks, {"a": "x", "b": "y"}).understand(message))
        results.append(message.model_dump(exclude={"created_at"}))
        page = [make_message(text="hello 1234", language=None) for _ in range(3)]
        asyncio.run(Understander(h.hooks, {"a": "x", "b": "y"}).understand_page(page))
        assert [m.model_dump(exclude={"created_at"}) for m in page] == [results[-1]] * 3
        assert h.hooks.failures == {}
    sync, other = results
    assert sync == other
    assert sync["text"] == "HELLO ****" and sync["language"] == "en"
    assert sync["matched_queries"] == ["b", "c", "a"]
    assert sync["labels"] == ["moderation:spam", "y", "z", "x"]
    assert sync["label_confidence"] == {"y": 0.25, "z": 0.75}


def test_understanding_passes_each_plugin_the_arguments_it_takes_isolates_failures_and_sees_new_plugins(
    make_message: Callable[..., Message],
) -> None:
    from scrm.engine.understand import Understander

    from scrm_core import Sentiment

    seen: list[tuple[str, object]] = []

    def reordered(language: str | None, text: str) -> Sentiment | None:  # the hookspec's order reversed
        seen.append(("reordered", (language, text)))
        return None

    def language_only(language: str | None) -> Sentiment:
        seen.append(("language_only", language))
        return Sentiment(score=0.25, label="positive")

    def wrong_type(message: object) -> object:
        return 42

    def raises(message: object) -> object:
        raise RuntimeError("boom")

    h = PluginHost(env={}).load(entry_points=False)
    h.register(SimpleNamespace(scrm_analyze_sentiment=hookimpl(language_only)), "language_only")
    h.register(SimpleNamespace(scrm_analyze_sentiment=hookimpl(reordered)), "reordered")  # asked first
    h.register(SimpleNamespace(scrm_classify_message=hookimpl(wrong_type)), "wrong_type")
    h.register(SimpleNamespace(scrm_classify_message=hookimpl(raises)), "raises")
    understander = Understander(h.hooks, {})
    first = make_message(text="hello", language="en")
    asyncio.run(understander.understand(first))
    assert seen == [("reordered", ("en", "hello")), ("language_only", "en")]
    assert first.sentiment == Sentiment(score=0.25, label="positive") and first.labels == []
    assert h.hooks.failures == {"wrong_type": 1, "raises": 1}
    # A plugin registered after the understander was made is called from the next message on.
    h.register(SimpleNamespace(scrm_classify_message=hookimpl(lambda message: ["late"])), "late")
    second = make_message(text="hello again", language="en")
    asyncio.run(understander.understand(second))
    assert second.labels == ["late"]
    assert h.hooks.failures == {"wrong_type": 2, "raises": 2}


def test_a_page_understood_hook_by_hook_gets_what_each_message_gets_alone(tmp_path: Path) -> None:
    # Understander.understand_page runs each step over the whole page; every message must
    # end up as Understander.understand leaves it, with every first-party understanding
    # plugin on (PII redaction too) and a brand's listening queries.
    demo = pytest.importorskip("scrm_replay.demo", reason="the demo stream comes with scrm-replay")
    from scrm.engine.understand import Understander
    from scrm_replay.format import EVENT_ADAPTER

    demo.generate_demo(tmp_path, messages=3000, seed=3)
    lines = [line for path in sorted(tmp_path.glob("*.ndjson")) for line in path.read_bytes().splitlines()]
    events = [EVENT_ADAPTER.validate_json(line) for line in lines]
    lines = [line for line, event in zip(lines, events, strict=True) if hasattr(event, "message")]
    h = PluginHost(
        env={
            "SCRM_LOAD_PLUGINS": "intent,sentiment,language,influence,listening,pii",
            "SCRM_ENABLE_PLUGINS": "pii",
        }
    ).load()
    queries = {"brand": '"acme" OR @acme OR #acme', "refunds": 'refund* OR "money back"', "late": "late OR never"}
    alone = [EVENT_ADAPTER.validate_json(line).message for line in lines]  # type: ignore[attr-defined]
    paged = [EVENT_ADAPTER.validate_json(line).message for line in lines]  # type: ignore[attr-defined]

    hooks = h.hooks_for(_config(queries))  # the listening plugin's matcher is built from the config

    async def understand() -> None:
        understander = Understander(hooks, queries)
        for message in alone:
            await understander.understand(message)
        for start in range(0, len(paged), 97):
            page = paged[start : start + 97]
            await understander.understand_page(page)
            for message in page:
                await understander.understand(message)  # nothing more: understood with its page

    asyncio.run(understand())
    assert hooks.failures == {}
    assert [m.model_dump() for m in paged] == [m.model_dump() for m in alone]
    assert sum(bool(m.matched_queries) for m in alone) > 100 and sum(m.sentiment is not None for m in alone) > 1000
    assert any(label.startswith("pii:") for m in alone for label in m.labels)


def test_after_a_page_failed_to_be_understood_at_once_each_message_is_understood_by_itself(
    monkeypatch: pytest.MonkeyPatch, make_message: Callable[..., Message]
) -> None:
    # Ingest catches a failed understand_page and goes on per message: those calls must then
    # understand each message, not skip it as understood with its page.
    from scrm.engine.understand import Understander

    h = PluginHost(env={"SCRM_LOAD_PLUGINS": "sentiment"}).load()
    understander = Understander(h.hooks, {})
    page = [make_message(text="I love this kettle", id=str(i), language="en") for i in range(3)]
    whole = Understander._understand

    async def fails_for_pages(self: Understander, messages: Any, *, classify: bool) -> None:
        if len(messages) > 1:
            raise RuntimeError("a bug in understanding a page")
        await whole(self, messages, classify=classify)

    monkeypatch.setattr(Understander, "_understand", fails_for_pages)
    with pytest.raises(RuntimeError):
        asyncio.run(understander.understand_page(page))
    for message in page:
        asyncio.run(understander.understand(message))
    assert all(m.sentiment is not None and m.sentiment.label == "positive" for m in page)
