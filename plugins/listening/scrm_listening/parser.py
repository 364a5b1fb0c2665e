"""Recursive-descent parser: lexemes -> :class:`~scrm_listening.nodes.Query`.

Precedence, tightest first (as in Brandwatch, Talkwalker, Sprinklr and X rules)::

    NEAR/n  >  NOT / -  >  AND (or a space)  >  OR

but AND and OR (or NEAR and OR) mixed at one level without brackets are refused: the
tools read ``a OR b AND c`` differently (Lucene-based ones as ``b AND c``), so a query
written for one of them would be read silently as something else. Every construct of
their syntax either parses into what it means there or is refused with its column;
docs/listening.md lists each one.
"""

from __future__ import annotations

import re
import unicodedata

from .errors import QuerySyntaxError
from .fields import FIELD_SHAPE, field
from .lexer import Kind, Lexeme, lex
from .nodes import (
    And,
    Cased,
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
    is_positional,
)
from .text import TAG_MARKS, case_tokens, tokenize

#: Characters before the first wildcard: ``ki*`` as in Brandwatch's own example (one letter
#: would wake a 26th of all words).
MIN_PREFIX = 2
MAX_DISTANCE = 100
_STARTS_OPERAND = frozenset({Kind.LPAREN, Kind.PHRASE, Kind.CASED, Kind.WORD, Kind.NOT, Kind.MINUS})
_NEAR = re.compile(r"^(NEAR|ONEAR)/(\d+)([fF]?)$")
_LOWER_NEAR = re.compile(r"^o?near/\d+f?$", re.IGNORECASE)
_WILDCARDS = "*?"
#: Punctuation that is an operator in some listening tool or search engine: refused outside
#: quotes rather than silently ignored (inside quotes, punctuation separates words).
_REFUSED_CHARACTERS = {
    "+": "'+' is not supported: Brandwatch ignores it, Talkwalker and Lucene give it a meaning; "
    "write the word without it, or {Word} to match its case",
    "!": "'!' is not supported (other tools use it for case-sensitive terms or NOT): write {Word} or -word",
    "^": "'^' (boost) is not supported: a query matches or not, nothing is ranked",
    "[": "'[' ranges are not supported",
    "]": "']' ranges are not supported",
    "|": "'|' is not an operator here: write OR",
    "\\": "'\\' escapes are not supported: quote the text instead",
    "<": "'<' is not supported (only <<<comments>>>)",
    ">": "'>' is not supported (only <<<comments>>>)",
    ",": "',' is not an operator: write OR or AND between terms",
    ";": "';' is not an operator: write OR or AND between terms",
}
_MIXED = "{first} and OR mixed without brackets: listening tools read this differently; add brackets, e.g. {example}"


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
        if extra.kind is Kind.TILDE:
            raise QuerySyntaxError(_stray_tilde(extra), extra.column)
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
        operators: list[Lexeme] = []
        while self.peek().kind is Kind.OR:
            operators.append(self.take())
            self.expect_operand(operators[-1])
            items.append(self.parse_and())
        if len(items) == 1:
            return items[0]
        for item in items:
            if isinstance(item, And) and not item.grouped:
                raise QuerySyntaxError(_MIXED.format(first="AND", example="(a AND b) OR c"), operators[0].column)
            if isinstance(item, Near) and not item.grouped:
                raise QuerySyntaxError(
                    _MIXED.format(first="NEAR", example="(a NEAR/3 b) OR c or a NEAR/3 (b OR c)"), operators[0].column
                )
        return Or(tuple(items), first.column)

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
        left_at = self.peek()
        left = self.parse_primary()
        if self.peek().kind is not Kind.NEAR:
            return left
        op = self.take()
        distance, ordered = _near_operator(op)
        nxt = self.peek()
        if nxt.kind not in (Kind.LPAREN, Kind.PHRASE, Kind.CASED, Kind.WORD):
            raise QuerySyntaxError(f"{op.text} needs a word, phrase or group after it", nxt.column)
        right = self.parse_primary()
        for side, lexeme in ((left, left_at), (right, nxt)):
            if not is_positional(side):
                column = lexeme.column + (1 if lexeme.kind is Kind.LPAREN else 0)
                raise QuerySyntaxError(
                    "NEAR works on words, phrases, wildcards, tags, OR-groups and bracketed NEARs", column
                )
        if self.peek().kind is Kind.NEAR:
            raise QuerySyntaxError(
                "NEAR cannot be chained without brackets: write (a NEAR/2 b) NEAR/3 c", self.peek().column
            )
        return Near(left, right, distance, ordered, op.column)

    def parse_primary(self) -> Node:
        lexeme = self.take()
        kind = lexeme.kind
        if kind is Kind.LPAREN:
            return self.parse_group(lexeme)
        if kind is Kind.PHRASE:
            return self.after_phrase(_phrase(lexeme))
        if kind is Kind.CASED:
            self.refuse_attached_tilde("{…}")
            return _cased(lexeme)
        if kind is Kind.WORD:
            if lexeme.text.endswith(":") and FIELD_SHAPE.match(lexeme.text) and self.peek().attached:
                return self.field_value(lexeme)
            self.refuse_attached_tilde("word")
            return _word(lexeme)
        if kind is Kind.RPAREN:
            raise QuerySyntaxError("unbalanced parenthesis: ')' without '('", lexeme.column)
        if kind is Kind.END:
            raise QuerySyntaxError("the query ends where a term is missing", lexeme.column)
        if kind is Kind.TILDE:
            raise QuerySyntaxError(_stray_tilde(lexeme), lexeme.column)
        name = "NEAR/n" if kind is Kind.NEAR else lexeme.text
        raise QuerySyntaxError(f"{name} needs a term before it", lexeme.column)

    def parse_group(self, opening: Lexeme) -> Node:
        if self.peek().kind is Kind.RPAREN:
            raise QuerySyntaxError("empty parentheses", opening.column)
        if self.peek().kind is Kind.END:
            raise QuerySyntaxError("unbalanced parenthesis: '(' is never closed", opening.column)
        inner = self.parse_or()
        if self.peek().kind is not Kind.RPAREN:
            if self.peek().kind is Kind.TILDE:
                raise QuerySyntaxError(_stray_tilde(self.peek()), self.peek().column)
            raise QuerySyntaxError("unbalanced parenthesis: '(' is never closed", opening.column)
        self.take()
        tilde = self.peek()
        if tilde.kind is Kind.TILDE and tilde.attached:
            return self.forsight_near(inner, tilde)
        if isinstance(inner, And | Or):
            return type(inner)(inner.children, inner.column, grouped=True)
        if isinstance(inner, Near):
            return Near(inner.left, inner.right, inner.distance, inner.ordered, inner.column, grouped=True)
        return inner

    def forsight_near(self, inner: Node, tilde: Lexeme) -> Node:
        """``(A AND B)~n``: Brandwatch (ForSight) for "A within n words of B", either order."""
        self.take()
        slop = tilde.text[1:]
        two = isinstance(inner, And) and len(inner.children) == 2 and all(map(is_positional, inner.children))
        if not two or not slop:
            raise QuerySyntaxError(
                "'~n' after brackets means proximity only as (a AND b)~n, two groups of words; "
                "otherwise write a NEAR/n b",
                tilde.column,
            )
        assert isinstance(inner, And)
        left, right = inner.children
        return Near(left, right, _distance(slop, tilde.column), False, inner.column, grouped=True)

    def after_phrase(self, node: Node) -> Node:
        tilde = self.peek()
        if tilde.kind is not Kind.TILDE or not tilde.attached:
            return node
        self.take()
        if len(tilde.text) == 1:
            raise QuerySyntaxError("'~' after a phrase needs a number of moves, e.g. \"acme support\"~3", tilde.column)
        slop = _distance(tilde.text[1:], tilde.column, "the number of moves after ~")
        if isinstance(node, Phrase):
            return Proximity(node.tokens, slop, node.column)
        return node  # one word: nothing to move

    def refuse_attached_tilde(self, what: str) -> None:
        tilde = self.peek()
        if tilde.kind is Kind.TILDE and tilde.attached:
            if what == "word":
                raise QuerySyntaxError(
                    "fuzzy matching (word~ or word~n) is not supported: tools define it differently; "
                    "list the spellings with OR, or use ? and *",
                    tilde.column,
                )
            raise QuerySyntaxError(f"'~' cannot follow {what}", tilde.column)

    def field_value(self, name: Lexeme) -> Node:
        """``author:(a OR b)`` and ``site:"x.com"``: a field whose value is a group or a quoted string."""
        field_name = name.text[:-1]
        opening = self.take()
        if opening.kind is Kind.PHRASE:
            return field(field_name, opening.text, name.column)
        if opening.kind is not Kind.LPAREN:
            raise QuerySyntaxError(f"{field_name}: needs a value", opening.column)
        values: list[Node] = []
        while True:
            value = self.take()
            if value.kind not in (Kind.WORD, Kind.PHRASE):
                raise QuerySyntaxError(f"{field_name}:( … ) takes values separated by OR", value.column)
            values.append(field(field_name, value.text, value.column - len(field_name) - 1))
            closing = self.take()
            if closing.kind is Kind.RPAREN:
                break
            if closing.kind is not Kind.OR:
                raise QuerySyntaxError(f"{field_name}:( … ) takes values separated by OR", closing.column)
        return values[0] if len(values) == 1 else Or(tuple(values), name.column, grouped=True)


