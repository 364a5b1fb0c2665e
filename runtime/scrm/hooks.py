"""The typed facade over the event hooks: one method per hook, with its arguments and its
result typed, so a misspelt hook is an ``AttributeError`` (and a mypy error), never a
silent ``[]``.

The engine calls plugins only through :class:`Hooks`. Each method awaits async
implementations, isolates a failing plugin (logged with its name, counted, the others go
on: :class:`~scrm.plugins.Dispatcher`) and keeps only results of the type the hook
documents; a plugin that returns anything else is counted as failing, as if it had raised.
"""

from __future__ import annotations

import inspect
import logging
import types
from collections import Counter
from collections.abc import Callable, Coroutine, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeAlias, TypeVar, get_args

import pluggy

from scrm_core import hookspecs
from scrm_core.models import (
    Action,
    Conversation,
    CrmOperation,
    IdentityMatch,
    Message,
    ReplyDraft,
    Sentiment,
    SocialProfile,
)

__all__ = ["Dispatcher", "EventHook", "Hooks", "Later", "UnderstandingCallers", "merged"]

log = logging.getLogger("scrm.plugins")

_SPEC_NAMES = frozenset(n for n in dir(hookspecs) if n.startswith("scrm_"))

#: Every event hook, by name (``Hooks.has`` takes only these).
EventHook = Literal[
    "scrm_enrich_profile",
    "scrm_match_identity",
    "scrm_message_received",
    "scrm_classify_message",
    "scrm_route_conversation",
    "scrm_map_to_crm",
    "scrm_message_edited",
    "scrm_message_deleted",
    "scrm_before_reply",
    "scrm_listening_match",
    "scrm_redact_text",
    "scrm_detect_language",
    "scrm_analyze_sentiment",
    "scrm_moderate",
    "scrm_startup",
    "scrm_shutdown",
]
EVENT_HOOKS: frozenset[str] = frozenset(get_args(EventHook))


@dataclass(slots=True)
class _Impl:
    plugin: str
    function: Callable[..., Any]
    argnames: tuple[str, ...]

    def call(self, kwargs: Mapping[str, Any]) -> Any:
        """The implementation called with the arguments it takes, from the hook's ``kwargs``
        (most take one: the common case is the cheapest)."""
        names = self.argnames
        if len(names) == 1:
            return self.function(kwargs[names[0]])
        if len(names) == 2:
            return self.function(kwargs[names[0]], kwargs[names[1]])
        return self.function(*[kwargs[a] for a in names])


# Result types seen not to be awaitable (None, str, list, a Sentiment...): a set lookup per
# hook call instead of inspect.isawaitable's ABC check (a few per message, each ~1 µs for a
# pydantic model). A generator's awaitability is per object, so generators are never kept.
_PLAIN_RESULTS: set[type] = {type(None), str, list, dict, tuple, bool, int, float}


_PENDING = object()  # Dispatcher._invoke: the implementation returned an awaitable

T = TypeVar("T")


class Later(Generic[T]):
    """A hook call's result that waits on an async implementation: what the ``*_now`` calls
    return (instead of the result) when one of the implementations they called was async.
    Await it for the result. While every implementation is sync, those calls return the
    result itself and no coroutine is made (a hot path calls a few hooks per message)."""

    __slots__ = ("_rest",)

    def __init__(self, rest: Coroutine[Any, Any, T]) -> None:
        self._rest = rest

    def __await__(self) -> Generator[Any, None, T]:
        return self._rest.__await__()


def _awaitable(result: object) -> bool:
    kind = type(result)
    if kind in _PLAIN_RESULTS:
        return False
    if inspect.isawaitable(result):
        return True
    if kind is not types.GeneratorType:
        _PLAIN_RESULTS.add(kind)
    return False


