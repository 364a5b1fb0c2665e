"""The built-in routing plugin (``scrm.routing``): the config's ``[[routing.rules]]``.

Rules are tried in order; the first whose ``when`` holds fires, and routing stops there
unless the rule says ``continue = true``. With no rules configured, the defaults below
apply: spam is ignored, complaints and questions open a case, purchase intent a lead.
It is an ordinary plugin: disable it (``SCRM_DISABLE_PLUGINS=scrm.routing``) and write
your own ``scrm_route_conversation``.
"""

from __future__ import annotations

from typing import Any

from .. import hookimpl
from ..config import RoutingRule, RuleWhen
from ..models import Action, ActionKind, Conversation, Direction, Message

DEFAULT_RULES: list[RoutingRule] = [
    RoutingRule(
        name="own-messages", when=RuleWhen(direction=Direction.outbound), actions=[Action(kind=ActionKind.log)]
    ),
    RoutingRule(
        name="spam",
        when=RuleWhen(labels_any=["intent:spam", "moderation:spam"]),
        actions=[Action(kind=ActionKind.ignore)],
    ),
    RoutingRule(
        name="complaint",
        when=RuleWhen(labels_any=["intent:complaint"]),
        actions=[Action(kind=ActionKind.case), Action(kind=ActionKind.priority, value="high")],
    ),
    RoutingRule(
        name="question",
        when=RuleWhen(labels_any=["intent:question"]),
        actions=[Action(kind=ActionKind.case), Action(kind=ActionKind.priority, value="normal")],
    ),
    RoutingRule(name="purchase", when=RuleWhen(labels_any=["intent:purchase"]), actions=[Action(kind=ActionKind.lead)]),
    RoutingRule(name="log-everything-else", actions=[Action(kind=ActionKind.log)]),
]


class CompiledRule:
    """A rule with its actions already named after it (the hot path copies nothing)."""

    __slots__ = ("actions", "continue_", "name", "when")

    def __init__(self, rule: RoutingRule) -> None:
        self.name = rule.name
        self.when = rule.when
        self.actions = [a.model_copy(update={"rule": rule.name}) for a in rule.actions]
        self.continue_ = rule.continue_


def compile_rules(rules: list[RoutingRule]) -> list[CompiledRule]:
    return [CompiledRule(r) for r in rules]


_rules: list[CompiledRule] = compile_rules(DEFAULT_RULES)


def matches(when: RuleWhen, message: Message) -> bool:
    """Whether every condition given in ``when`` holds for ``message`` (cheapest checks first)."""
    if when.networks is not None and message.network not in when.networks:
        return False
    if when.direction is not None and message.direction is not when.direction:
        return False
    if when.visibility is not None and message.visibility is not when.visibility:
        return False
    labels = message.labels
    if when.labels_any is not None and not any(label in labels for label in when.labels_any):
        return False
    if when.labels_all is not None and not all(label in labels for label in when.labels_all):
        return False
    if when.queries_any is not None and not any(q in message.matched_queries for q in when.queries_any):
        return False
    if when.min_followers is not None and (message.author.followers or 0) < when.min_followers:
        return False
    score = message.sentiment.score if message.sentiment is not None else None
    if when.sentiment_below is not None and (score is None or score >= when.sentiment_below):
        return False
    if when.sentiment_above is not None and (score is None or score <= when.sentiment_above):
        return False
    if when.keywords_any is not None:
        text = message.text.lower()
        return any(k.lower() in text for k in when.keywords_any)
    return True


def route(rules: list[CompiledRule], message: Message) -> list[Action]:
    """First matching rule wins; a rule with ``continue`` lets the next ones add actions."""
    actions: list[Action] = []
    for rule in rules:
        if matches(rule.when, message):
            actions += rule.actions
            if not rule.continue_:
                break
    return actions


@hookimpl
def scrm_startup(app: Any) -> None:
    global _rules
    configured = app.config.routing.rules
    _rules = compile_rules(DEFAULT_RULES if configured is None else configured)


@hookimpl
def scrm_route_conversation(conversation: Conversation) -> list[Action] | None:
    message = conversation.last_message
    return route(_rules, message) if message is not None else None
