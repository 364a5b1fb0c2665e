"""The ``scrm_listening_match`` hook: the config's queries, compiled once per configuration
(a :class:`Listener`, built by ``scrm_register_processors``), matched per message.

A query that does not parse is left out and logged once, when the listener is built;
``scrm_check_config`` refuses it first, with its column, when the config loads
(``scrm config check``, ``scrm run``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from scrm_core import Message, hookimpl

from . import check_queries
from .matcher import Matcher, compile_queries

if TYPE_CHECKING:
    from scrm_core import Config

log = logging.getLogger("scrm.listening")


class Listener:
    """One configuration's queries, compiled once (the engine builds it through
    ``scrm_register_processors``); matches each message against them."""

    def __init__(self, queries: Mapping[str, str]) -> None:
        self.queries = dict(queries)
        self.matcher: Matcher = compile_queries(self.queries, skip_invalid=True)
        for name, error in self.matcher.errors.items():
            log.error("listening query %r is left out: %s", name, error)

    @hookimpl
    def scrm_listening_match(self, message: Message) -> list[str] | None:
        return self.matcher.match(message) or None


@hookimpl
def scrm_register_processors(config: Config, register: Callable[[object], None]) -> None:
    queries = {q.name: q.query for q in config.listening.queries}
    if queries:
        register(Listener(queries))


@hookimpl
def scrm_check_config(config: Config) -> list[str] | None:
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
