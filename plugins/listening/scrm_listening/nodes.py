"""The query syntax tree.

Leaves hold text already normalised the way message text is (NFC, casefolded, split into
tokens by :mod:`scrm_listening.text`), so matching is a set lookup, never a re-parse.
Columns (1-based) point back into the query for errors and warnings; they are left out
of equality so two spellings of the same query compare equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(frozen=True, slots=True)
class Phrase:
    """Tokens in this order, next to each other: ``"money back"``."""

    tokens: tuple[str, ...]
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Near:
    """Both sides with at most ``distance`` words between them, in either order."""

    left: Node
    right: Node
    distance: int
    column: int = field(default=0, compare=False)


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


Node = Term | Prefix | Phrase | Near | Field | MinFollowers | Not | And | Or
#: What NEAR can measure distances between: things that sit at positions in the text.
Positional = Term | Prefix | Phrase | Or


def field_token(name: str, value: str) -> str:
    return f"{FIELD_MARK}{name}:{value}"


def is_positional(node: Node) -> bool:
    if isinstance(node, Or):
        return all(is_positional(child) for child in node.children)
    return isinstance(node, Term | Prefix | Phrase)


def render(node: Node) -> str:
    """The query with every group made explicit: shows how precedence was applied."""
    if isinstance(node, Term):
        return node.token
    if isinstance(node, Prefix):
        return f"{node.prefix}*"
    if isinstance(node, Phrase):
        return '"' + " ".join(node.tokens) + '"'
    if isinstance(node, Near):
        return f"({render(node.left)} NEAR/{node.distance} {render(node.right)})"
    if isinstance(node, Field):
        return f"{node.name}:{node.value}"
    if isinstance(node, MinFollowers):
        return f"min_followers:{node.count}"
    if isinstance(node, Not):
        return f"NOT {render(node.child)}"
    joiner = " AND " if isinstance(node, And) else " OR "
    return "(" + joiner.join(render(child) for child in node.children) + ")"


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: its source text and its syntax tree."""

    text: str
    root: Node

    def __str__(self) -> str:
        return render(self.root)