class Dispatcher:
    """Calls event hooks: awaits async implementations, isolates failures, does first-result.

    Implementations run in pluggy's order (``tryfirst``/``trylast``, then last registered
    first). A plugin that raises, or returns a result not of the hook's ``kind``, is logged
    with its name and counted in ``failures``; the other implementations still run and the
    pipeline goes on. A hook name that is not in :mod:`scrm_core.hookspecs` is a
    ``ValueError``. The engine calls hooks through the typed facade, :class:`scrm.hooks.Hooks`.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm
        self._impls: dict[str, list[_Impl]] = {}
        #: The event hooks some plugin implements, as of the last :meth:`refresh` (what
        #: :meth:`has` answers; the hot path reads it directly, a set lookup per hook).
        self.implemented: frozenset[str] = frozenset()
        self.failures: Counter[str] = Counter()
        self._reported: set[tuple[str, str]] = set()
        #: Counts :meth:`refresh` calls: what :meth:`caller` built is valid for one generation.
        self.generation = 0
        self.refresh()

    def refresh(self) -> None:
        """Snapshot the implementations; call after (un)registering plugins."""
        self.generation += 1
        self._impls = {}
        for name in _SPEC_NAMES - hookspecs.SYNC_ONLY:
            impls = getattr(self._pm.hook, name).get_hookimpls()
            self._impls[name] = [_Impl(i.plugin_name, i.function, tuple(i.argnames)) for i in reversed(impls)]
        self.implemented = frozenset(name for name, impls in self._impls.items() if impls)

    def _implementations(self, hook: str) -> list[_Impl]:
        found = self._impls.get(hook)
        if found is None:
            raise ValueError(f"no event hook named {hook!r} (a typo? see docs/hooks.md)")
        return found

    def has(self, hook: str) -> bool:
        """True when any plugin implements ``hook`` (lets the hot path skip work)."""
        return bool(self._implementations(hook))

    def _failed(self, plugin: str, hook: str, why: str, *, traceback: bool) -> None:
        self.failures[plugin] += 1
        # The first failure of a plugin in a hook is logged (with its traceback); repeats
        # (one per message, often) only at debug level, and counted.
        if (plugin, hook) in self._reported:
            log.debug("plugin %s failed in %s again: %s", plugin, hook, why, exc_info=traceback)
        else:
            self._reported.add((plugin, hook))
            log.error(
                "plugin %s failed in %s (%s); going on without it (repeats are counted)",
                plugin,
                hook,
                why,
                exc_info=traceback,
            )

    def _invoke(self, hook: str, impl: _Impl, kwargs: Mapping[str, Any], kind: type | tuple[type, ...] | None) -> Any:
        """One implementation's result: ``(True, result)``, ``(False, None)`` when it failed,
        or ``(_PENDING, awaitable)`` for an async one (see :meth:`_awaited`). A plain call, not
        a coroutine: most implementations are sync, and a coroutine per hook call is ~0.5 µs."""
        names = impl.argnames
        try:  # most implementations take one argument: called here, without impl.call's frame
            result = impl.function(kwargs[names[0]]) if len(names) == 1 else impl.call(kwargs)
        except Exception as exc:
            self._failed(impl.plugin, hook, f"{type(exc).__name__}: {exc}", traceback=True)
            return False, None
        answer = type(result)
        if result is None or answer is kind or (type(kind) is tuple and answer in kind):  # the common answers first
            return True, result
        if type(result) not in _PLAIN_RESULTS and _awaitable(result):
            return _PENDING, result
        return self._checked(hook, impl, result, kind)

    async def _awaited(
        self, hook: str, impl: _Impl, awaitable: Any, kind: type | tuple[type, ...] | None
    ) -> tuple[bool, Any]:
        try:
            result = await awaitable
        except Exception as exc:
            self._failed(impl.plugin, hook, f"{type(exc).__name__}: {exc}", traceback=True)
            return False, None
        return self._checked(hook, impl, result, kind)

    def _checked(self, hook: str, impl: _Impl, result: Any, kind: type | tuple[type, ...] | None) -> tuple[bool, Any]:
        """``(True, result)``, or ``(False, None)`` (reported) when it is not of type ``kind``."""
        if result is not None and kind is not None and type(result) is not kind and not isinstance(result, kind):
            self._failed(impl.plugin, hook, f"returned a {type(result).__name__}", traceback=False)
            return False, None
        return True, result

    # Each hook call is written once, as a plain function over the implementations from
    # ``start``: it returns the result, or a Later that awaits an async implementation and
    # then goes on with the next ones. The async call_* await that Later when there is one.

    def all_now(
        self,
        hook: str,
        kind: type | tuple[type, ...] | None,
        kwargs: Mapping[str, Any],
        start: int = 0,
        impls: list[_Impl] | None = None,
    ) -> list[Any] | Later[list[Any]]:
        """:meth:`call_all` without a coroutine while the implementations are sync (``start``
        and ``impls``: where a Later goes on, over the implementations it started with)."""
        if impls is None:
            impls = self._impls.get(hook) or self._implementations(hook)
        results: list[Any] = []
        for i in range(start, len(impls)):
            ok, result = self._invoke(hook, impls[i], kwargs, kind)
            if ok is _PENDING:
                return Later(self._all_after(hook, kind, kwargs, impls, i, result, results))
            if ok and result is not None:
                results.append(result)
        return results

    async def _all_after(
        self,
        hook: str,
        kind: type | tuple[type, ...] | None,
        kwargs: Mapping[str, Any],
        impls: list[_Impl],
        i: int,
        awaitable: Any,
        results: list[Any],
    ) -> list[Any]:
        ok, result = await self._awaited(hook, impls[i], awaitable, kind)
        if ok and result is not None:
            results.append(result)
        rest = self.all_now(hook, kind, kwargs, i + 1, impls)
        return results + (await rest if type(rest) is Later else rest)  # type: ignore[operator]

    def first_now(
        self,
        hook: str,
        kind: type | tuple[type, ...] | None,
        kwargs: Mapping[str, Any],
        start: int = 0,
        impls: list[_Impl] | None = None,
    ) -> Any:
        """:meth:`call_first` without a coroutine while the implementations are sync: the
        result, or a :class:`Later`."""
        if impls is None:
            impls = self._impls.get(hook) or self._implementations(hook)
        for i in range(start, len(impls)):
            ok, result = self._invoke(hook, impls[i], kwargs, kind)
            if ok is _PENDING:
                return Later(self._first_after(hook, kind, kwargs, impls, i, result))
            if ok and result is not None:
                return result
        return None

    async def _first_after(
        self,
        hook: str,
        kind: type | tuple[type, ...] | None,
        kwargs: Mapping[str, Any],
        impls: list[_Impl],
        i: int,
        awaitable: Any,
    ) -> Any:
        ok, result = await self._awaited(hook, impls[i], awaitable, kind)
        if ok and result is not None:
            return result
        rest = self.first_now(hook, kind, kwargs, i + 1, impls)
        return await rest if type(rest) is Later else rest

    def chain_now(
        self,
        hook: str,
        argname: str,
        value: Any,
        kwargs: Mapping[str, Any],
        start: int = 0,
        impls: list[_Impl] | None = None,
    ) -> Any:
        """:meth:`call_chain` without a coroutine while the implementations are sync: the
        value, or a :class:`Later`."""
        if impls is None:
            impls = self._implementations(hook)
        for i in range(start, len(impls)):
            kind = type(value)
            ok, result = self._invoke(hook, impls[i], {**kwargs, argname: value}, kind)
            if ok is _PENDING:
                return Later(self._chain_after(hook, argname, value, kwargs, impls, i, result))
            if ok and result is not None:
                value = result
        return value

    async def _chain_after(
        self,
        hook: str,
        argname: str,
        value: Any,
        kwargs: Mapping[str, Any],
        impls: list[_Impl],
        i: int,
        awaitable: Any,
    ) -> Any:
        ok, result = await self._awaited(hook, impls[i], awaitable, type(value))
        if ok and result is not None:
            value = result
        rest = self.chain_now(hook, argname, value, kwargs, i + 1, impls)
        return await rest if type(rest) is Later else rest

    def caller(self, hook: str, kind: type | tuple[type, ...], *, first: bool) -> Callable[..., Any]:
        """``hook`` as a plain function of its arguments in the hookspec's order, for a hot
        path: :meth:`first_now`'s result (``first``) or :meth:`all_now`'s, the same failures
        isolated and the same types kept, with no argument dict and no call in between when
        every implementation takes the hookspec's arguments in its order. Valid until the
        next :meth:`refresh` (compare :attr:`generation`)."""
        impls = self._implementations(hook)
        spec = tuple(getattr(self._pm.hook, hook).spec.argnames)
        calls = [(impl, _positional(impl, spec)) for impl in impls]
        kinds = kind if isinstance(kind, tuple) else (kind,)

        def call(*args: Any) -> Any:
            results: list[Any] = []
            for i, (impl, function) in enumerate(calls):
                try:
                    result = function(*args)
                except Exception as exc:
                    self._failed(impl.plugin, hook, f"{type(exc).__name__}: {exc}", traceback=True)
                    continue
                if result is None:
                    continue
                if type(result) not in kinds:
                    if type(result) not in _PLAIN_RESULTS and _awaitable(result):
                        kwargs = dict(zip(spec, args, strict=True))
                        if first:
                            return Later(self._first_after(hook, kind, kwargs, impls, i, result))
                        return Later(self._all_after(hook, kind, kwargs, impls, i, result, results))
                    ok, result = self._checked(hook, impl, result, kind)
                    if not ok:
                        continue
                if first:
                    return result
                results.append(result)
            return None if first else results

        return call

    async def call_all(self, hook: str, *, kind: type | tuple[type, ...] | None = None, **kwargs: Any) -> list[Any]:
        """Every implementation's non-None result (of type ``kind``, when given), in call order."""
        found = self.all_now(hook, kind, kwargs)
        return await found if type(found) is Later else found  # type: ignore[return-value]

    async def call_first(self, hook: str, *, kind: type | tuple[type, ...] | None = None, **kwargs: Any) -> Any:
        """The first non-None result (of type ``kind``); later implementations are not called."""
        found = self.first_now(hook, kind, kwargs)
        return await found if type(found) is Later else found

    async def call_chain(self, hook: str, argname: str, value: Any, **kwargs: Any) -> Any:
        """Pass ``value`` through every implementation; each may return a replacement of its type."""
        found = self.chain_now(hook, argname, value, kwargs)
        return await found if type(found) is Later else found