def _stray_tilde(lexeme: Lexeme) -> str:
    return f"'{lexeme.text}' must touch a phrase, as in \"acme support\"~3 (proximity)"


def _near_operator(op: Lexeme) -> tuple[int, bool]:
    found = _NEAR.match(op.text)
    if found is None:
        raise QuerySyntaxError(f"{op.text.split('/')[0]} needs a distance in words, e.g. NEAR/3", op.column)
    kind, digits, forward = found.groups()
    return _distance(digits, op.column), kind == "ONEAR" or bool(forward)


def _distance(digits: str, column: int, what: str = "NEAR distance") -> int:
    if not digits.isdigit() or not digits.isascii():
        raise QuerySyntaxError(f"{what} must be a whole number of words", column)
    distance = int(digits)
    if distance > MAX_DISTANCE:
        raise QuerySyntaxError(f"{what} must be at most {MAX_DISTANCE} words", column)
    return distance


def _phrase(lexeme: Lexeme) -> Node:
    for char in _WILDCARDS:
        if char in lexeme.text:
            where = lexeme.column + 1 + lexeme.text.index(char)
            raise QuerySyntaxError(
                f"'{char}' inside quotes: tools read it as a wildcard or as ignored punctuation; "
                "take the word out of the quotes, or drop the character",
                where,
            )
    tokens = tokenize(lexeme.text)
    if not tokens:
        raise QuerySyntaxError("empty phrase", lexeme.column)
    return Term(tokens[0], lexeme.column) if len(tokens) == 1 else Phrase(tuple(tokens), lexeme.column)


