"""Query text -> lexical tokens with their (1-based) columns.

Operators are the upper-case words ``AND``, ``OR``, ``NOT`` and ``NEAR/n``, as in the
listening tools users come from; ``and``/``or``/``not`` in lower case are searched as words.
A ``-`` is a negation only at the start of a word (``-job``); inside one (``e-mail``) it is
part of the word.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .errors import QuerySyntaxError

_CLOSING_QUOTE = {'"': '"', "“": "”", "„": "“"}  # typographic quotes pasted from documents
_BREAKS = frozenset('()"“”„')


class Kind(Enum):
    LPAREN = "("
    RPAREN = ")"
    AND = "AND"
    OR = "OR"
    NOT = "NOT"
    MINUS = "-"
    NEAR = "NEAR"
    PHRASE = "phrase"
    WORD = "word"
    END = "end of query"


@dataclass(frozen=True, slots=True)
class Lexeme:
    kind: Kind
    text: str
    column: int


_OPERATORS = {"AND": Kind.AND, "OR": Kind.OR, "NOT": Kind.NOT}


def lex(query: str) -> list[Lexeme]:
    out: list[Lexeme] = []
    i, n = 0, len(query)
    while i < n:
        char = query[i]
        if char.isspace():
            i += 1
        elif char in "()":
            out.append(Lexeme(Kind.LPAREN if char == "(" else Kind.RPAREN, char, i + 1))
            i += 1
        elif char in _CLOSING_QUOTE:
            end = query.find(_CLOSING_QUOTE[char], i + 1)
            if end < 0:
                raise QuerySyntaxError("unterminated quote", i + 1, query)
            out.append(Lexeme(Kind.PHRASE, query[i + 1 : end], i + 1))
            i = end + 1
        elif char in "”":
            raise QuerySyntaxError("closing quote without an opening one", i + 1, query)
        elif char == "-" and i + 1 < n and not query[i + 1].isspace() and query[i + 1] not in ")-":
            out.append(Lexeme(Kind.MINUS, "-", i + 1))
            i += 1
        else:
            start = i
            while i < n and not query[i].isspace() and query[i] not in _BREAKS:
                i += 1
            word = query[start:i]
            if word in _OPERATORS:
                out.append(Lexeme(_OPERATORS[word], word, start + 1))
            elif word.startswith("NEAR/") or word == "NEAR":
                out.append(Lexeme(Kind.NEAR, word, start + 1))
            else:
                out.append(Lexeme(Kind.WORD, word, start + 1))
    out.append(Lexeme(Kind.END, "", n + 1))
    return out
