"""The built-in routing plugin (``scrm.routing``): the config's ``[[routing.rules]]``.

Rules are tried in order; the first whose ``when`` holds fires, and routing stops there
unless the rule says ``continue = true``. With no rules configured, the defaults below
apply: spam is ignored, complaints and questions open a case, purchase intent a lead.
It is an ordinary plugin: disable it (``SCRM_DISABLE_PLUGINS=scrm.routing``) and write
your own ``scrm_route_conversation``.

Each rule's ``when`` compiles once into a list of named checks, cheapest first, holding
only the conditions the rule gives. The same checks explain a decision
(``scrm rules test``), so what the explanation says is what routing does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from scrm_core import hookimpl
from scrm_core.config import _DAYS, BusinessHours, Config, RoutingRule, RuleWhen
from scrm_core.models import Action, ActionKind, Direction, Message

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

Check = Callable[[Message], bool]
log = logging.getLogger("scrm.routing")


class Hours:
    """Business hours in their time zone; ``contains`` takes any aware datetime."""

    def __init__(self, hours: BusinessHours) -> None:
        self.zone = ZoneInfo(hours.timezone)
        self.days = {_DAYS.index(d) for d in hours.days}
        self.start = time.fromisoformat(hours.start)
        self.end = time.max if hours.end == "24:00" else time.fromisoformat(hours.end)
        self.text = f"{', '.join(hours.days)} {hours.start}-{hours.end} {hours.timezone}"

    def contains(self, when: datetime) -> bool:
        local = when.astimezone(self.zone)
        return local.weekday() in self.days and self.start <= local.time() < self.end


def _language_matches(wanted: Sequence[str], language: str | None) -> bool:
    if language is None:
        return False
    primary = language.lower().split("-")[0]
    return any(w.lower() == language.lower() or w.lower() == primary for w in wanted)


def compile_checks(when: RuleWhen, hours: Hours | None = None) -> list[tuple[str, Check]]:
    """The rule's conditions as (description, check) pairs, cheapest first."""
    checks: list[tuple[str, Check]] = []
    add = checks.append
    if when.networks is not None:
        networks = frozenset(when.networks)
        add((f"network in {sorted(networks)}", lambda m: m.network in networks))
    if when.direction is not None:
        direction = when.direction
        add((f"direction is {direction.value}", lambda m: m.direction is direction))
    if when.visibility is not None:
        visibility = when.visibility
        add((f"visibility is {visibility.value}", lambda m: m.visibility is visibility))
    if when.addressed_to_us is not None:
        addressed = when.addressed_to_us
        text = "addressed to the company" if addressed else "not addressed to the company"
        add((f"{text} ([company] accounts)", lambda m: m.addressed_to_us is addressed))
    if when.labels_any is not None:
        any_of = frozenset(when.labels_any)
        add((f"a label in {list(when.labels_any)}", lambda m: not any_of.isdisjoint(m.labels)))
    if when.labels_all is not None:
        all_of = tuple(when.labels_all)
        add((f"every label of {list(all_of)}", lambda m: all(x in m.labels for x in all_of)))
    if when.queries_any is not None:
        queries = tuple(when.queries_any)
        add((f"matched a query in {list(queries)}", lambda m: any(q in m.matched_queries for q in queries)))
    if when.languages is not None:
        languages = tuple(when.languages)
        add((f"language in {list(languages)}", lambda m: _language_matches(languages, m.language)))
    if when.min_followers is not None:
        floor = when.min_followers
        add((f"author has >= {floor} followers", lambda m: (m.author.followers or 0) >= floor))
    if when.sentiment_below is not None:
        below = when.sentiment_below
        add((f"sentiment < {below}", lambda m: m.sentiment is not None and m.sentiment.score < below))
    if when.sentiment_above is not None:
        above = when.sentiment_above
        add((f"sentiment > {above}", lambda m: m.sentiment is not None and m.sentiment.score > above))
    if when.business_hours is not None:
        if hours is None:
            raise ValueError("when.business_hours needs [routing.business_hours]")
        inside, known = when.business_hours, hours
        add(
            (
                f"{'within' if inside else 'outside'} business hours ({known.text})",
                lambda m: known.contains(m.created_at) is inside,
            ),
        )
    if when.keywords_any is not None:
        keywords = tuple(k.lower() for k in when.keywords_any)
        add((f"text contains one of {list(keywords)}", lambda m: any(k in m.text.lower() for k in keywords)))
    return checks


