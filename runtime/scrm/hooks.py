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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

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

__all__ = ["Dispatcher", "EventHook", "Hooks"]

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
        return self.function(*[kwargs[a] for a in names])


# Result types seen not to be awaitable (None, str, list, a Sentiment...): a set lookup per
# hook call instead of inspect.isawaitable's ABC check (a few per message, each ~1 µs for a
# pydantic model). A generator's awaitability is per object, so generators are never kept.
_PLAIN_RESULTS: set[type] = {type(None), str, list, dict, tuple, bool, int, float}


_PENDING = object()  # Dispatcher._invoke: the implementation returned an awaitable


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
        self.refresh()

    def refresh(self) -> None:
        """Snapshot the implementations; call after (un)registering plugins."""
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
        try:
            result = impl.call(kwargs)
        except Exception as exc:
            self._failed(impl.plugin, hook, f"{type(exc).__name__}: {exc}", traceback=True)
            return False, None
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

    async def call_all(self, hook: str, *, kind: type | tuple[type, ...] | None = None, **kwargs: Any) -> list[Any]:
        """Every implementation's non-None result (of type ``kind``, when given), in call order."""
        results = []
        for impl in self._implementations(hook):
            ok, result = self._invoke(hook, impl, kwargs, kind)
            if ok is _PENDING:
                ok, result = await self._awaited(hook, impl, result, kind)
            if ok and result is not None:
                results.append(result)
        return results

    async def call_first(self, hook: str, *, kind: type | tuple[type, ...] | None = None, **kwargs: Any) -> Any:
        """The first non-None result (of type ``kind``); later implementations are not called."""
        for impl in self._implementations(hook):
            ok, result = self._invoke(hook, impl, kwargs, kind)
            if ok is _PENDING:
                ok, result = await self._awaited(hook, impl, result, kind)
            if ok and result is not None:
                return result
        return None

    async def call_chain(self, hook: str, argname: str, value: Any, **kwargs: Any) -> Any:
        """Pass ``value`` through every implementation; each may return a replacement of its type."""
        for impl in self._implementations(hook):
            ok, result = self._invoke(hook, impl, {**kwargs, argname: value}, type(value))
            if ok is _PENDING:
                ok, result = await self._awaited(hook, impl, result, type(value))
            if ok and result is not None:
                value = result
        return value


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
        return await self.call_all("scrm_classify_message", kind=(list, Mapping), message=message)

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

    # ------------------------------------------------------------ listening

    async def listening_match(self, message: Message, queries: dict[str, str]) -> list[str]:
        """Names of the queries any plugin says the message matches."""
        found = await self.call_all("scrm_listening_match", kind=list, message=message, queries=queries)
        return _merged(found)

    async def redact_text(self, text: str, message: Message) -> str:
        redacted: str = await self.call_chain("scrm_redact_text", "text", text, message=message)
        return redacted

    async def detect_language(self, text: str) -> str | None:
        found: str | None = await self.call_first("scrm_detect_language", kind=str, text=text)
        return found

    async def analyze_sentiment(self, text: str, language: str | None) -> Sentiment | None:
        found: Sentiment | None = await self.call_first(
            "scrm_analyze_sentiment", kind=Sentiment, text=text, language=language
        )
        return found

    async def moderate(self, message: Message) -> list[str]:
        return _merged(await self.call_all("scrm_moderate", kind=list, message=message))

    # ------------------------------------------------------------ lifecycle

    async def startup(self, app: Any) -> None:
        await self.call_all("scrm_startup", app=app)

    async def shutdown(self, app: Any) -> None:
        await self.call_all("scrm_shutdown", app=app)


def _merged(lists: list[list[Any]]) -> list[str]:
    """The strings of every list, each once, in order."""
    merged: list[str] = []
    for found in lists:
        merged += [x for x in found if isinstance(x, str) and x not in merged]
    return merged
