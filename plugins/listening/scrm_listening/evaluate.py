"""The reference semantics: evaluate one syntax tree against one tokenized message.

This is the obvious, slow way (walk every query's tree for every message). The compiled
:class:`~scrm_listening.matcher.Matcher` must give exactly the same answers; the tests
and the benchmark check it. Phrases, proximity and NEAR share the position helpers
below with it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Any

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
from .text import Doc

Span = tuple[int, int]  # first and last position of an occurrence


def evaluate(node: Node, doc: Doc) -> bool:
    if isinstance(node, Term | Field):
        return node.token in doc.tokens
    if isinstance(node, Prefix):
        return doc.has_prefix(node.prefix)
    if isinstance(node, Wildcard):
        return any(node.regex.match(token) for token in doc.tokens)
    if isinstance(node, Phrase):
        return has_phrase(doc, node.tokens)
    if isinstance(node, Proximity):
        return bool(proximity_spans(doc, node.tokens, node.slop))
    if isinstance(node, Cased):
        return bool(cased_spans(doc, node))
    if isinstance(node, Near):
        return near(spans(node.left, doc), spans(node.right, doc), node.distance, node.ordered)
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
    return bool(_consecutive(doc.positions(), tokens))


def _consecutive(positions: dict[str, list[int]], tokens: tuple[str, ...]) -> list[Span]:
    rest = [positions.get(token, ()) for token in tokens[1:]]
    last = len(tokens) - 1
    return [
        (start, start + last)
        for start in positions.get(tokens[0], ())
        if all(start + offset in following for offset, following in enumerate(rest, 1))
    ]


def cased_spans(doc: Doc, node: Cased) -> list[Span]:
    present = doc.tokens
    if any(token not in present for token in node.folded):
        return []  # not even in any case
    text = doc.nfc_text()
    if any(token not in text for token in node.tokens):
        return []  # not written in this case anywhere (one substring search each, before positions)
    return _consecutive(doc.cased_positions(), node.tokens)


def proximity_spans(doc: Doc, tokens: tuple[str, ...], slop: int) -> list[Span]:
    """Where ``"tokens"~slop`` matches, as Lucene's sloppy phrase defines it.

    Word ``i`` of the phrase at position ``p`` is ``p - i`` off its place; the phrase matches
    where the offsets of one occurrence of each word (distinct positions for a repeated
    word) differ by at most ``slop``. For each smallest offset that matches, the span of
    the earliest such occurrences is returned.
    """
    present = doc.tokens
    if any(token not in present for token in tokens):
        return []
    positions = doc.positions()
    lists = [sorted(positions.get(token, ())) for token in tokens]
    starts = sorted({p - i for i, ps in enumerate(lists) for p in ps})
    found: list[Span] = []
    for low in starts:  # the smallest offset of the match
        chosen: dict[str, set[int]] = {}
        picks: list[int] = []
        for i, (token, ps) in enumerate(zip(tokens, lists, strict=True)):
            used = chosen.setdefault(token, set())
            at = bisect_left(ps, low + i)
            while at < len(ps) and ps[at] in used:
                at += 1
            if at == len(ps) or ps[at] - i > low + slop:
                break
            used.add(ps[at])
            picks.append(ps[at])
        else:
            found.append((min(picks), max(picks)))
    return found


def spans(node: Node, doc: Doc) -> list[Span]:
    """Where a positional node (word, wildcard, phrase, OR or NEAR of them) occurs in the text."""
    if isinstance(node, Term):
        return [(p, p) for p in doc.positions().get(node.token, ())]
    if isinstance(node, Prefix):
        return [(p, p) for token, ps in doc.positions().items() if token.startswith(node.prefix) for p in ps]
    if isinstance(node, Wildcard):
        return [(p, p) for token, ps in doc.positions().items() if node.regex.match(token) for p in ps]
    if isinstance(node, Phrase):
        return _consecutive(doc.positions(), node.tokens)
    if isinstance(node, Proximity):
        return proximity_spans(doc, node.tokens, node.slop)
    if isinstance(node, Cased):
        return cased_spans(doc, node)
    if isinstance(node, Or):
        return [span for child in node.children for span in spans(child, doc)]
    if isinstance(node, Near):
        return near_spans(spans(node.left, doc), spans(node.right, doc), node.distance, node.ordered)
    raise TypeError(f"not positional: {node!r}")  # the parser refuses these


def near(left: list[Span], right: list[Span], distance: int, ordered: bool = False) -> bool:
    """Some occurrence of each, not overlapping, with at most ``distance`` words between.

    Binary search over the right side's starts and ends: a long post with a word hundreds
    of times costs n log n, not n².
    """
    if not left or not right:
        return False
    starts = sorted(first for first, _ in right)
    ends = sorted(last for _, last in right)
    for first, last in left:
        after = bisect_left(starts, last + 1)  # right side starting after this one ends
        if after < len(starts) and starts[after] <= last + 1 + distance:
            return True
        if not ordered:
            before = bisect_right(ends, first - 1)  # right side ending before this one starts
            if before and ends[before - 1] >= first - 1 - distance:
                return True
    return False


def near_spans(left: list[Span], right: list[Span], distance: int, ordered: bool = False) -> list[Span]:
    """The spans a NEAR covers (from the first word of one side to the last of the other): for nesting.

    Only the right-side occurrences within ``distance`` of each left one are visited.
    """
    by_start = sorted(right)
    starts = [first for first, _ in by_start]
    by_end = sorted(right, key=lambda span: span[1])
    ends = [last for _, last in by_end]
    found: set[Span] = set()
    for first, last in left:
        for _, other_last in by_start[bisect_left(starts, last + 1) : bisect_right(starts, last + 1 + distance)]:
            found.add((first, max(last, other_last)))
        if not ordered:
            for other_first, _ in by_end[bisect_left(ends, first - 1 - distance) : bisect_right(ends, first - 1)]:
                found.add((min(first, other_first), last))
    return sorted(found)