def _positional(impl: _Impl, spec: tuple[str, ...]) -> Callable[..., Any]:
    """``impl`` called with the hookspec's arguments in its order: the function itself when it
    takes them all, else an adapter that passes the ones it takes (pluggy passes by name)."""
    if impl.argnames == spec:
        return impl.function
    function, picks = impl.function, tuple(spec.index(name) for name in impl.argnames)
    if len(picks) == 1:
        pick = picks[0]
        return lambda *args: function(args[pick])
    return lambda *args: function(*[args[i] for i in picks])


# What scrm_classify_message may answer. dict before Mapping: the exact types are tried
# first, the ABC's isinstance check last.
_CLASSIFIED = (list, dict, Mapping)

_Now: TypeAlias = T | Later[T]


@dataclass(frozen=True, slots=True)
class UnderstandingCallers:
    """:meth:`Hooks.understanding_callers`: each hook's function (arguments in the hookspec's
    order; the result, or a Later to await), None where no plugin implements it."""

    generation: int
    redact: bool  # redaction is a chain: called through Hooks.redact_text_now
    detect_language: Callable[[str], _Now[str | None]] | None
    analyze_sentiment: Callable[[str, str | None], _Now[Sentiment | None]] | None
    listening_match: Callable[[Message, dict[str, str]], _Now[list[list[Any]]]] | None
    moderate: Callable[[Message], _Now[list[list[Any]]]] | None
    classify_message: Callable[[Message], _Now[list[list[str] | Mapping[str, float]]]] | None


