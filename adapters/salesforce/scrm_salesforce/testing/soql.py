"""The small SOQL subset the fake org reads: one object, a field list with one level of parent
relationship, ``WHERE`` with ``= != < <= > >= IN`` joined by ``AND`` / ``OR`` and
parentheses, ``ORDER BY``, ``LIMIT``; anything else is a 400 ``MALFORMED_QUERY``, as
Salesforce answers a query it cannot parse
(developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select.htm).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import malformed

__all__ = ["Soql"]

# ---------------------------------------------------------------- a small SOQL reader

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*')
      | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op><=|>=|!=|=|<|>|\(|\)|,)
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_ORDERING: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_UNESCAPE = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}
_KEYWORDS = {
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "IN",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "LIMIT",
    "NULL",
    "TRUE",
    "FALSE",
}


def _tokens(text: str) -> Iterator[tuple[str, Any]]:
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise malformed(f"unexpected token at position {pos}: {text[pos : pos + 20]!r}")
        pos = match.end()
        kind = match.lastgroup or ""
        raw = match.group(kind)
        if kind == "string":
            yield "value", re.sub(r"\\(.)", lambda m: _unescape(m.group(1)), raw[1:-1])
        elif kind == "datetime":
            yield "value", datetime.fromisoformat(raw.replace("Z", "+00:00"))
        elif kind == "number":
            yield "value", float(raw) if "." in raw else int(raw)
        elif kind == "word" and raw.upper() in ("NULL", "TRUE", "FALSE"):
            yield "value", {"NULL": None, "TRUE": True, "FALSE": False}[raw.upper()]
        elif kind == "word" and raw.upper() in _KEYWORDS:
            yield "keyword", raw.upper()
        else:
            yield kind, raw


def _unescape(char: str) -> str:
    if char not in _UNESCAPE:
        raise malformed(f"invalid escape sequence \\{char}")
    return _UNESCAPE[char]


Condition = tuple[str, Any, Any]  # ("cmp", path, (op, value)) | ("and"/"or", left, right)


@dataclass
class Soql:
    """``SELECT paths FROM X [WHERE ...] [ORDER BY ...] [LIMIT n]``, nothing more."""

    fields: list[str]
    sobject: str
    where: Condition | None
    order_by: list[tuple[str, bool]]
    limit: int | None

    @classmethod
    def parse(cls, text: str) -> Soql:
        tokens = list(_tokens(text))
        reader = _Reader(tokens)
        reader.expect("keyword", "SELECT")
        fields = [reader.expect("word")]
        while reader.accept("op", ","):
            fields.append(reader.expect("word"))
        reader.expect("keyword", "FROM")
        sobject = reader.expect("word")
        where = None
        if reader.accept("keyword", "WHERE"):
            where = reader.disjunction()
        order_by: list[tuple[str, bool]] = []
        if reader.accept("keyword", "ORDER"):
            reader.expect("keyword", "BY")
            while True:
                name = reader.expect("word")
                descending = bool(reader.accept("keyword", "DESC"))
                if not descending:
                    reader.accept("keyword", "ASC")
                order_by.append((name, descending))
                if not reader.accept("op", ","):
                    break
        limit = None
        if reader.accept("keyword", "LIMIT"):
            value = reader.expect("value")
            if not isinstance(value, int) or value < 0:
                raise malformed("LIMIT needs a whole number")
            limit = value
        if not reader.done():
            raise malformed(f"unexpected {reader.peek()[1]!r} (this fake reads simple queries only)")
        return cls(fields, sobject, where, order_by, limit)

    def condition_fields(self) -> list[str]:
        return [path for path, _, _ in self.comparisons()]

    def comparisons(self) -> list[tuple[str, str, Any]]:
        """(field path, operator, literal) of every comparison in WHERE; IN gives a list."""
        out: list[tuple[str, str, Any]] = []

        def walk(node: Condition | None) -> None:
            if node is None:
                return
            if node[0] == "cmp":
                out.append((node[1], *node[2]))
            else:
                walk(node[1])
                walk(node[2])

        walk(self.where)
        return out

    def matches(self, value_of: Callable[[str], Any]) -> bool:
        def test(node: Condition | None) -> bool:
            if node is None:
                return True
            if node[0] == "and":
                return test(node[1]) and test(node[2])
            if node[0] == "or":
                return test(node[1]) or test(node[2])
            op, literal = node[2]
            return _compare(value_of(node[1]), op, literal)

        return test(self.where)


class _Reader:
    def __init__(self, tokens: list[tuple[str, Any]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> tuple[str, Any]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", None)

    def done(self) -> bool:
        return self.pos >= len(self.tokens)

    def accept(self, kind: str, value: Any = None) -> Any:
        token = self.peek()
        if token[0] == kind and (value is None or token[1] == value):
            self.pos += 1
            return token[1] if token[1] is not None else True
        return None

    def expect(self, kind: str, value: Any = None) -> Any:
        token = self.peek()
        if token[0] != kind or (value is not None and token[1] != value):
            raise malformed(f"expected {value or kind}, found {token[1]!r}")
        self.pos += 1
        return token[1]

    def disjunction(self) -> Condition:
        node = self.conjunction()
        while self.accept("keyword", "OR"):
            node = ("or", node, self.conjunction())
        return node

    def conjunction(self) -> Condition:
        node = self.comparison()
        while self.accept("keyword", "AND"):
            node = ("and", node, self.comparison())
        return node

    def comparison(self) -> Condition:
        if self.accept("op", "("):
            node = self.disjunction()
            self.expect("op", ")")
            return node
        path = self.expect("word")
        if self.accept("keyword", "IN"):
            self.expect("op", "(")
            values = [self.expect("value")]
            while self.accept("op", ","):
                values.append(self.expect("value"))
            self.expect("op", ")")
            return ("cmp", path, ("IN", values))
        op = self.expect("op")
        if op not in ("=", "!=", "<", "<=", ">", ">="):
            raise malformed(f"unsupported operator {op!r}")
        return ("cmp", path, (op, self.expect("value")))


def _compare(value: Any, op: str, literal: Any) -> bool:
    if op == "IN":
        return value in literal
    if isinstance(literal, datetime) and isinstance(value, str):
        value = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    if op == "=":
        return bool(value == literal)
    if op == "!=":
        return bool(value != literal)
    if value is None or literal is None:
        return False  # SOQL: null is neither less nor greater than anything
    return bool(_ORDERING[op](value, literal))
