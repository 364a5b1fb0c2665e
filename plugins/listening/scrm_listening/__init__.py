"""The listening query language: parse, check and compile social-listening queries.

::

    query = parse('acme AND (refund* OR "money back") -job')  # or "acme support"~3, colo?r, {ACME}, a NEAR/3f b
    warnings(query)                       # advice, e.g. parts that can never match
    matcher = compile_queries({"billing": 'acme refund*', "praise": "acme (love OR great)"})
    matcher.match(message)                # ['billing']

The syntax reference is docs/listening.md. The scrm plugin itself is
:mod:`scrm_listening.plugin` (entry point ``listening``).
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import QuerySyntaxError
from .evaluate import evaluate, matches
from .lint import warnings
from .matcher import Matcher, compile_queries
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
from .parser import parse
from .pushdown import to_x_rule
from .text import Doc, tokenize

__version__ = "0.1.0"

__all__ = [
    "And",
    "Cased",
    "Doc",
    "Field",
    "Matcher",
    "MinFollowers",
    "Near",
    "Node",
    "Not",
    "Or",
    "Phrase",
    "Prefix",
    "Proximity",
    "Query",
    "QuerySyntaxError",
    "Term",
    "Wildcard",
    "check_queries",
    "compile_queries",
    "evaluate",
    "matches",
    "parse",
    "to_x_rule",
    "tokenize",
    "warnings",
]


def check_queries(queries: Mapping[str, str]) -> dict[str, tuple[QuerySyntaxError | None, list[str]]]:
    """Every query's error (or None) and warnings, for ``scrm config check``: name -> (error, warnings)."""
    report: dict[str, tuple[QuerySyntaxError | None, list[str]]] = {}
    for name, text in queries.items():
        try:
            report[name] = (None, warnings(parse(text)))
        except QuerySyntaxError as exc:
            report[name] = (exc, [])
    return report
