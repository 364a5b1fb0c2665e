"""Warnings about queries that parse but probably do not mean what their author thinks.

Queries that only exclude are refused by the parser; what is left here is advice:

* a part that can never match (``acme AND -acme``, ``"money back" -back``,
  ``network:x network:reddit``);
* ``and``/``or``/``not``/``near`` in lower case, searched as words;
* a query without any operator, which Talkwalker reads differently: several words as a
  proximity search (``cat dog`` as ``"cat dog"~10``), words in capitals case-sensitively.
"""

from __future__ import annotations

from .lexer import Kind, lex
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
    render,
    walk,
)
from .parser import parse
from .text import TAG_MARKS, tag_words

_LOWER_OPERATORS = frozenset({"and", "or", "not", "near"})
_TALKWALKER = "developer.talkwalker.com/docs/query-syntax/special-transformations"


def warnings(query: Query | str) -> list[str]:
    """Advice about a query, most serious first; empty when there is nothing to say."""
    parsed = parse(query) if isinstance(query, str) else query
    found: list[str] = []
    reason = _never(parsed.root)
    if reason:
        found.append(f"can never match: {reason}")
    found += [
        f"'{node.token}' at column {node.column} is searched as a word; write {node.token.upper()} for the operator"
        for node in walk(parsed.root)
        if isinstance(node, Term) and node.token in _LOWER_OPERATORS
    ]
    found += _read_differently_by_talkwalker(parsed.text)
    return found


def _read_differently_by_talkwalker(text: str) -> list[str]:
    """Talkwalker's special reading of a query with no operator at all (scrm reads it as Brandwatch does)."""
    lexemes = lex(text)[:-1]
    if any(lexeme.kind is not Kind.WORD or any(c in lexeme.text for c in "*?:") for lexeme in lexemes):
        return []
    found = []
    capitals = [w.text for w in lexemes if w.text.isupper() and sum(c.isalpha() for c in w.text) >= 2]
    simple = all(not any(c in w.text for c in "#@$+-&") for w in lexemes)
    if capitals:
        found.append(
            f"{capitals[0]} is matched in any case; Talkwalker reads capitals in a query without operators "
            f"as case-sensitive: write {{{capitals[0]}}} for that ({_TALKWALKER})"
        )
    if len(lexemes) > 1 and simple and not capitals:
        words = " ".join(w.text for w in lexemes)
        found.append(
            f"the words are ANDed; Talkwalker reads words without operators as a proximity search "
            f'("{words}"~{10 * (len(lexemes) - 1)}): write AND between them, or the quoted form, to say which '
            f"({_TALKWALKER})"
        )
    return found


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
    if isinstance(need, Cased) and isinstance(ban, Cased):
        return need.tokens == ban.tokens
    if isinstance(ban, Or):
        return any(_implies(need, alternative) for alternative in ban.children)
    if isinstance(ban, And):
        return all(_implies(need, part) for part in ban.children)
    words = _words(need)
    if isinstance(ban, Term):
        return ban.token in words
    if isinstance(ban, Prefix):
        return any(w.startswith(ban.prefix) for w in words) or (
            isinstance(need, Prefix | Wildcard) and need.prefix.startswith(ban.prefix)
        )
    if isinstance(ban, Wildcard):
        return any(ban.regex.match(w) for w in words)
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
    if isinstance(node, Phrase | Proximity):
        return node.tokens
    if isinstance(node, Cased):
        return node.folded
    return ()
