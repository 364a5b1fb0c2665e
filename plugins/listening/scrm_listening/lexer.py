"""Query text -> lexical tokens with their (1-based) columns.

Operators are the upper-case words ``AND``, ``OR``, ``NOT``, ``NEAR/n``, ``NEAR/nf`` and
``ONEAR/n``, as in the listening tools users come from; ``and``/``or``/``not`` in lower case
are searched as words. A ``-`` is a negation only at the start of a word (``-job``); inside
one (``e-mail``) it is part of the word. ``"…"`` is a phrase, ``{…}`` a case-sensitive
word or phrase, ``~n`` right after a phrase its proximity, and ``<<<…>>>`` a comment
(Brandwatch's), skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .errors import QuerySyntaxError

_CLOSING_QUOTE = {'"': '"', "“": "”", "„": "“"}  # typographic quotes pasted from documents
_BREAKS = frozenset('()"“”„{}~')
_COMMENT_OPEN, _COMMENT_CLOSE = "<<<", ">>>"


class Kind(Enum):
    LPAREN = "("
    RPAREN = ")"
    AND = "AND"
    OR = "OR"
    NOT = "NOT"
    MINUS = "-"
    NEAR = "NEAR"
    PHRASE = "phrase"
    CASED = "{…}"
    TILDE = "~"
    WORD = "word"
    END = "end of query"


@dataclass(frozen=True, slots=True)
class Lexeme:
    kind: Kind
    text: str
    column: int
    attached: bool = False  # no space before it: ``acme~3``, ``"a b"~3``, ``author:(a OR b)``


_OPERATORS = {"AND": Kind.AND, "OR": Kind.OR, "NOT": Kind.NOT}


def _is_near(word: str) -> bool:
    return word in ("NEAR", "ONEAR") or word.startswith(("NEAR/", "ONEAR/"))


def lex(query: str) -> list[Lexeme]:
    out: list[Lexeme] = []
    i, n = 0, len(query)

    def add(kind: Kind, text: str, start: int) -> None:
        attached = start > 0 and not query[start - 1].isspace()
        out.append(Lexeme(kind, text, start + 1, attached))

    while i < n:
        char = query[i]
        if char.isspace():
            i += 1
        elif query.startswith(_COMMENT_OPEN, i):
            end = query.find(_COMMENT_CLOSE, i + len(_COMMENT_OPEN))
            if end < 0:
                raise QuerySyntaxError("unterminated comment: '<<<' needs a closing '>>>'", i + 1, query)
            i = end + len(_COMMENT_CLOSE)
        elif char in "()":
            add(Kind.LPAREN if char == "(" else Kind.RPAREN, char, i)
            i += 1
        elif char in _CLOSING_QUOTE:
            end = query.find(_CLOSING_QUOTE[char], i + 1)
            if end < 0:
                raise QuerySyntaxError("unterminated quote", i + 1, query)
            add(Kind.PHRASE, query[i + 1 : end], i)
            i = end + 1
        elif char == "”":
            raise QuerySyntaxError("closing quote without an opening one", i + 1, query)
        elif char == "{":
            end = query.find("}", i + 1)
            if end < 0:
                raise QuerySyntaxError("unterminated '{': case-sensitive text needs a closing '}'", i + 1, query)
            inner = query.find("{", i + 1, end)
            if inner >= 0:
                raise QuerySyntaxError("'{' cannot be nested", inner + 1, query)
            add(Kind.CASED, query[i + 1 : end], i)
            i = end + 1
        elif char == "}":
            raise QuerySyntaxError("closing '}' without an opening '{'", i + 1, query)
        elif char == "~":
            start = i
            i += 1
            while i < n and query[i].isdigit():
                i += 1
            add(Kind.TILDE, query[start:i], start)
        elif char == "-" and i + 1 < n and not query[i + 1].isspace() and query[i + 1] not in ")-":
            add(Kind.MINUS, "-", i)
            i += 1
        else:
            start = i
            while i < n and not query[i].isspace() and query[i] not in _BREAKS:
                i += 1
            word = query[start:i]
            if word in _OPERATORS:
                add(_OPERATORS[word], word, start)
            elif _is_near(word):
                add(Kind.NEAR, word, start)
            else:
                add(Kind.WORD, word, start)
    out.append(Lexeme(Kind.END, "", n + 1))
    return out
