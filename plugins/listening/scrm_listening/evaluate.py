"""The reference semantics: evaluate one syntax tree against one tokenized message.

This is the obvious, slow way (walk every query's tree for every message). The compiled
:class:`~scrm_listening.matcher.Matcher` must give exactly the same answers; the tests
and the benchmark check it. Phrases and NEAR share the position helpers below with it.
"""

from __future__ import annotations

from typing import Any

from .nodes import And, Field, MinFollowers, Near, Node, Not, Or, Phrase, Prefix, Query, Term
from .text import Doc

Span = tuple[int, int]  # first and last position of an occurrence


def evaluate(node: Node, doc: Doc) -> bool:
    if isinstance(node, Term):
        return node.token in doc.tokens
    if isinstance(node, Prefix):
        return doc.has_prefix(node.prefix)
    if isinstance(node, Phrase):
        return has_phrase(doc, node.tokens)
    if isinstance(node, Near):
        return near(spans(node.left, doc), spans(node.right, doc), node.distance)
    if isinstance(node, Field):
        return node.token in doc.tokens
    if isinstance(node, MinFollowers):
        return doc.followers >= node.count
    if isinstance(node, Not):
        return not evaluate(node.child, doc)
    if isinstance(node, And):
        return all(evaluate(child, doc) for child in node.children)
    return any(evaluate(child, doc) for child in node.children)


def matches(query: Query, message: Any) -> bool:
    """Whether one query matches one message (tokenizes the message: use a Matcher for many)."""
    return evaluate(query.root, Doc(message))


def has_phrase(doc: Doc, tokens: tuple[str, ...]) -> bool:
    present = doc.tokens
    if any(token not in present for token in tokens):
        return False  # the cheap set test rules most messages out before positions are built
    return bool(_phrase_spans(doc, tokens))


def _phrase_spans(doc: Doc, tokens: tuple[str, ...]) -> list[Span]:
    positions = doc.positions()
    rest = [positions.get(token, ()) for token in tokens[1:]]
    last = len(tokens) - 1
    return [
        (start, start + last)
        for start in positions.get(tokens[0], ())
        if all(start + offset in following for offset, following in enumerate(rest, 1))
    ]


def spans(node: Node, doc: Doc) -> list[Span]:
    """Where a positional node (word, wildcard, phrase, OR of them) occurs in the text."""
    if isinstance(node, Term):
        return [(p, p) for p in doc.positions().get(node.token, ())]
    if isinstance(node, Prefix):
        return [(p, p) for token, ps in doc.positions().items() if token.startswith(node.prefix) for p in ps]
    if isinstance(node, Phrase):
        return _phrase_spans(doc, node.tokens)
    if isinstance(node, Or):
        return [span for child in node.children for span in spans(child, doc)]
    raise TypeError(f"not positional: {node!r}")  # the parser refuses these


def near(left: list[Span], right: list[Span], distance: int) -> bool:
    """Some occurrence of each, not overlapping, with at most ``distance`` words between."""
    for l_first, l_last in left:
        for r_first, r_last in right:
            if l_last < r_first:
                if r_first - l_last - 1 <= distance:
                    return True
            elif r_last < l_first and l_first - r_last - 1 <= distance:
                return True
    return False
