"""warnings(): queries that parse but cannot or probably do not mean what they say."""

from __future__ import annotations

import pytest
from scrm_listening import check_queries, parse, warnings


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("acme AND -acme", "'acme' is required and 'acme' excluded"),
        ("acme NOT acme", "'acme' is required and 'acme' excluded"),
        ('"money back" -back', "'\"money back\"' is required and 'back' excluded"),
        ("refund -refund*", "'refund' is required and 'refund*' excluded"),
        ("refunded* -refund*", "'refunded*' is required and 'refund*' excluded"),
        ('"acme money back" -"money back"', "excluded"),
        ("(acme OR acme) -acme", "excluded"),
        ("acme -(acme OR globex)", "excluded"),
        ("#acme -acme", "'#acme' is required and 'acme' excluded"),  # the tag's word is in the text
        ("(a -a) OR (b -b)", "excluded"),
        ("x (a -a)", "excluded"),
        ("acme NEAR/3 refund -refund", "excluded"),
        ("acme network:x network:reddit", "a message has one network, not both x and reddit"),
        ("acme lang:en lang:fr", "a message has one lang"),
        ("acme author:a author:b", "a message has one author"),
        ("acme lang:en-gb -lang:en", "excluded"),
        ("acme min_followers:500 -min_followers:100", "excluded"),
        ("{ACME} -acme", "excluded"),
        ("colo?r -col*", "excluded"),
        ('"money back"~2 -money', "excluded"),
    ],
)
def test_queries_that_can_never_match(query: str, reason: str) -> None:
    found = warnings(query)
    assert found and found[0].startswith("can never match: ")
    assert reason in found[0]


@pytest.mark.parametrize(
    "query",
    [
        "acme -job",
        "(acme OR globex) -acme",  # globex without acme still matches
        "refund* -refund",  # refunded still matches
        "acme -#acme",
        "acme lang:en lang:en-gb",
        "acme -lang:en-gb lang:en",
        "acme min_followers:100 -min_followers:500",
        '"money back" -"back money"',
    ],
)
def test_satisfiable_queries_get_no_never_match_warning(query: str) -> None:
    assert not any(w.startswith("can never match") for w in warnings(query))


def test_lower_case_operators_are_searched_as_words() -> None:
    assert warnings("acme or globex")[0] == "'or' at column 6 is searched as a word; write OR for the operator"
    assert warnings("acme OR globex") == []


@pytest.mark.parametrize(
    ("query", "warned"),
    [
        ("acme kettle", '"acme kettle"~10'),  # Talkwalker: words without operators are a proximity search
        ("acme kettle broken", '"acme kettle broken"~20'),
        ("BMW", "{BMW}"),  # Talkwalker: capitals without operators are case-sensitive
        ("BMW bike", "{BMW}"),
    ],
)
def test_queries_talkwalker_reads_differently_are_pointed_out(query: str, warned: str) -> None:
    found = warnings(query)
    assert len(found) == 1 and warned in found[0] and "Talkwalker" in found[0]


@pytest.mark.parametrize(
    "query", ["acme", "acme AND kettle", '"acme kettle"', "acme -job", "{BMW}", "acme*", "#acme kettle"]
)
def test_queries_with_operators_get_no_talkwalker_warning(query: str) -> None:
    assert not any("Talkwalker" in w for w in warnings(query))


def test_warnings_accepts_a_parsed_query() -> None:
    assert warnings(parse("acme -acme")) == warnings("acme -acme")


def test_check_queries_reports_errors_and_warnings_per_name() -> None:
    report = check_queries({"ok": "acme", "bad": "acme (", "odd": "acme -acme"})
    assert report["ok"] == (None, [])
    error, _ = report["bad"]
    assert error is not None and error.column == 6
    assert report["odd"][0] is None and report["odd"][1][0].startswith("can never match")
