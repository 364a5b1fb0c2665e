"""The query syntax tree.

Leaves hold text already normalised the way message text is (NFC, casefolded, split into
tokens by :mod:`scrm_listening.text`), so matching is a set lookup, never a re-parse.
Columns (1-based) point back into the query for errors and warnings; they are left out
of equality so two spellings of the same query compare equal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

#: Prefix of the pseudo-tokens that stand for fields (``network:x``) in a message's token
#: set; no word can start with it, so fields and words share one index.
FIELD_MARK = "\x00"


@dataclass(frozen=True, slots=True)
class Term:
    """One token: a word, or a ``#hashtag``, ``@mention`` or ``$cashtag`` (marker kept)."""

    token: str
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Prefix:
    """A trailing wildcard: ``refund*`` matches any token starting with ``refund``."""

    prefix: str
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Wildcard:
    """A word with ``?`` (exactly one character) and/or ``*`` (any run, even none) inside it.

    ``pattern`` is the normalised word with its wildcards (``colo?r``, ``cust*er``);
    ``prefix`` is the literal text before the first wildcard, which every match starts with.
    (A word whose only wildcard is a trailing ``*`` is a :class:`Prefix`.)
    """

    pattern: str
    column: int = field(default=0, compare=False)

    @property
    def prefix(self) -> str:
        return re.split(r"[?*]", self.pattern, maxsplit=1)[0]

    @cached_property
    def regex(self) -> re.Pattern[str]:
        """Matches a whole token; with MULTILINE, one token per line of :meth:`Doc.joined`."""
        body = "".join("[^\n]" if c == "?" else "[^\n]*" if c == "*" else re.escape(c) for c in self.pattern)
        return re.compile(f"^{body}$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Phrase:
    """Tokens in this order, next to each other: ``"money back"``."""

    tokens: tuple[str, ...]
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Proximity:
    """``"a b c"~n``: the phrase's words with at most ``slop`` moves (Lucene's sloppy phrase).

    A move is one word between two of the phrase's words, or one step of a word away from
    its place: ``"a b"~3`` finds "a x y z b", and "b a" (a swap costs 2 moves).
    """

    tokens: tuple[str, ...]
    slop: int
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Cased:
    """``{ACME}`` / ``{British Telecom}``: tokens (a word or a phrase) written in exactly this case.

    ``tokens`` keep their case (NFC only); ``folded`` is how the case-insensitive index sees them.
    """

    tokens: tuple[str, ...]
    folded: tuple[str, ...]
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Near:
    """Both sides with at most ``distance`` words between them; ``ordered``: left comes first."""

    left: Node
    right: Node
    distance: int
    ordered: bool = False
    column: int = field(default=0, compare=False)
    grouped: bool = field(default=False, compare=False)  # written inside parentheses


@dataclass(frozen=True, slots=True)
class Field:
    """An exact-valued field (``network``, ``lang``, ``author``, ``is``, ``has``), matched as a pseudo-token."""

    name: str
    value: str
    column: int = field(default=0, compare=False)

    @property
    def token(self) -> str:
        return field_token(self.name, self.value)


@dataclass(frozen=True, slots=True)
class MinFollowers:
    """``min_followers:N``: the author has at least N followers (unknown counts as 0)."""

    count: int
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    child: Node
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]
    column: int = field(default=0, compare=False)
    grouped: bool = field(default=False, compare=False)  # written inside parentheses


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]
    column: int = field(default=0, compare=False)
    grouped: bool = field(default=False, compare=False)


Node = Term | Prefix | Wildcard | Phrase | Proximity | Cased | Near | Field | MinFollowers | Not | And | Or
#: Leaves that sit at positions in the text (what NEAR measures distances between).
POSITIONAL_LEAVES = (Term, Prefix, Wildcard, Phrase, Proximity, Cased)


def field_token(name: str, value: str) -> str:
    return f"{FIELD_MARK}{name}:{value}"


def is_positional(node: Node) -> bool:
    """Words, phrases, wildcards, tags, case-sensitive terms, OR-groups and NEARs of them."""
    if isinstance(node, Or):
        return all(is_positional(child) for child in node.children)
    if isinstance(node, Near):
        return True  # the parser only builds a NEAR of positional sides
    return isinstance(node, POSITIONAL_LEAVES)


def _quoted(tokens: tuple[str, ...]) -> str:
    return '"' + " ".join(tokens) + '"'


def render(node: Node) -> str:
    """The query with every group made explicit: shows how precedence was applied."""
    if isinstance(node, Term):
        return node.token
    if isinstance(node, Prefix):
        return f"{node.prefix}*"
    if isinstance(node, Wildcard):
        return node.pattern
    if isinstance(node, Phrase):
        return _quoted(node.tokens)
    if isinstance(node, Proximity):
        return f"{_quoted(node.tokens)}~{node.slop}"
    if isinstance(node, Cased):
        return "{" + (node.tokens[0] if len(node.tokens) == 1 else _quoted(node.tokens)) + "}"
    if isinstance(node, Near):
        op = f"NEAR/{node.distance}{'f' if node.ordered else ''}"
        return f"({render(node.left)} {op} {render(node.right)})"
    if isinstance(node, Field):
        return f"{node.name}:{node.value}"
    if isinstance(node, MinFollowers):
        return f"min_followers:{node.count}"
    if isinstance(node, Not):
        return f"NOT {render(node.child)}"
    joiner = " AND " if isinstance(node, And) else " OR "
    return "(" + joiner.join(render(child) for child in node.children) + ")"


def walk(node: Node) -> list[Node]:
    """``node`` and every node under it, parents first."""
    if isinstance(node, Not):
        return [node, *walk(node.child)]
    if isinstance(node, Near):
        return [node, *walk(node.left), *walk(node.right)]
    if isinstance(node, And | Or):
        return [node, *(n for child in node.children for n in walk(child))]
    return [node]


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: its source text and its syntax tree."""

    text: str
    root: Node

    def __str__(self) -> str:
        return render(self.root)
