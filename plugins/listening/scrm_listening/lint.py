"""Warnings about queries that parse but probably do not mean what their author thinks.

Queries that only exclude are refused by the parser; what is left here is advice:

* a part that can never match (``acme AND -acme``, ``"money back" -back``,
  ``network:x network:reddit``);
* AND and OR mixed without parentheses (``a b OR c`` is read as ``(a AND b) OR c``);
* ``and``/``or``/``not``/``near`` in lower case, searched as words.
"""

from __future__ import annotations

from .nodes import And, Field, MinFollowers, Near, Node, Not, Or, Phrase, Prefix, Query, Term, render
from .parser import parse
from .text import TAG_MARKS, tag_words

_LOWER_OPERATORS = frozenset({"and", "or", "not", "near"})


def warnings(query: Query | str) -> list[str]:
    """Advice about a query, most serious first; empty when there is nothing to say."""
    parsed = parse(query) if isinstance(query, str) else query
    found: list[str] = []
    reason = _never(parsed.root)
    if reason:
        found.append(f"can never match: {reason}")
    found += _mixed_without_parentheses(parsed.root)
    found += [
        f"'{node.token}' at column {node.column} is searched as a word; write {node.token.upper()} for the operator"
        for node in _walk(parsed.root)
        if isinstance(node, Term) and node.token in _LOWER_OPERATORS
    ]
    return found


def _walk(node: Node) -> list[Node]:
    if isinstance(node, Not):
        return [node, *_walk(node.child)]
    if isinstance(node, Near):
        return [node, *_walk(node.left), *_walk(node.right)]
    if isinstance(node, And | Or):
        return [node, *(n for child in node.children for n in _walk(child))]
    return [node]


def _mixed_without_parentheses(root: Node) -> list[str]:
    return [
        f"AND binds tighter than OR: read as {render(node)}; add parentheses to say so"
        for node in _walk(root)
        if isinstance(node, Or) and any(isinstance(c, And) and not c.grouped for c in node.children)
    ]


def _never(node: Node) -> str | None:
    """Why ``node`` can match no message at all, or None if it can (as far as we can tell)."""
    if isinstance(node, Or):
        reasons = [_never(child) for child in node.children]
        return reasons[0] if all(reasons) else None
    if isinstance(node, Near):
        return _never(node.left) or _never(node.right)
    if not isinstance(node, And):
        return None
    for child in node.children:
        reason = _never(child)
        if reason:
            return reason
    required = [c for c in node.children if not isinstance(c, Not)]
    excluded = [c.child for c in node.children if isinstance(c, Not)]
    for need in required:
        for ban in excluded:
            if _implies(need, ban):
                return f"'{render(need)}' is required and '{render(ban)}' excluded"
    fields = [c for c in required if isinstance(c, Field) and c.name in ("network", "author", "lang")]
    for i, one in enumerate(fields):
        for other in fields[i + 1 :]:
            if one.name == other.name and _conflict(one, other):
                return f"a message has one {one.name}, not both {one.value} and {other.value}"
    return None


def _conflict(one: Field, other: Field) -> bool:
    if one.name == "lang":
        a, b = sorted((one.value, other.value), key=len)
        return not (b == a or b.startswith(f"{a}-"))
    return one.value != other.value


def _implies(need: Node, ban: Node) -> bool:
    """Whether every message matching ``need`` also matches ``ban``."""
    if need == ban:
        return True
    if isinstance(need, And):
        return any(_implies(child, ban) for child in need.children)
    if isinstance(need, Or):
        return all(_implies(child, ban) for child in need.children)
    if isinstance(need, Near):
        return _implies(need.left, ban) or _implies(need.right, ban)
    if isinstance(ban, Or):
        return any(_implies(need, alternative) for alternative in ban.children)
    if isinstance(ban, And):
        return all(_implies(need, part) for part in ban.children)
    words = _words(need)
    if isinstance(ban, Term):
        return ban.token in words
    if isinstance(ban, Prefix):
        return any(w.startswith(ban.prefix) for w in words) or (
            isinstance(need, Prefix) and need.prefix.startswith(ban.prefix)
        )
    if isinstance(ban, Phrase) and isinstance(need, Phrase):
        n = len(ban.tokens)
        return any(need.tokens[i : i + n] == ban.tokens for i in range(len(need.tokens) - n + 1))
    if isinstance(ban, Field) and isinstance(need, Field) and ban.name == need.name == "lang":
        return need.value.startswith(f"{ban.value}-")
    if isinstance(ban, MinFollowers) and isinstance(need, MinFollowers):
        return need.count >= ban.count
    return False


def _words(node: Node) -> tuple[str, ...]:
    """Tokens a message certainly holds when ``node`` matches."""
    if isinstance(node, Term):
        return (node.token, *tag_words(node.token)) if node.token[0] in TAG_MARKS else (node.token,)
    if isinstance(node, Phrase):
        return node.tokens
    return ()