def _cased(lexeme: Lexeme) -> Node:
    """``{ACME}``, ``{British Telecom}`` or ``{"British Telecom"}``: this exact case (Brandwatch)."""
    text, offset = lexeme.text, lexeme.column + 1  # the column of text[0]
    stripped = text.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] == '"':
        offset += text.index('"') + 1
        text = stripped[1:-1]
    refused = "{…} takes words written as they must appear: no operators, wildcards or brackets"
    for i, char in enumerate(text):
        if char in '()*?"':
            raise QuerySyntaxError(refused, offset + i)
    if any(w in ("AND", "OR", "NOT") or w.startswith(("NEAR/", "ONEAR/")) for w in text.split()):
        raise QuerySyntaxError(refused, lexeme.column)
    tokens, folded = case_tokens(text)
    if not tokens:
        raise QuerySyntaxError("nothing to search for inside {…}", lexeme.column)
    if folded != tokenize(text):
        raise QuerySyntaxError("this text splits differently once lower-cased: it cannot match by case", lexeme.column)
    return Cased(tuple(tokens), tuple(folded), lexeme.column)


def _word(lexeme: Lexeme) -> Node:
    text, column = lexeme.text, lexeme.column
    if text == "-":
        raise QuerySyntaxError("'-' must touch the term it excludes, e.g. -job", column)
    if _LOWER_NEAR.match(text):
        raise QuerySyntaxError(f"operators are written in capitals: {text.upper()}", column)
    if text in ("&&", "&"):
        raise QuerySyntaxError(f"'{text}' is not an operator here: write AND", column)
    shape = FIELD_SHAPE.match(text)
    url = shape is not None and shape.group(2).startswith("//")  # a URL is searched as text
    if shape and not url:
        return field(shape.group(1), shape.group(2), column)
    if not url:
        for i, char in enumerate(text):
            if char in _REFUSED_CHARACTERS:
                raise QuerySyntaxError(_REFUSED_CHARACTERS[char], column + i)
        if text.startswith("/"):
            raise QuerySyntaxError("'/n' is not an operator here: write NEAR/n", column)
        if any(char in text for char in _WILDCARDS):
            return _wildcard(text, column)
    tokens = tokenize(text)
    if not tokens:
        raise QuerySyntaxError(f"nothing to search for in {text!r}: no letters, digits or emoji", column)
    return Term(tokens[0], column) if len(tokens) == 1 else Phrase(tuple(tokens), column)


def _wildcard(text: str, column: int) -> Node:
    """``refund*`` (a prefix), ``colo?r``, ``wom?n``, ``cust*er``: ? is one character, * any run."""
    first = min(text.find(c) for c in _WILDCARDS if c in text)
    literal = text[:first].lstrip(TAG_MARKS)
    if not literal:
        raise QuerySyntaxError("a word cannot start with a wildcard: the match has to start somewhere", column + first)
    pattern = unicodedata.normalize("NFC", text).casefold()
    plain = re.sub(r"[*?]", "a", pattern)  # the word with its wildcards filled in must stay one token
    tokens = tokenize(plain)
    if len(tokens) != 1 or tokens[0] != plain:
        raise QuerySyntaxError("a wildcard applies to one plain word or tag, e.g. refund* or colo?r", column)
    if len(literal) < MIN_PREFIX:
        raise QuerySyntaxError(
            f"a wildcard needs at least {MIN_PREFIX} letters before it, e.g. ki* or wom?n", column + first
        )
    if pattern.endswith("*") and not any(c in pattern[:-1] for c in _WILDCARDS):
        return Prefix(pattern[:-1], column)
    return Wildcard(pattern, column)


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
