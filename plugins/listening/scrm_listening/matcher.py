"""All queries compiled once into one matcher: an inverted index from token to queries.

Per message: tokenize once (:meth:`Doc.scan <scrm_listening.text.Doc.scan>`), look each
distinct token up in the index, and evaluate only the queries one of whose anchors is
present (plus the few with no anchor). A message about the weather wakes none of 1,000
brand queries, and is done after the scan: the rest of its :class:`~scrm_listening.text.Doc`
(words inside tags, fields) is built only for messages with candidate queries.

Each token's hits (exact, plus every wildcard prefix of it; for a tag, those of the words
inside it too) are worked out the first time it is seen and remembered. After that a
message costs two set operations in C (tokens never seen before; tokens with hits) and a
loop over the few tokens that hit something, however many queries and wildcards there are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .compiler import Predicate, anchors, predicate, token_weights
from .errors import QuerySyntaxError
from .nodes import FIELD_MARK, Field, MinFollowers, Query, walk
from .parser import parse
from .prefilter import compile_prefilter
from .text import TAG_MARKS, Doc, normalize_text, tag_words

#: Distinct tokens remembered by the lookup cache before it starts again (bounds memory).
_CACHE_LIMIT = 200_000
#: Distinct texts whose answers are remembered (see Matcher.match); emptied when full.
_ANSWERS_LIMIT = 16_384
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
        weight = token_weights(query.root for _, query in queries)
        for index, (_, query) in enumerate(queries):
            found = anchors(query.root, weight)
            if found is None:
                always.append(index)
                continue
            for token in found.tokens:
                self._exact.setdefault(token, []).append(index)
            for prefix in found.prefixes:
                self._prefix.setdefault(prefix, []).append(index)
        self._always: tuple[int, ...] = tuple(always)
        #: Fields some query is anchored on (``network:reddit`` alone): looked up before the doc is complete.
        self._field_kinds = frozenset(t[1:].split(":", 1)[0] for t in self._exact if t.startswith(FIELD_MARK))
        #: Fields any query tests: the only ones a candidate's doc is completed with.
        self._fields = frozenset(n.name for _, q in queries for n in walk(q.root) if isinstance(n, Field))
        self._prefix_lengths = sorted({len(p) for p in self._prefix})
        # Without queries that need no anchor or anchor on a field, a text holding no anchor
        # as a substring wakes nothing: found in C before tokenizing (most of a firehose).
        text_anchors = [token for token in self._exact if not token.startswith(FIELD_MARK)] + list(self._prefix)
        self._prefilter = None if self._always or self._field_kinds else compile_prefilter(text_anchors)
        # Without a field or a follower count in any query, a message's answer follows from its
        # text and the tags the network gave: retweets, boosts, bots and "thanks!" are
        # matched once (Matcher.match).
        self._text_only = not self._fields and not any(
            isinstance(n, MinFollowers) for _, q in queries for n in walk(q.root)
        )
        self._answers: dict[object, list[str]] = {}
        self._known: set[str] = set()  # tokens already looked up
        self._hits: dict[str, tuple[int, ...]] = {}  # those of them that wake some query
        self._hit_tokens: set[str] = set()

    def __len__(self) -> int:
        return len(self.names)

    def match(self, message: Any) -> list[str]:
        """Names of the queries ``message`` matches, in the order the queries were given."""
        if not self._text_only:
            return self._match(message)
        key: object = message.text
        if message.hashtags or message.mentions:
            key = (key, tuple(message.hashtags), tuple(message.mentions))
        found = self._answers.get(key)
        if found is None:
            found = self._match(message)
            if len(self._answers) >= _ANSWERS_LIMIT:
                self._answers.clear()
            self._answers[key] = found
        return list(found)  # the caller's own list

    def _match(self, message: Any) -> list[str]:
        prefilter = self._prefilter
        if prefilter is None:
            doc = Doc.scan(message)
        else:
            normalized = normalize_text(message.text)
            if prefilter.search(normalized) is None and not (message.hashtags or message.mentions):
                return []
            doc = Doc.scan(message, normalized)
        candidates = self._candidates(doc)
        if not candidates:
            return []
        doc.complete(self._fields)
        predicates, names = self._predicates, self.names
        return [names[i] for i in sorted(candidates) if predicates[i](doc)]

    def match_doc(self, doc: Doc) -> list[str]:
        """:meth:`match` for a message already tokenized."""
        candidates = self._candidates(doc)
        if not candidates:
            return []
        doc.complete()
        predicates, names = self._predicates, self.names
        return [names[i] for i in sorted(candidates) if predicates[i](doc)]

    def candidates(self, message: Any) -> int:
        """How many queries would be evaluated for ``message`` (for tuning and the benchmark)."""
        return len(self._candidates(Doc.scan(message)))

    def _candidates(self, doc: Doc) -> set[int]:
        tokens = doc.tokens
        if not self._known.issuperset(tokens):
            self._learn(tokens)
        candidates = set(self._always) if self._always else set()
        hits = self._hits
        for token in tokens & self._hit_tokens:
            candidates.update(hits[token])
        if self._field_kinds:
            exact = self._exact
            for token in doc.field_tokens(self._field_kinds):
                candidates.update(exact.get(token, _NONE))
        return candidates

    def _learn(self, tokens: set[str]) -> None:
        """Work out the hits of the message's tokens not seen before."""
        unseen = tokens - self._known
        if len(self._known) + len(unseen) > _CACHE_LIMIT:  # bound memory on an endless vocabulary
            self._known.clear()
            self._hits.clear()
            self._hit_tokens.clear()
            unseen = tokens
        for token in unseen:
            hits: set[int] = set()
            # A tag also stands for the words inside it (#acmefail is found by acme*).
            for word in (token, *tag_words(token)) if token[0] in TAG_MARKS else (token,):
                hits.update(self._exact.get(word, _NONE))
                for length in self._prefix_lengths:
                    if length > len(word):
                        break
                    hits.update(self._prefix.get(word[:length], _NONE))
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
