"""All queries compiled once into one matcher: an inverted index from token to queries.

Per message: tokenize once (:class:`~scrm_listening.text.Doc`), look each distinct token up
in the index, and evaluate only the queries one of whose anchors is present (plus the few
with no anchor). A message about the weather wakes none of 1,000 brand queries.

Each token's hits (exact, plus every wildcard prefix of it) are worked out the first time
it is seen and remembered. After that a message costs two set operations in C (tokens
never seen before; tokens with hits) and a loop over the few tokens that hit something,
however many queries and wildcards there are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .compiler import Predicate, anchors, predicate
from .errors import QuerySyntaxError
from .nodes import Query
from .parser import parse
from .text import Doc

#: Distinct tokens remembered by the lookup cache before it starts again (bounds memory).
_CACHE_LIMIT = 200_000
_NONE: tuple[int, ...] = ()


class Matcher:
    """Matches messages against every query at once. Build it with :func:`compile_queries`."""

    def __init__(self, queries: list[tuple[str, Query]], errors: dict[str, QuerySyntaxError] | None = None) -> None:
        self.names: tuple[str, ...] = tuple(name for name, _ in queries)
        self.queries: dict[str, Query] = dict(queries)
        #: Queries left out because they did not parse (only with ``skip_invalid=True``).
        self.errors: dict[str, QuerySyntaxError] = errors or {}
        self._predicates: tuple[Predicate, ...] = tuple(predicate(q.root) for _, q in queries)
        self._exact: dict[str, list[int]] = {}
        self._prefix: dict[str, list[int]] = {}
        always: list[int] = []
        for index, (_, query) in enumerate(queries):
            found = anchors(query.root)
            if found is None:
                always.append(index)
                continue
            for token in found.tokens:
                self._exact.setdefault(token, []).append(index)
            for prefix in found.prefixes:
                self._prefix.setdefault(prefix, []).append(index)
        self._always: tuple[int, ...] = tuple(always)
        self._prefix_lengths = sorted({len(p) for p in self._prefix})
        self._known: set[str] = set()  # tokens already looked up
        self._hits: dict[str, tuple[int, ...]] = {}  # those of them that wake some query
        self._hit_tokens: set[str] = set()

    def __len__(self) -> int:
        return len(self.names)

    def match(self, message: Any) -> list[str]:
        """Names of the queries ``message`` matches, in the order the queries were given."""
        return self.match_doc(Doc(message))

    def match_doc(self, doc: Doc) -> list[str]:
        tokens = doc.tokens
        if not self._known.issuperset(tokens):
            self._learn(tokens)
        candidates = set(self._always) if self._always else set()
        hits = self._hits
        for token in tokens & self._hit_tokens:
            candidates.update(hits[token])
        if not candidates:
            return []
        predicates, names = self._predicates, self.names
        return [names[i] for i in sorted(candidates) if predicates[i](doc)]

    def candidates(self, message: Any) -> int:
        """How many queries would be evaluated for ``message`` (for tuning and the benchmark)."""
        tokens = Doc(message).tokens
        self._learn(tokens)
        found = set(self._always)
        for token in tokens & self._hit_tokens:
            found.update(self._hits[token])
        return len(found)

    def _learn(self, tokens: set[str]) -> None:
        """Work out the hits of the message's tokens not seen before."""
        unseen = tokens - self._known
        if len(self._known) + len(unseen) > _CACHE_LIMIT:  # bound memory on an endless vocabulary
            self._known.clear()
            self._hits.clear()
            self._hit_tokens.clear()
            unseen = tokens
        for token in unseen:
            hits = set(self._exact.get(token, _NONE))
            for length in self._prefix_lengths:
                if length > len(token):
                    break
                hits.update(self._prefix.get(token[:length], _NONE))
            if hits:
                self._hits[token] = tuple(hits)
                self._hit_tokens.add(token)
        self._known.update(unseen)


def compile_queries(
    queries: Mapping[str, str | Query] | Iterable[tuple[str, str | Query]], *, skip_invalid: bool = False
) -> Matcher:
    """Parse and index every query once.

    :param queries: name -> query text (or an already parsed :class:`Query`), in the order
        results should come back.
    :param skip_invalid: leave out queries that do not parse and keep their errors in
        ``matcher.errors`` instead of raising the first one.
    :raises QuerySyntaxError: the first query that does not parse, its name in the message.
    """
    items = queries.items() if isinstance(queries, Mapping) else queries
    parsed: list[tuple[str, Query]] = []
    errors: dict[str, QuerySyntaxError] = {}
    for name, text in items:
        if isinstance(text, Query):
            parsed.append((name, text))
            continue
        try:
            parsed.append((name, parse(text)))
        except QuerySyntaxError as exc:
            named = QuerySyntaxError(f"query {name!r}: {exc.message}", exc.column, exc.query)
            if not skip_invalid:
                raise named from None
            errors[name] = named
    return Matcher(parsed, errors)
