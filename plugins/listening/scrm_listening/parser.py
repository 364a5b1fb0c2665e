"""Recursive-descent parser: lexemes -> :class:`~scrm_listening.nodes.Query`.

Precedence, tightest first (as in Brandwatch, Talkwalker, Sprinklr and X rules)::

    NEAR/n  >  NOT / -  >  AND (or a space)  >  OR

so ``a OR b c`` is ``a OR (b AND c)`` and ``NOT a OR b`` is ``(NOT a) OR b``.
"""

from __future__ import annotations

import re

from .errors import QuerySyntaxError
from .lexer import Kind, Lexeme, lex
from .nodes import And, Field, MinFollowers, Near, Node, Not, Or, Phrase, Prefix, Query, Term, is_positional
from .text import TAG_MARKS, normalize_handle, normalize_language, tokenize

#: Exact-valued fields and the values they accept (None: any value of that shape).
_FIELD_VALUES: dict[str, tuple[str, ...] | None] = {
    "author": None,
    "lang": None,
    "network": None,
    "is": ("reply", "verified", "direct"),
    "has": ("links", "mentions", "hashtags"),
}
_FIELDS = (*_FIELD_VALUES, "min_followers")
_FIELD_SHAPE = re.compile(r"^([A-Za-z_]+):(.*)$", re.DOTALL)
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{1,8})*$")
_NETWORK = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
MIN_PREFIX = 3
_STARTS_OPERAND = frozenset({Kind.LPAREN, Kind.PHRASE, Kind.WORD, Kind.NOT, Kind.MINUS})


def parse(text: str) -> Query:
    """Parse a listening query; raises :class:`QuerySyntaxError` pointing at the column."""
    try:
        root = _Parser(lex(text)).parse()
        _refuse_negative_only(root)
    except QuerySyntaxError as exc:
        raise exc.with_query(text) from None
    return Query(text, root)


class _Parser:
    def __init__(self, lexemes: list[Lexeme]) -> None:
        self.lexemes = lexemes
        self.at = 0

    def peek(self) -> Lexeme:
        return self.lexemes[self.at]

    def take(self) -> Lexeme:
        lexeme = self.lexemes[self.at]
        self.at += 1
        return lexeme

    def parse(self) -> Node:
        if self.peek().kind is Kind.END:
            raise QuerySyntaxError("empty query", 1)
        node = self.parse_or()
        extra = self.peek()
        if extra.kind is Kind.RPAREN:
            raise QuerySyntaxError("unbalanced parenthesis: ')' without '('", extra.column)
        if extra.kind is not Kind.END:  # e.g. a NEAR left after a complete NEAR
            raise QuerySyntaxError(f"unexpected {extra.text!r}", extra.column)
        return node

    def expect_operand(self, after: Lexeme) -> None:
        nxt = self.peek()
        if nxt.kind not in _STARTS_OPERAND:
            where = "the end of the query" if nxt.kind is Kind.END else repr(nxt.text)
            raise QuerySyntaxError(f"{after.text} needs a term after it, found {where}", nxt.column)

    def parse_or(self) -> Node:
        first = self.peek()
        items = [self.parse_and()]
        while self.peek().kind is Kind.OR:
            self.expect_operand(self.take())
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else Or(tuple(items), first.column)

    def parse_and(self) -> Node:
        first = self.peek()
        items = [self.parse_unary()]
        while True:
            nxt = self.peek()
            if nxt.kind is Kind.AND:
                self.expect_operand(self.take())
            elif nxt.kind not in _STARTS_OPERAND:
                break
            items.append(self.parse_unary())
        return items[0] if len(items) == 1 else And(tuple(items), first.column)

    def parse_unary(self) -> Node:
        nxt = self.peek()
        if nxt.kind in (Kind.NOT, Kind.MINUS):
            self.take()
            if nxt.kind is Kind.NOT:
                self.expect_operand(nxt)
            return Not(self.parse_unary(), nxt.column)
        return self.parse_near()

    def parse_near(self) -> Node:
        left = self.parse_primary()
        if self.peek().kind is not Kind.NEAR:
            return left
        op = self.take()
        distance = _near_distance(op)
        nxt = self.peek()
        if nxt.kind not in (Kind.LPAREN, Kind.PHRASE, Kind.WORD):
            raise QuerySyntaxError(f"{op.text} needs a word, phrase or group after it", nxt.column)
        right = self.parse_primary()
        for side, column in ((left, self.column_of(left, op)), (right, nxt.column)):
            if not is_positional(side):
                raise QuerySyntaxError("NEAR works on words, phrases, wildcards, tags and OR-groups of them", column)
        if self.peek().kind is Kind.NEAR:
            raise QuerySyntaxError("NEAR cannot be chained; combine two NEARs with AND", self.peek().column)
        return Near(left, right, distance, op.column)

    @staticmethod
    def column_of(node: Node, fallback: Lexeme) -> int:
        return getattr(node, "column", 0) or fallback.column

    def parse_primary(self) -> Node:
        lexeme = self.take()
        kind = lexeme.kind
        if kind is Kind.LPAREN:
            if self.peek().kind is Kind.RPAREN:
                raise QuerySyntaxError("empty parentheses", lexeme.column)
            if self.peek().kind is Kind.END:
                raise QuerySyntaxError("unbalanced parenthesis: '(' is never closed", lexeme.column)
            inner = self.parse_or()
            closing = self.peek()
            if closing.kind is not Kind.RPAREN:
                raise QuerySyntaxError("unbalanced parenthesis: '(' is never closed", lexeme.column)
            self.take()
            if isinstance(inner, And | Or):
                return type(inner)(inner.children, inner.column, grouped=True)
            return inner
        if kind is Kind.PHRASE:
            return _phrase(lexeme)
        if kind is Kind.WORD:
            return _word(lexeme)
        if kind is Kind.RPAREN:
            raise QuerySyntaxError("unbalanced parenthesis: ')' without '('", lexeme.column)
        if kind is Kind.END:
            raise QuerySyntaxError("the query ends where a term is missing", lexeme.column)
        name = "NEAR/n" if kind is Kind.NEAR else lexeme.text
        raise QuerySyntaxError(f"{name} needs a term before it", lexeme.column)


