"""Pushing the part of a query a network can filter down to the network (X filtered-stream rules).

The rule is a *relaxation*: every message the query matches also matches the rule, so
nothing is lost; what X lets through that the query does not want, the core's matcher
drops. What X rules cannot say (wildcards, NEAR, proximity, case, ``min_followers:``,
``network:``) is relaxed or left out of the rule; under a negation, only what X can say exactly is kept (dropping a
negated part widens, never narrows).
"""

from __future__ import annotations

from .nodes import (
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
    Query,
    Term,
    Wildcard,
)

_X_FIELDS = {"is": ("reply", "verified"), "has": ("links", "mentions", "hashtags")}


class _Rule:
    """Rule text and whether it holds an operator X accepts on its own (a keyword, tag or from:)."""

    __slots__ = ("standalone", "text")

    def __init__(self, text: str, standalone: bool) -> None:
        self.text = text
        self.standalone = standalone


def to_x_rule(query: Query) -> str | None:
    """An X (Twitter) filtered-stream rule that lets through at least what ``query`` matches.

    :returns: the rule, or None when X cannot narrow the query at all (e.g. ``network:x
        min_followers:1000``); then the adapter must listen wider and the core filters.
    """
    rule = _relax(query.root)
    return rule.text if rule is not None and rule.standalone else None


def _exact(node: Node) -> _Rule | None:
    """``node`` as an X rule that matches exactly the same messages, or None."""
    if isinstance(node, Term):
        return _Rule(node.token, True)
    if isinstance(node, Phrase):
        return _Rule('"' + " ".join(node.tokens) + '"', True)
    if isinstance(node, Field):
        if node.name == "author":
            return _Rule(f"from:{node.value}", True)
        if node.name == "lang" and "-" not in node.value:
            return _Rule(f"lang:{node.value}", False)
        if node.value in _X_FIELDS.get(node.name, ()):
            return _Rule(f"{node.name}:{node.value}", False)
    return None


def _relax(node: Node) -> _Rule | None:
    """A rule matching at least what ``node`` matches; None means "no constraint"."""
    exact = _exact(node)
    if exact is not None:
        return exact
    if isinstance(node, Field) and node.name == "lang":  # lang:pt-br -> lang:pt (wider)
        return _Rule(f"lang:{node.value.split('-', 1)[0]}", False)
    if isinstance(node, Prefix | Wildcard | MinFollowers | Field):
        return None
    if isinstance(node, Cased):  # X matches any case: the same words are wider
        return _exact(Term(node.folded[0]) if len(node.folded) == 1 else Phrase(node.folded))
    if isinstance(node, Proximity):  # X's "a b"~N counts differently: all the words, anywhere, is wider
        return _relax(And(tuple(Term(token) for token in node.tokens)))
    if isinstance(node, Near):
        return _relax(And((node.left, node.right)))
    if isinstance(node, Not):
        alternatives = node.child.children if isinstance(node.child, Or) else (node.child,)
        parts = [_exact(alternative) for alternative in alternatives]
        if any(p is None for p in parts):
            return None
        return _Rule(" ".join(f"-{p.text}" for p in parts if p), False)  # X negates atoms, not groups
    children = node.children if isinstance(node, And | Or) else ()
    relaxed = [_relax(child) for child in children]
    if isinstance(node, Or):
        if any(r is None for r in relaxed):
            return None
        kept = [r for r in relaxed if r]
        return _Rule("(" + " OR ".join(r.text for r in kept) + ")", all(r.standalone for r in kept))
    kept = [r for r in relaxed if r]
    if not any(r.standalone for r in kept):
        kept = [r for r in kept if not r.text.startswith("-")]  # X refuses a rule of negations only
    if not kept:
        return None
    text = kept[0].text if len(kept) == 1 else "(" + " ".join(r.text for r in kept) + ")"
    return _Rule(text, any(r.standalone for r in kept))