class CompiledRule:
    """A rule with its checks compiled and its actions already named after it."""

    __slots__ = ("actions", "checks", "continue_", "name", "tests")

    def __init__(self, rule: RoutingRule, hours: Hours | None = None) -> None:
        self.name = rule.name
        self.checks = compile_checks(rule.when, hours)
        self.tests = tuple(check for _, check in self.checks)  # what matches() runs: no pairs to unpack
        self.actions = [a.model_copy(update={"rule": rule.name}) for a in rule.actions]
        self.continue_ = rule.continue_

    def matches(self, message: Message) -> bool:
        for test in self.tests:  # noqa: SIM110 - a loop: all() over a generator costs twice as much here
            if not test(message):
                return False
        return True


def compile_rules(rules: list[RoutingRule], business_hours: BusinessHours | None = None) -> list[CompiledRule]:
    hours = Hours(business_hours) if business_hours is not None else None
    return [CompiledRule(r, hours) for r in rules]


def route(rules: list[CompiledRule], message: Message) -> list[Action]:
    """First matching rule wins; a rule with ``continue`` lets the next ones add actions."""
    actions: list[Action] = []
    for rule in rules:
        if rule.matches(message):
            if not rule.continue_ and not actions:
                return list(rule.actions)  # the usual case: one rule decides
            actions += rule.actions
            if not rule.continue_:
                break
    return actions


@dataclass
class RuleVerdict:
    rule: str
    fired: bool
    reached: bool  # False: an earlier rule fired without ``continue``
    conditions: list[tuple[str, bool]]


def explain(rules: list[CompiledRule], message: Message) -> list[RuleVerdict]:
    """Every rule's verdict on ``message``, each condition with its outcome (for ``scrm rules test``)."""
    verdicts: list[RuleVerdict] = []
    reached = True
    for rule in rules:
        conditions = [(text, check(message)) for text, check in rule.checks]
        fired = reached and all(ok for _, ok in conditions)
        verdicts.append(RuleVerdict(rule.name, fired, reached, conditions))
        if fired and not rule.continue_:
            reached = False
    return verdicts


def rule_warnings(
    rules: Sequence[RoutingRule], query_names: Sequence[str], *, company_accounts: bool = True
) -> list[str]:
    """Rules that can never fire, and why. ``scrm config check`` prints these.

    :param company_accounts: whether ``[company] accounts`` lists any (``when.addressed_to_us`` needs them).
    """
    warnings: list[str] = []
    seen_queries = set(query_names)
    catch_all: str | None = None
    earlier: dict[str, str] = {}
    for i, rule in enumerate(rules):
        where = f"routing.rules[{i}] ({rule.name!r})"
        when = rule.when
        if catch_all is not None:
            warnings.append(f"{where} can never fire: rule {catch_all!r} before it matches everything")
            continue
        conditions = when.model_dump(exclude_none=True)
        shape = repr(sorted(conditions.items()))
        if shape in earlier:
            warnings.append(f"{where} can never fire: rule {earlier[shape]!r} has the same conditions and stops")
        if when.queries_any is not None:
            unknown = [q for q in when.queries_any if q not in seen_queries]
            if unknown and len(unknown) == len(when.queries_any):
                warnings.append(f"{where} can never fire: no listening query named {', '.join(map(repr, unknown))}")
            elif unknown:
                warnings.append(f"{where}: no listening query named {', '.join(map(repr, unknown))}")
        if when.addressed_to_us and not company_accounts:
            warnings.append(f"{where}: when.addressed_to_us without [company] accounts: only direct messages count")
        below, above = when.sentiment_below, when.sentiment_above
        if below is not None and above is not None and below <= above:
            warnings.append(f"{where} can never fire: sentiment below {below} and above {above}")
        for value in (when.labels_any, when.queries_any, when.networks, when.keywords_any, when.languages):
            if value == []:
                warnings.append(f"{where} can never fire: an empty list matches nothing")
                break
        if not rule.continue_:
            earlier.setdefault(shape, rule.name)
            if not conditions:
                catch_all = rule.name
    return warnings


def render_draft(template: str, message: Message, subject: str) -> str:
    """A draft_reply template filled in (placeholders were checked when the config loaded)."""
    author = message.author
    return template.format(
        author=author.display_name or author.handle or author.account_id,
        handle=author.handle or author.account_id,
        network=message.network,
        subject=subject,
    )


class Router:
    """One configuration's rules, compiled once; routes each new message."""

    def __init__(self, config: Config) -> None:
        routing = config.routing
        self.rules = compile_rules(DEFAULT_RULES if routing.rules is None else routing.rules, routing.business_hours)
        if routing.rules is not None:
            names = [q.name for q in config.listening.queries]
            for warning in rule_warnings(routing.rules, names, company_accounts=bool(config.company.accounts)):
                log.warning("%s", warning)

    @hookimpl
    def scrm_route_conversation(self, message: Message) -> list[Action]:
        return route(self.rules, message)


@hookimpl
def scrm_register_processors(config: Config, register: Callable[[object], None]) -> None:
    register(Router(config))