class Hooks(Dispatcher):
    """Calls the event hooks: what :attr:`PluginHost.hooks <scrm.plugins.PluginHost>`
    and :meth:`PluginHost.hooks_for <scrm.plugins.PluginHost.hooks_for>` return."""

    def has(self, hook: EventHook) -> bool:  # type: ignore[override]  # narrower: the names are typed
        return super().has(hook)

    # ------------------------------------------------------------ social profile

    async def enrich_profile(self, profile: SocialProfile) -> SocialProfile:
        """The profile after every ``scrm_enrich_profile`` (a replacement must keep its key)."""
        enriched: SocialProfile = await self.call_chain("scrm_enrich_profile", "profile", profile)
        return enriched if enriched.key == profile.key else profile

    async def match_identity(self, profile: SocialProfile, candidates: list[SocialProfile]) -> IdentityMatch | None:
        found: IdentityMatch | None = await self.call_first(
            "scrm_match_identity", kind=IdentityMatch, profile=profile, candidates=candidates
        )
        return found

    # ------------------------------------------------------------ conversation

    async def message_received(self, message: Message, conversation: Conversation) -> None:
        await self.call_all("scrm_message_received", message=message, conversation=conversation)

    async def classify_message(self, message: Message) -> list[list[str] | Mapping[str, float]]:
        """Every classifier's labels, or label -> confidence."""
        found = self.classify_message_now(message)
        return await found if isinstance(found, Later) else found

    def classify_message_now(
        self, message: Message
    ) -> list[list[str] | Mapping[str, float]] | Later[list[list[str] | Mapping[str, float]]]:
        return self.all_now("scrm_classify_message", _CLASSIFIED, {"message": message})

    async def route_conversation(self, conversation: Conversation, message: Message) -> list[Action]:
        """Every routing plugin's actions for the conversation after ``message``, in call order."""
        found = await self.call_all("scrm_route_conversation", kind=list, conversation=conversation, message=message)
        return [action for actions in found for action in actions if isinstance(action, Action)]

    async def map_to_crm(
        self, message: Message, conversation: Conversation, actions: list[Action]
    ) -> list[CrmOperation] | None:
        """A plugin's operations for the message, or None for the default mapping."""
        found = await self.call_first(
            "scrm_map_to_crm", kind=list, message=message, conversation=conversation, actions=actions
        )
        return None if found is None else [op for op in found if isinstance(op, CrmOperation)]

    async def message_edited(self, message: Message, conversation_key: str) -> None:
        await self.call_all("scrm_message_edited", message=message, conversation_key=conversation_key)

    async def message_deleted(self, message_key: str, conversation_key: str) -> None:
        await self.call_all("scrm_message_deleted", message_key=message_key, conversation_key=conversation_key)

    async def before_reply(self, draft: ReplyDraft) -> ReplyDraft:
        changed: ReplyDraft = await self.call_chain("scrm_before_reply", "draft", draft)
        return changed

    # ------------------------------------------------------------ listening and understanding
    # Each has a ``*_now`` twin for the hot path (scrm.engine.understand): the result
    # itself, or a Later to await when an implementation is async (see Dispatcher.first_now).

    async def listening_match(self, message: Message, queries: dict[str, str]) -> list[str]:
        """Names of the queries any plugin says the message matches."""
        found = self.listening_match_now(message, queries)
        return await found if isinstance(found, Later) else found

    def listening_match_now(self, message: Message, queries: dict[str, str]) -> list[str] | Later[list[str]]:
        found = self.all_now("scrm_listening_match", list, {"message": message, "queries": queries})
        return Later(_merged_later(found)) if isinstance(found, Later) else merged(found)

    async def redact_text(self, text: str, message: Message) -> str:
        found = self.redact_text_now(text, message)
        return await found if isinstance(found, Later) else found

    def redact_text_now(self, text: str, message: Message) -> str | Later[str]:
        redacted: str | Later[str] = self.chain_now("scrm_redact_text", "text", text, {"message": message})
        return redacted

    async def detect_language(self, text: str) -> str | None:
        found = self.detect_language_now(text)
        return await found if isinstance(found, Later) else found

    def detect_language_now(self, text: str) -> str | Later[str | None] | None:
        found: str | Later[str | None] | None = self.first_now("scrm_detect_language", str, {"text": text})
        return found

    async def analyze_sentiment(self, text: str, language: str | None) -> Sentiment | None:
        found = self.analyze_sentiment_now(text, language)
        return await found if isinstance(found, Later) else found

    def analyze_sentiment_now(self, text: str, language: str | None) -> Sentiment | Later[Sentiment | None] | None:
        found: Sentiment | Later[Sentiment | None] | None = self.first_now(
            "scrm_analyze_sentiment", Sentiment, {"text": text, "language": language}
        )
        return found

    async def moderate(self, message: Message) -> list[str]:
        found = self.moderate_now(message)
        return await found if isinstance(found, Later) else found

    def moderate_now(self, message: Message) -> list[str] | Later[list[str]]:
        found = self.all_now("scrm_moderate", list, {"message": message})
        return Later(_merged_later(found)) if isinstance(found, Later) else merged(found)

    def understanding_callers(self) -> UnderstandingCallers:
        """The understanding hooks as :meth:`~Dispatcher.caller` functions (None for a hook no
        plugin implements), for :class:`scrm.engine.understand.Understander`: valid while
        :attr:`~Dispatcher.generation` is theirs."""
        present = self.implemented

        def built(hook: str, kind: type | tuple[type, ...], *, first: bool) -> Any:
            return self.caller(hook, kind, first=first) if hook in present else None

        return UnderstandingCallers(
            generation=self.generation,
            redact="scrm_redact_text" in present,
            detect_language=built("scrm_detect_language", str, first=True),
            analyze_sentiment=built("scrm_analyze_sentiment", Sentiment, first=True),
            listening_match=built("scrm_listening_match", list, first=False),
            moderate=built("scrm_moderate", list, first=False),
            classify_message=built("scrm_classify_message", _CLASSIFIED, first=False),
        )

    # ------------------------------------------------------------ lifecycle

    async def startup(self, app: Any) -> None:
        await self.call_all("scrm_startup", app=app)

    async def shutdown(self, app: Any) -> None:
        await self.call_all("scrm_shutdown", app=app)


def merged(lists: list[list[Any]]) -> list[str]:
    """The strings of every list, each once, in order."""
    names: list[str] = []
    for found in lists:
        names += [x for x in found if isinstance(x, str) and x not in names]
    return names


async def _merged_later(found: Later[list[list[Any]]]) -> list[str]:
    return merged(await found)
