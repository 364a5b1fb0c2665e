"""Every hook scrm calls, documented. These docstrings ARE the hook reference (docs/hooks.md).

Two kinds of hook:

* **Registration hooks** are synchronous and called once at start-up. They register
  objects (adapter classes, store back ends, CLI commands, and the objects a plugin
  builds from a configuration) whose I/O methods are async.
* **Event hooks** may be plain functions or ``async def``. The host calls them only
  through its typed facade, :class:`scrm.hooks.Hooks` (one method per hook, e.g.
  ``await hooks.detect_language(text)``), which awaits them, isolates a failing plugin
  (logged with its name, counted, the pipeline goes on), keeps only results of the
  documented type and implements "first result" itself, because pluggy's
  ``firstresult`` cannot await a coroutine.

Implement a hook by decorating a function of the same name with
:data:`scrm_core.hookimpl` in a module named by an entry point in the ``scrm`` group,
or a method of an object that module builds per configuration
(``scrm_register_processors``): state built from the config belongs on such an object,
never in module globals. An implementation may accept fewer arguments than the spec lists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

from . import PROJECT_NAME

if TYPE_CHECKING:
    from .adapters import CrmAdapter, NetworkAdapter
    from .config import Config
    from .learning import TrainableClassifier
    from .models import Action, Conversation, CrmOperation, IdentityMatch, Message, ReplyDraft, Sentiment, SocialProfile
    from .store import StoreBackend

hookspec = pluggy.HookspecMarker(PROJECT_NAME)

#: Hooks that must be plain functions (called once, synchronously, at start-up).
SYNC_ONLY = frozenset(
    {
        "scrm_register_networks",
        "scrm_register_crms",
        "scrm_register_stores",
        "scrm_register_processors",
        "scrm_register_classifiers",
        "scrm_register_commands",
        "scrm_check_config",
    }
)
#: Event hooks whose first non-None result wins (the facade stops there).
FIRST_RESULT = frozenset({"scrm_match_identity", "scrm_map_to_crm", "scrm_detect_language", "scrm_analyze_sentiment"})


# ---------------------------------------------------------------- registration


@hookspec
def scrm_register_networks(register: Callable[[type[NetworkAdapter]], None]) -> None:
    """Register network adapter classes.

    :param register: call it with each :class:`~scrm_core.NetworkAdapter` subclass; the
        class's ``name`` is what a config's ``[[sources]] adapter = "..."`` refers to.
    :returns: nothing.

    Synchronous, called once at start-up. Example::

        @hookimpl
        def scrm_register_networks(register):
            register(MastodonAdapter)
    """


@hookspec
def scrm_register_crms(register: Callable[[type[CrmAdapter]], None]) -> None:
    """Register CRM adapter classes.

    :param register: call it with each :class:`~scrm_core.CrmAdapter` subclass; the class's
        ``name`` is what ``[crm] adapter = "..."`` refers to.
    :returns: nothing.

    Synchronous, called once at start-up. Example::

        @hookimpl
        def scrm_register_crms(register):
            register(LocalCrm)
    """


@hookspec
def scrm_register_stores(register: Callable[[StoreBackend], None]) -> None:
    """Register a state-store back end.

    :param register: call it with a :class:`~scrm_core.store.StoreBackend` instance; its
        ``schemes`` (``("postgresql",)``) are the ``[state] url`` schemes it opens. The
        built-in SQLite back end (``sqlite://``) is registered the same way.
    :returns: nothing.

    Synchronous, called once at start-up. The back end's stores must pass
    :class:`scrm_core.testing.store.StateStoreConformance`. Example::

        @hookimpl
        def scrm_register_stores(register):
            register(PostgresBackend())
    """


@hookspec
def scrm_register_processors(config: Config, register: Callable[[object], None]) -> None:
    """Build this plugin's objects for one configuration.

    :param config: the validated :class:`scrm_core.Config` of the engine (or of the
        command: ``scrm understand -c``, ``scrm rules test``) being set up.
    :param register: call it with each object whose methods, decorated with
        :data:`scrm_core.hookimpl`, implement event hooks (not registration hooks). They
        are called for this configuration only, after the module-level ones.
    :returns: nothing.

    Synchronous, called once per configuration, before any event hook: keep what you build
    from the config (compiled rules, a matcher) on the object, never in module globals, so
    two engines in one process never share it. Example::

        class Router:
            def __init__(self, rules):
                self.rules = compile_rules(rules)

            @hookimpl
            def scrm_route_conversation(self, conversation, message):
                return route(self.rules, message)

        @hookimpl
        def scrm_register_processors(config, register):
            register(Router(config.routing.rules))
    """


@hookspec
def scrm_register_classifiers(register: Callable[[TrainableClassifier], None]) -> None:
    """Offer a classifier that learns from agents' label corrections.

    :param register: call it with a new :class:`~scrm_core.learning.TrainableClassifier`
        instance. Its ``name`` is what ``scrm intent train --classifier NAME`` selects; its
        ``namespace`` (``intent``) says which corrections are its examples. Its methods
        decorated with :data:`scrm_core.hookimpl` (``scrm_classify_message``, classifying
        with the model it holds) are registered as event hooks of this plugin host.
    :returns: nothing.

    Synchronous, called once per plugin host at start-up: build the classifier here, not
    in a module global, so two hosts in one process never share a model. scrm then
    collects corrections from the CRM, cross-validates a retrained model against the one
    in use (``scrm intent train``), keeps the new model in the state store and hands it to
    the classifier's ``use`` at every start. Example::

        class MyClassifier(TrainableClassifier):
            name = namespace = "topic"
            ...

            @hookimpl
            def scrm_classify_message(self, message):
                return self.current().predict_one(message)

        @hookimpl
        def scrm_register_classifiers(register):
            register(MyClassifier())
    """


@hookspec
def scrm_register_commands(cli: Any) -> None:
    """Add commands to the ``scrm`` command line.

    :param cli: the root :class:`typer.Typer` application. Add a command with
        ``@cli.command()`` or a group with ``cli.add_typer(sub, name="...")``.
    :returns: nothing.

    Synchronous, called once when the CLI starts. Example::

        @hookimpl
        def scrm_register_commands(cli):
            @cli.command()
            def hello():
                print("hello from my plugin")
    """


@hookspec
def scrm_check_config(config: Any) -> list[str] | None:
    """Check the parts of a loaded config that this plugin understands.

    :param config: the validated :class:`scrm_core.Config`.
    :returns: problems as ``"key: message"`` strings (``"listening.queries[2].query:
        unbalanced parenthesis at column 14"``), or None when all is well. Every
        plugin's problems are reported together, with the file's name, and the command
        (``scrm run``, ``scrm config check``...) exits 2.

    Synchronous, called once after the config loads. Example::

        @hookimpl
        def scrm_check_config(config):
            if len(config.listening.queries) > 5000:
                return ["listening.queries: more than 5000 queries"]
    """


# ---------------------------------------------------------------- social profile


@hookspec
def scrm_enrich_profile(profile: SocialProfile) -> SocialProfile | None:
    """Add to or correct a social profile before it is stored and sent to the CRM.

    :param profile: the profile as the network gave it.
    :returns: a replacement profile (its ``network`` and ``account_id`` must not change),
        or None to keep it. Implementations run in turn, each seeing the previous result.

    Called when a profile is new or changed. May be async. Example::

        @hookimpl
        def scrm_enrich_profile(profile):
            if profile.handle and profile.handle.endswith("@acme.example"):
                return profile.model_copy(update={"verified": True})
    """


@hookspec
def scrm_match_identity(profile: SocialProfile, candidates: list[SocialProfile]) -> IdentityMatch | None:
    """Propose which person a newly seen profile belongs to.

    :param profile: the new profile.
    :param candidates: known profiles that share an identifier with it.
    :returns: an :class:`~scrm_core.models.IdentityMatch` (person key, evidence, whether
        the evidence is verified), or None. Stops at the first non-None result.

    The network's identity policy decides what happens to the match: ``never`` drops it,
    ``suggest`` records it for an operator, ``verified`` links only verified evidence.
    May be async. Example::

        @hookimpl
        def scrm_match_identity(profile, candidates):
            for other in candidates:
                if profile.email and profile.email == other.email:
                    return IdentityMatch(person_key=other.key, evidence="same email", verified=False)
    """


# ---------------------------------------------------------------- conversation


@hookspec
def scrm_message_received(message: Message, conversation: Conversation) -> None:
    """A new message was accepted (not seen before) and placed in its conversation.

    :param message: the message, after understanding hooks filled ``language``,
        ``sentiment``, ``labels`` and ``matched_queries``.
    :param conversation: its conversation, counts already updated.
    :returns: nothing; a notification.

    May be async. Example::

        @hookimpl
        async def scrm_message_received(message, conversation):
            await metrics.increment(message.network)
    """


@hookspec
def scrm_classify_message(message: Message) -> list[str] | dict[str, float] | None:
    """Label a message: intent (``intent:complaint``, ``intent:question``,
    ``intent:purchase``, ``intent:praise``, ``intent:spam``, ``intent:unsure``), topic,
    anything routing uses.

    :param message: the message (language and sentiment already set).
    :returns: labels to add, or a dict of label -> confidence (0..1, calibrated where the
        classifier can), or None. All implementations are called; labels are merged into
        ``message.labels`` and confidences into ``message.label_confidence`` (the highest
        wins when two plugins give the same label).

    May be async. A classifier that can learn from agents' corrections also registers
    itself with ``scrm_register_classifiers``. Example::

        @hookimpl
        def scrm_classify_message(message):
            if "refund" in message.text.lower():
                return {"intent:complaint": 0.7, "topic:billing": 0.9}
    """


@hookspec
def scrm_route_conversation(conversation: Conversation, message: Message) -> list[Action] | None:
    """Decide what the CRM should do about a conversation after a new message.

    :param conversation: the conversation, the new message already counted in it.
    :param message: the message that triggered this pass (understood: labels, language...).
    :returns: actions (log, case, lead, label, priority, ignore), or None. All
        implementations are called and their actions combined; ``ignore`` wins over all.

    The default routing plugin (``scrm.routing``) applies the config's ``[[routing.rules]]``.
    May be async. Example::

        @hookimpl
        def scrm_route_conversation(conversation, message):
            if "vip" in conversation.labels:
                return [Action(kind="priority", value="urgent")]
    """


@hookspec
def scrm_map_to_crm(message: Message, conversation: Conversation, actions: list[Action]) -> list[CrmOperation] | None:
    """Replace the default mapping of a message and its routing actions to CRM operations.

    :param message: the message.
    :param conversation: its conversation.
    :param actions: what routing decided.
    :returns: the complete list of operations for this message, or None to use the
        default mapping. Stops at the first non-None result. Operations must be upserts
        by the deterministic external keys (:func:`scrm_core.external_key`).

    May be async. Example::

        @hookimpl
        def scrm_map_to_crm(message, conversation, actions):
            if message.network == "internal":
                return []  # never copy the internal network into the CRM
    """


@hookspec
def scrm_message_edited(message: Message, conversation_key: str) -> None:
    """A message was edited on its network; the CRM copy is being updated.

    :param message: the message's new state.
    :param conversation_key: the key of its conversation.
    :returns: nothing; a notification. May be async. Example::

        @hookimpl
        def scrm_message_edited(message, conversation_key):
            log.info("edited %s", message.key)
    """


@hookspec
def scrm_message_deleted(message_key: str, conversation_key: str) -> None:
    """A message was deleted on its network; its CRM copy is being redacted.

    :param message_key: ``<network>:<id>`` of the deleted message.
    :param conversation_key: its conversation's key.
    :returns: nothing; a notification. May be async. Example::

        @hookimpl
        def scrm_message_deleted(message_key, conversation_key):
            search_index.remove(message_key)
    """


@hookspec
def scrm_before_reply(draft: ReplyDraft) -> ReplyDraft | None:
    """Hold, change or refuse a reply before it is sent to the network.

    :param draft: the reply: conversation, message replied to, text.
    :returns: a changed draft (set ``hold=True`` to keep it for a person to approve, or
        ``refused="reason"`` to drop it), or None to leave it. Implementations run in
        turn, each seeing the previous result.

    May be async. Example::

        @hookimpl
        def scrm_before_reply(draft):
            if "password" in draft.text.lower():
                return draft.model_copy(update={"refused": "never ask for passwords"})
    """


# ---------------------------------------------------------------- listening


@hookspec
def scrm_listening_match(message: Message, queries: dict[str, str]) -> list[str] | None:
    """Which listening queries a message matches.

    :param message: the message.
    :param queries: the config's queries, name -> query text.
    :returns: names of matching queries, or None. All results are merged into
        ``message.matched_queries``. May be async. Example::

        @hookimpl
        def scrm_listening_match(message, queries):
            return [name for name, q in queries.items() if q.lower() in message.text.lower()]
    """


@hookspec
def scrm_redact_text(text: str, message: Message) -> str | None:
    """Rewrite a message's text before anything else reads it (PII masking, profanity...).

    :param text: the text so far (earlier implementations may have changed it).
    :param message: the message, for context (network, author); its ``text`` is not
        updated until every implementation has run.
    :returns: the new text, or None to keep it. Implementations run in turn, each seeing
        the previous result.

    Called first for every new and edited message, before language, sentiment,
    listening, moderation and classification, and before the conversation's subject is
    taken from it, so nothing downstream (the CRM included) sees the original. May be
    async. Example::

        @hookimpl
        def scrm_redact_text(text, message):
            return text.replace("secret", "******") if "secret" in text else None
    """


@hookspec
def scrm_detect_language(text: str) -> str | None:
    """The language of a text, as a BCP-47 code (``"en"``, ``"pt-BR"``).

    :param text: the message text.
    :returns: the code, or None if unsure. Stops at the first non-None result.
        Not called when the network already gave the language. May be async. Example::

        @hookimpl
        def scrm_detect_language(text):
            return "en" if text.isascii() else None
    """


@hookspec
def scrm_analyze_sentiment(text: str, language: str | None) -> Sentiment | None:
    """The mood of a text.

    :param text: the message text.
    :param language: its language, if known.
    :returns: a :class:`~scrm_core.Sentiment` (score -1..1 and label), or None.
        Stops at the first non-None result. May be async. A Sentiment is immutable, so
        the same object may be returned for every message with the same text. Example::

        @hookimpl
        def scrm_analyze_sentiment(text, language):
            return Sentiment(score=-0.8, label="negative") if "awful" in text else None
    """


@hookspec
def scrm_moderate(message: Message) -> list[str] | None:
    """Moderation labels for a message (``spam``, ``abuse``, ``nsfw``...).

    :param message: the message.
    :returns: labels, or None. Merged into ``message.labels`` with a ``moderation:``
        prefix; routing rules decide what to do with them (e.g. ignore spam).
        May be async. Example::

        @hookimpl
        def scrm_moderate(message):
            return ["spam"] if message.text.count("http") > 3 else None
    """


# ---------------------------------------------------------------- lifecycle


@hookspec
def scrm_startup(app: Any) -> None:
    """The engine is about to start.

    :param app: the :class:`scrm.engine.Engine` (its ``config`` and ``store``).
    :returns: nothing. May be async. Example::

        @hookimpl
        async def scrm_startup(app):
            await my_cache.warm()
    """


@hookspec
def scrm_shutdown(app: Any) -> None:
    """The engine has stopped: outbox flushed, checkpoints saved.

    :param app: the :class:`scrm.engine.Engine`.
    :returns: nothing. May be async. Example::

        @hookimpl
        async def scrm_shutdown(app):
            await my_cache.close()
    """
