"""The indexed matcher against the reference (walk every query's tree) on random queries and messages.

A seeded generator rather than hypothesis (not a dependency here): the same cases every
run, and a failure prints the query and the message to reproduce it.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from scrm_listening import Doc, Query, QuerySyntaxError, compile_queries, evaluate, parse
from scrm_listening.compiler import anchors, token_weights
from scrm_listening.nodes import FIELD_MARK

from scrm_core import Message

WORDS = [
    "acme",
    "globex",
    "refund",
    "refunded",
    "broken",
    "money",
    "back",
    "bank",
    "banking",
    "love",
    "the",
    "é",
    "nonrefundable",
]
TAGS = ["#acme", "#acmefail", "@acme", "@acme_help", "$acme"]
EMOJI = ["😡", "😍"]
PREFIXES = ["ref*", "bank*", "acm*", "#acm*", "glo*", "ref?nd", "ba?k*", "re*ded", "acme?"]
PHRASES = ['"money back"', '"acme refund"', '"the bank"', '"refund broken"', '"acme refund"~2', '"back money"~3']
CASED = ["{ACME}", "{Acme}", "{BANK}", "{Money Back}"]
FIELDS = [
    "network:x",
    "network:reddit",
    "lang:en",
    "lang:fr",
    "is:reply",
    "is:verified",
    "has:links",
    "has:hashtags",
    "has:mentions",
    "min_followers:100",
    "author:alice",
]


def random_positional(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.45:
        return rng.choice(WORDS + TAGS + EMOJI)
    if kind < 0.6:
        return rng.choice(PREFIXES)
    if kind < 0.75:
        return rng.choice(PHRASES)
    if kind < 0.85:
        return rng.choice(CASED)
    if kind < 0.95:
        return "(" + " OR ".join(rng.sample(WORDS, 2)) + ")"
    return f"({random_near(rng)})"


def random_near(rng: random.Random) -> str:
    operator = rng.choice(["NEAR/{}", "NEAR/{}f", "ONEAR/{}"]).format(rng.randint(0, 3))
    return f"{random_positional(rng)} {operator} {random_positional(rng)}"


def random_query(rng: random.Random, depth: int = 0) -> str:
    kind = rng.random()
    if depth >= 3 or kind < 0.35:
        leaf = rng.random()
        if leaf < 0.6:
            return random_positional(rng)
        if leaf < 0.8:
            return rng.choice(FIELDS)
        return f"({random_near(rng)})"
    if kind < 0.5:
        return rng.choice(["NOT ", "-"]) + "(" + random_query(rng, depth + 1) + ")"
    op = rng.choice([" AND ", " ", " OR "])
    parts = [random_query(rng, depth + 1) for _ in range(rng.randint(2, 3))]
    return f"({op.join(parts)})"  # AND and OR never meet without brackets (refused)


def random_message(rng: random.Random, msg: Callable[..., Message]) -> Message:
    pieces = rng.choices(
        WORDS + TAGS + EMOJI + [",", ".", "!", "https://acme.com/x", "bob@acme.com"], k=rng.randint(0, 12)
    )
    text = " ".join(rng.choice([p, p, p.upper(), p.capitalize()]) for p in pieces)
    return msg(
        text,
        network=rng.choice(["x", "reddit", "mastodon"]),
        language=rng.choice(["en", "en-GB", "fr", None]),
        parent_id=rng.choice([None, "0"]),
        hashtags=rng.choice([[], ["acme"]]),
        author={"handle": rng.choice(["alice", "bob", None]), "followers": rng.choice([None, 5, 100, 5000])},
    )


@pytest.mark.parametrize("seed", range(8))
def test_matcher_agrees_with_the_reference_evaluator(seed: int, msg: Callable[..., Message]) -> None:
    rng = random.Random(seed)
    queries = {}
    while len(queries) < 150:
        text = random_query(rng)
        try:
            queries[f"q{len(queries)}"] = parse(text)
        except QuerySyntaxError as exc:
            assert "only excludes" in exc.message, (text, str(exc))  # the generator writes valid syntax
    matcher = compile_queries(queries)
    # Without the queries that anchor on nothing or on a field, the matcher skips texts
    # holding no anchor before tokenizing them: that path must agree too.
    anchored = dict(queries)
    for _ in range(5):  # anchors depend on the whole set (token weights): drop until none is left
        weight = token_weights(q.root for q in anchored.values())
        anchored = {name: q for name, q in anchored.items() if not _unanchored_or_field(q, weight)}
    prefiltered = compile_queries(anchored)
    assert prefiltered._prefilter is not None and matcher._prefilter is None
    matched = 0
    for _ in range(300):
        message = random_message(rng, msg)
        doc = Doc(message)
        expected = [name for name, query in queries.items() if evaluate(query.root, doc)]
        got = matcher.match(message)
        assert got == expected, f"message {message.text!r}: {[str(queries[n]) for n in set(got) ^ set(expected)]}"
        assert prefiltered.match(message) == [name for name in expected if name in anchored], message.text
        matched += bool(got)
    assert matched > 30  # the generator makes queries that do match


def _unanchored_or_field(query: Query, weight: Callable[[str], float]) -> bool:
    found = anchors(query.root, weight)
    return found is None or any(token.startswith(FIELD_MARK) for token in found.tokens)


def test_rendered_queries_parse_back_to_the_same_tree() -> None:
    rng = random.Random(99)
    for _ in range(300):
        try:
            query = parse(random_query(rng))
        except QuerySyntaxError:
            continue
        assert parse(str(query)).root == query.root, str(query)


def _brute_near_spans(left: list[tuple[int, int]], right: list[tuple[int, int]], distance: int, ordered: bool):  # type: ignore[no-untyped-def]
    found = set()
    for lf, ll in left:
        for rf, rl in right:
            if ll < rf and rf - ll - 1 <= distance:
                found.add((lf, max(ll, rl)))
            elif not ordered and rl < lf and lf - rl - 1 <= distance:
                found.add((min(lf, rf), ll))
    return sorted(found)


@pytest.mark.parametrize("seed", range(4))
def test_near_by_binary_search_agrees_with_every_pair(seed: int) -> None:
    from scrm_listening.evaluate import near, near_spans

    rng = random.Random(seed)
    for _ in range(2000):
        spans = [[(p, p + rng.choice((0, 0, 1, 2))) for p in rng.sample(range(40), rng.randint(0, 6))] for _ in "lr"]
        left, right = spans
        distance, ordered = rng.randint(0, 5), rng.random() < 0.5
        expected = _brute_near_spans(left, right, distance, ordered)
        assert near_spans(left, right, distance, ordered) == expected, (left, right, distance, ordered)
        assert near(left, right, distance, ordered) is bool(expected), (left, right, distance, ordered)


@pytest.mark.parametrize("seed", range(4))
def test_proximity_agrees_with_trying_every_placement(seed: int, msg: Callable[..., Message]) -> None:
    """``"a b c"~n`` (Lucene's sloppy phrase) against a brute force over every placement of the words."""
    import itertools

    from scrm_listening.evaluate import proximity_spans

    rng = random.Random(seed)
    for _ in range(400):
        words = rng.choices(["a", "b", "c", "d"], k=rng.randint(0, 9))
        phrase = tuple(rng.choices(["a", "b", "c"], k=rng.randint(2, 3)))
        slop = rng.randint(0, 4)
        where = [[i for i, w in enumerate(words) if w == token] for token in phrase]
        expected = any(
            len(set(places)) == len(places)
            and max(p - i for i, p in enumerate(places)) - min(p - i for i, p in enumerate(places)) <= slop
            for places in itertools.product(*where)
        )
        got = bool(proximity_spans(Doc(msg(" ".join(words))), phrase, slop))
        assert got is expected, (words, phrase, slop)