def _near_distance(op: Lexeme) -> int:
    digits = op.text[len("NEAR/") :] if op.text.startswith("NEAR/") else ""
    if not digits.isdigit() or not digits.isascii():
        raise QuerySyntaxError("NEAR needs a distance in words, e.g. NEAR/3", op.column)
    distance = int(digits)
    if distance > 100:
        raise QuerySyntaxError("NEAR distance must be at most 100 words", op.column)
    return distance


def _phrase(lexeme: Lexeme) -> Node:
    if "*" in lexeme.text:
        raise QuerySyntaxError("wildcards are not allowed inside a phrase", lexeme.column + 1 + lexeme.text.index("*"))
    tokens = tokenize(lexeme.text)
    if not tokens:
        raise QuerySyntaxError("empty phrase", lexeme.column)
    return Term(tokens[0], lexeme.column) if len(tokens) == 1 else Phrase(tuple(tokens), lexeme.column)


def _word(lexeme: Lexeme) -> Node:
    text, column = lexeme.text, lexeme.column
    if text == "-":
        raise QuerySyntaxError("'-' must touch the term it excludes, e.g. -job", column)
    field = _FIELD_SHAPE.match(text)
    if field and not field.group(2).startswith("//"):  # a URL is searched as text
        return _field(field.group(1), field.group(2), column)
    star = text.find("*")
    if star >= 0:
        return _prefix(text, star, column)
    tokens = tokenize(text)
    if not tokens:
        raise QuerySyntaxError(f"nothing to search for in {text!r}: no letters, digits or emoji", column)
    return Term(tokens[0], column) if len(tokens) == 1 else Phrase(tuple(tokens), column)


def _prefix(text: str, star: int, column: int) -> Node:
    if star != len(text) - 1:
        raise QuerySyntaxError("'*' goes at the end of a word, e.g. refund*", column + star)
    tokens = tokenize(text[:-1])
    if len(tokens) != 1 or tokens[0] != text[:-1].casefold():
        raise QuerySyntaxError("a wildcard applies to one plain word or tag, e.g. refund*", column)
    prefix = tokens[0]
    if len(prefix.lstrip(TAG_MARKS)) < MIN_PREFIX:
        raise QuerySyntaxError(f"a wildcard needs at least {MIN_PREFIX} letters before '*'", column + star)
    return Prefix(prefix, column)


def _field(name: str, value: str, column: int) -> Node:
    value_column = column + len(name) + 1
    if name not in _FIELDS:
        known = ", ".join(f"{f}:" for f in _FIELDS)
        raise QuerySyntaxError(f"unknown field '{name}:' (known: {known}); quote it to search the text", column)
    if not value:
        raise QuerySyntaxError(f"{name}: needs a value", value_column)
    if name == "min_followers":
        if not (value.isdigit() and value.isascii()):
            raise QuerySyntaxError("min_followers: needs a whole number, e.g. min_followers:1000", value_column)
        return MinFollowers(int(value), column)
    allowed = _FIELD_VALUES[name]
    if name == "author":
        value = normalize_handle(value)
    elif name == "lang":
        value = normalize_language(value)
        if not _LANGUAGE.match(value):
            raise QuerySyntaxError("lang: needs a language code, e.g. lang:en or lang:pt-br", value_column)
    else:
        value = value.casefold()
    if allowed is not None and value not in allowed:
        raise QuerySyntaxError(f"{name}: takes {', '.join(allowed)}", value_column)
    if name == "network" and not _NETWORK.match(value):
        raise QuerySyntaxError("network: needs a network name, e.g. network:reddit", value_column)
    if not value:
        raise QuerySyntaxError(f"{name}: needs a value", value_column)
    return Field(name, value, column)


def _refuse_negative_only(root: Node) -> None:
    """Refuse a query (or an OR branch) that only excludes: it would match almost every message."""
    culprit = _unanchored(root)
    if culprit is not None:
        raise QuerySyntaxError(
            "this part only excludes, so the query would match almost every message; "
            "add a term to search for (e.g. acme -job)",
            getattr(culprit, "column", 1) or 1,
        )


def _unanchored(node: Node) -> Node | None:
    """A part of ``node`` that can match with nothing required present, or None."""
    if isinstance(node, Not):
        return node
    if isinstance(node, And):
        culprits = [_unanchored(child) for child in node.children]
        return None if any(c is None for c in culprits) else node
    if isinstance(node, Or):
        for child in node.children:
            culprit = _unanchored(child)
            if culprit is not None:
                return culprit
    return None
