"""The subset of X's search query language that :class:`~scrm_x.testing.FakeX` understands.

Flat queries only: terms joined by spaces (AND) and ``OR``, each term optionally negated
with ``-``. Operators: bare words and ``"quoted phrases"`` (case-insensitive, whole
words), ``@user``, ``#tag``, ``from:``, ``to:``, ``conversation_id:``, ``lang:``,
``is:reply``, ``is:quote``, ``is:retweet``. Parentheses are refused (400) rather than
guessed at. Operator semantics follow
https://docs.x.com/x-api/posts/search/integrate/build-a-query (from memory where the page
was not checked: ``to:`` matches replies to that user, ``conversation_id:`` every post of
a thread including its root).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Query", "QueryError"]

_TOKEN = re.compile(r'-?"[^"]*"|\S+')
#: Recent search's query limit for self-serve access (docs.x.com/x-api/posts/search/integrate/overview).
MAX_QUERY_LENGTH = 512


class QueryError(ValueError):
    """A query the fake (or X) would refuse with 400."""


@dataclass(frozen=True)
class _Term:
    negated: bool
    op: str  # "from", "to", "conversation_id", "lang", "is", "@", "#" or "text"
    value: str
    pattern: re.Pattern[str] | None = None

    def __call__(self, tweet: Mapping[str, Any], users: Mapping[str, Mapping[str, Any]]) -> bool:
        return self._test(tweet, users) != self.negated

    def _test(self, t: Mapping[str, Any], users: Mapping[str, Mapping[str, Any]]) -> bool:
        entities = t.get("entities", {})
        match self.op:
            case "from":
                return _is(users, t["author_id"], self.value)
            case "to":
                return t.get("in_reply_to_user_id") is not None and _is(users, t["in_reply_to_user_id"], self.value)
            case "conversation_id":
                return bool(t["conversation_id"] == self.value)
            case "lang":
                return bool(t.get("lang") == self.value)
            case "is":
                return any(r["type"] == self.value for r in t.get("referenced_tweets", []))
            case "@":
                return any(m["username"].lower() == self.value for m in entities.get("mentions", []))
            case "#":
                return any(h["tag"].lower() == self.value for h in entities.get("hashtags", []))
        assert self.pattern is not None
        return self.pattern.search(t["text"]) is not None


class Query:
    """A parsed query: ``Query("kettle OR @brand").matches(tweet, users_by_id)``."""

    def __init__(self, text: str) -> None:
        if not text.strip():
            raise QueryError("query is empty")
        if len(text) > MAX_QUERY_LENGTH:
            raise QueryError(f"query is {len(text)} characters; the limit is {MAX_QUERY_LENGTH}")
        if "(" in text or ")" in text:
            raise QueryError("the fake does not support parentheses in queries")
        self.groups: list[list[_Term]] = [[]]
        for token in _TOKEN.findall(text):
            if token == "OR":  # noqa: S105 - a query keyword, not a password
                self.groups.append([])
            else:
                self.groups[-1].append(_term(token))
        if any(not group for group in self.groups):
            raise QueryError("OR needs a term on both sides")

    def matches(self, tweet: Mapping[str, Any], users: Mapping[str, Mapping[str, Any]]) -> bool:
        return any(all(term(tweet, users) for term in group) for group in self.groups)


def _is(users: Mapping[str, Mapping[str, Any]], user_id: Any, name: str) -> bool:
    """Whether ``user_id`` is the user called ``name`` (a username, or the numeric id itself)."""
    return bool(str(users.get(str(user_id), {}).get("username", "")).lower() == name or str(user_id) == name)


_IS = {"is:reply": "replied_to", "is:quote": "quoted", "is:retweet": "retweeted"}


def _term(token: str) -> _Term:
    negated = token.startswith("-") and len(token) > 1
    body = token[1:] if negated else token
    low = body.lower()
    for op in ("from", "to", "conversation_id", "lang"):
        if low.startswith(op + ":") and len(low) > len(op) + 1:
            value = body[len(op) + 1 :] if op == "conversation_id" else low[len(op) + 1 :].lstrip("@")
            return _Term(negated, op, value)
    if low in _IS:
        return _Term(negated, "is", _IS[low])
    if low[:1] in ("@", "#") and len(low) > 1:
        return _Term(negated, low[0], low[1:])
    phrase = body.strip('"')
    if not phrase:
        raise QueryError(f"empty term {token!r}")
    pattern = re.compile(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", re.IGNORECASE)
    return _Term(negated, "text", phrase, pattern)
