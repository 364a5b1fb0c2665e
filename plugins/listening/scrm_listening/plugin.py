"""The ``scrm_listening_match`` hook: the config's queries, compiled once, matched per message.

The engine passes the same ``queries`` dict for every message, so the compiled matcher is
found by identity first (no hashing of 1,000 queries per message) and by content second
(a new dict with the same queries reuses the matcher). A query that does not parse is
left out and logged once; ``scrm_check_config`` refuses it first, with its column, when
the config loads (``scrm config check``, ``scrm run``).
"""

from __future__ import annotations

import logging
from typing import Any

from scrm_core import Message, hookimpl

from . import check_queries
from .matcher import Matcher, compile_queries

log = logging.getLogger("scrm.listening")

_by_identity: dict[int, tuple[dict[str, str], int, Matcher]] = {}
_by_content: dict[tuple[tuple[str, str], ...], Matcher] = {}
_KEEP = 8  # distinct query sets remembered (tests and reloads create a few)


def matcher_for(queries: dict[str, str]) -> Matcher:
    entry = _by_identity.get(id(queries))
    if entry is not None and entry[0] is queries and entry[1] == len(queries):
        return entry[2]
    content = tuple(queries.items())
    matcher = _by_content.get(content)
    if matcher is None:
        matcher = compile_queries(queries, skip_invalid=True)
        for name, error in matcher.errors.items():
            log.error("listening query %r is left out: %s", name, error)
        if len(_by_content) >= _KEEP:
            _by_content.clear()
            _by_identity.clear()
        _by_content[content] = matcher
    _by_identity[id(queries)] = (queries, len(queries), matcher)  # holding the dict keeps its id unique
    return matcher


@hookimpl
def scrm_listening_match(message: Message, queries: dict[str, str]) -> list[str] | None:
    if not queries:
        return None
    return matcher_for(queries).match(message) or None


@hookimpl
def scrm_check_config(config: Any) -> list[str] | None:
    """Queries that do not parse are problems (with the column); warnings are logged."""
    entries = config.listening.queries
    report = check_queries({q.name: q.query for q in entries})
    problems: list[str] = []
    for i, entry in enumerate(entries):
        error, advice = report[entry.name]
        if error is not None:
            problems.append(f"listening.queries[{i}].query ({entry.name!r}): {error}")
        for text in advice:
            log.warning("listening.queries[%d] (%r): %s", i, entry.name, text)
    return problems or None
