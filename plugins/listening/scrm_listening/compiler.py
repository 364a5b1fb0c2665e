"""One query -> a predicate (a closure, no tree walk) and its anchors (what the index keys on).

Anchors are a necessary condition: a set of tokens and prefixes such that the query can
only match a message containing at least one of them. ``acme AND (refund OR "money
back")`` anchors on ``acme`` alone (one lookup, the rarest-looking side of the AND);
``a OR b`` on ``{a, b}``; a NOT never anchors, and neither does ``min_followers:``.
Queries without anchors are evaluated for every message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .evaluate import cased_spans, has_phrase, near, proximity_spans, spans
from .nodes import (
    FIELD_MARK,
    And,
    Cased,
    Field,
    MinFollowers,
    Near,
    Node,
    Not,
    Or,
    Phrase,
    Prefix,
    Proximity,
    Term,
    Wildcard,
    walk,
)
from .text import Doc

Predicate = Callable[[Doc], bool]

# Guesses of how many messages carry a token; only their order matters (pick the rarest side).
_COMMON = "a an and are at be but by for from have i in is it me my no not of on or so that the this to was we with you"
_COMMON_WORDS = frozenset(_COMMON.split())


def predicate(node: Node) -> Predicate:
    """A closure answering ``evaluate(node, doc)``, with the set work pushed down to C."""
    if isinstance(node, Term | Field):
        token = node.token
        return lambda doc: token in doc.tokens
    if isinstance(node, Prefix):
        return _prefix_predicate(node.prefix)
    if isinstance(node, Wildcard):
        prefix, regex = "\n" + node.prefix, node.regex
        # The literal prefix is one substring search in C; the pattern runs only when it is there.
        return lambda doc: prefix in doc.joined() and regex.search(doc.joined()) is not None
    if isinstance(node, Phrase):
        tokens, needed = node.tokens, frozenset(node.tokens)
        return lambda doc: needed <= doc.tokens and has_phrase(doc, tokens)
    if isinstance(node, Proximity):
        tokens, needed, slop = node.tokens, frozenset(node.tokens), node.slop
        return lambda doc: needed <= doc.tokens and bool(proximity_spans(doc, tokens, slop))
    if isinstance(node, Cased):
        cased, needed = node, frozenset(node.folded)
        return lambda doc: needed <= doc.tokens and bool(cased_spans(doc, cased))
    if isinstance(node, Near):
        left, right, distance, ordered = node.left, node.right, node.distance, node.ordered
        # Both sides present is a set test; positions are built only when it passes.
        both = _all([predicate(left), predicate(right)])
        return lambda doc: both(doc) and near(spans(left, doc), spans(right, doc), distance, ordered)
    if isinstance(node, MinFollowers):
        count = node.count
        return lambda doc: doc.followers >= count
    if isinstance(node, Not):
        inner = predicate(node.child)
        return lambda doc: not inner(doc)
    # Plain tokens of an AND/OR are tested together as one set operation; for an AND, so is
    # every token any part of it requires. What needs positions or patterns runs last.
    rest = [predicate(c) for c in sorted(node.children, key=_cost) if not isinstance(c, Term | Field)]
    if isinstance(node, And):
        needed = required(node)
        return _all(([lambda doc: needed <= doc.tokens] if needed else []) + rest)
    plain = frozenset(c.token for c in node.children if isinstance(c, Term | Field))
    return _any(([lambda doc: not plain.isdisjoint(doc.tokens)] if plain else []) + rest)


def required(node: Node) -> frozenset[str]:
    """Tokens every message ``node`` matches contains (a quick set test before the real one)."""
    if isinstance(node, Term | Field):
        return frozenset({node.token})
    if isinstance(node, Phrase | Proximity):
        return frozenset(node.tokens)
    if isinstance(node, Cased):
        return frozenset(node.folded)
    if isinstance(node, Near):
        return required(node.left) | required(node.right)
    if isinstance(node, And):
        return frozenset().union(*(required(child) for child in node.children))
    if isinstance(node, Or):
        return frozenset.intersection(*(required(child) for child in node.children))
    return frozenset()


def _cost(node: Node) -> int:
    """A rough order of evaluation cost: set lookups, then patterns, then positions."""
    if isinstance(node, Prefix | Wildcard):
        return 1
    if isinstance(node, Phrase):
        return 2
    if isinstance(node, Proximity | Cased):
        return 4
    if isinstance(node, Near):
        return 5 + _cost(node.left) + _cost(node.right)
    if isinstance(node, Not):
        return _cost(node.child)
    if isinstance(node, And | Or):
        return sum(_cost(child) for child in node.children)
    return 0


def _prefix_predicate(prefix: str) -> Predicate:
    marked = "\n" + prefix
    return lambda doc: marked in doc.joined()  # one substring search in C, not a loop over tokens


def _all(parts: list[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda doc: first(doc) and second(doc)
    every = tuple(parts)
    return lambda doc: all(part(doc) for part in every)


def _any(parts: list[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda doc: first(doc) or second(doc)
    some = tuple(parts)
    return lambda doc: any(part(doc) for part in some)


@dataclass(frozen=True, slots=True)
class Anchors:
    tokens: frozenset[str]
    prefixes: frozenset[str]
    cost: float  # a guess of how often a message holds one of them


def _token_cost(token: str) -> float:
    if token.startswith(FIELD_MARK):
        return 0.001 if token.startswith(f"{FIELD_MARK}author:") else 0.3
    if token in _COMMON_WORDS:
        return 0.1
    return 0.002 if len(token) >= 5 else 0.005 if len(token) >= 3 else 0.02


def anchors(node: Node, weight: Callable[[str], float] = _token_cost) -> Anchors | None:
    """What any message this node matches must contain (one of), or None if nothing is required.

    :param weight: a guess of how often a message holds a token (lower: rarer). The matcher
        multiplies the default guess by how many of its queries use the token: a word in
        80 queries (``refund``) is a topic, a word in 3 (``acme``) a brand, which is rarer.
    """
    if isinstance(node, Term | Field):
        return Anchors(frozenset({node.token}), frozenset(), weight(node.token))
    if isinstance(node, Prefix | Wildcard):
        return Anchors(frozenset(), frozenset({node.prefix}), 5 * weight(node.prefix))
    if isinstance(node, Phrase | Proximity | Cased):
        tokens = node.folded if isinstance(node, Cased) else node.tokens
        rarest = min(tokens, key=weight)
        return Anchors(frozenset({rarest}), frozenset(), weight(rarest))
    if isinstance(node, Near):
        return _cheapest([anchors(node.left, weight), anchors(node.right, weight)])
    if isinstance(node, And):
        return _cheapest([anchors(child, weight) for child in node.children])
    if isinstance(node, Or):
        found = [anchors(child, weight) for child in node.children]
        if any(a is None for a in found):
            return None
        return Anchors(
            frozenset().union(*(a.tokens for a in found if a)),
            frozenset().union(*(a.prefixes for a in found if a)),
            sum(a.cost for a in found if a),
        )
    return None  # NOT, min_followers


def token_weights(roots: Iterable[Node]) -> Callable[[str], float]:
    """:func:`anchors`' weight for a set of queries: the default guess times the number of queries using the token."""
    uses: Counter[str] = Counter()
    for root in roots:
        seen: set[str] = set()
        for node in walk(root):
            if isinstance(node, Term | Field):
                seen.add(node.token)
            elif isinstance(node, Prefix | Wildcard):
                seen.add(node.prefix)
            elif isinstance(node, Phrase | Proximity):
                seen.update(node.tokens)
            elif isinstance(node, Cased):
                seen.update(node.folded)
        uses.update(seen)
    return lambda token: _token_cost(token) * max(1, uses[token])


def _cheapest(options: list[Anchors | None]) -> Anchors | None:
    present = [a for a in options if a is not None]
    return min(present, key=lambda a: a.cost) if present else None
