"""The constructs listening teams paste from Brandwatch, Talkwalker and SentiOne.

Each was read silently as something else before (``"acme support"~3`` as ``"acme support"
AND 3``, ``colo?r`` as the phrase "colo r", ``acme ONEAR/3 kettle`` as a phrase, ``acme~3``
as a phrase, ``{ACME}`` as any-case ``acme``): each now works as the vendor defines it or
is refused with its column.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from scrm_listening import QuerySyntaxError, compile_queries, matches, parse

from scrm_core import Message

MakeMessage = Callable[..., Message]


def hit(msg: MakeMessage, query: str, text: str, **fields: Any) -> bool:
    message = msg(text, **fields)
    compiled = compile_queries({"q": query}).match(message) == ["q"]
    assert compiled == matches(parse(query), message), "matcher and reference disagree"
    return compiled


def refused(query: str) -> QuerySyntaxError:
    with pytest.raises(QuerySyntaxError) as raised:
        parse(query)
    return raised.value


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        # "phrase"~n (Brandwatch, Talkwalker, SentiOne): the phrase made with at most n moves
        ('"acme support"~3', "acme customer support", True),
        ('"acme support"~3', "acme really bad customer support", True),  # 3 words between
        ('"acme support"~3', "acme is a really bad customer support", False),  # 5 between
        ('"acme support"~3', "support from acme", True),  # swapped, one word between: 3 moves
        ('"acme support"~1', "support acme", False),  # swapping two words takes 2 moves
        ('"acme support"~2', "support acme", True),
        ('"acme support"~3', "3 acme support", True),
        ('"acme support"~3', "acme 3", False),  # not "acme support" AND 3
        ('"money back guarantee"~2', "money back, no guarantee", True),
        ('"money back guarantee"~0', "money back no guarantee", False),
        # ? replaces exactly one character (Brandwatch, SentiOne, Talkwalker)
        ("colo?r", "what a colour", True),
        ("colo?r", "what a color", False),  # ? is one character, never none
        ("colo?r", "colo r", False),  # not the phrase "colo r"
        ("wom?n", "women and men", True),
        ("customi?e", "customise it", True),
        ("customi?e", "customize it", True),
        ("bel??ve", "I believe", True),
        ("advertise?", "the advertiser", True),
        ("advertise?", "advertising", False),
        # ONEAR/n and NEAR/nf: in this order, at most n words between
        ("acme ONEAR/3 kettle", "acme sells a kettle", True),
        ("acme ONEAR/3 kettle", "the kettle from acme", False),
        ("acme ONEAR/3 kettle", "acme kettle", True),
        ("acme NEAR/2f kettle", "acme blue steel kettle", True),
        ("acme NEAR/2f kettle", "kettle by acme", False),
        ("acme NEAR/2f kettle", "acme big blue steel kettle", False),
        # {…}: case-sensitive (Brandwatch)
        ("{ACME}", "ACME is down", True),
        ("{ACME}", "Acme is down", False),
        ("{ACME}", "acme is down", False),
        ("{BT} OR {British Telecom}", "British Telecom again", True),
        ("{BT} OR {British Telecom}", "british telecom again", False),
        ("{BT} OR {British Telecom}", "but bt is fine", False),
        ("{iPhone} NEAR/2 broken", "my iPhone is broken", True),
        ("{iPhone} NEAR/2 broken", "my IPHONE is broken", False),
    ],
)
def test_vendor_constructs(msg: MakeMessage, query: str, text: str, expected: bool) -> None:
    assert hit(msg, query, text) is expected


@pytest.mark.parametrize(
    ("query", "column", "message"),
    [
        ("acme~3", 5, "fuzzy"),
        ("acme~", 5, "fuzzy"),
        ("acme ~3", 6, "~"),
        ("(acme OR globex)~3", 17, "~"),
    ],
)
def test_fuzzy_and_stray_tildes_are_refused_with_their_column(query: str, column: int, message: str) -> None:
    error = refused(query)
    assert error.column == column
    assert message in error.message


def test_nested_near(msg: MakeMessage) -> None:
    query = '((Christmas OR Xmas) NEAR/2 (Gift OR Present)) NEAR/2 (wife OR "girl friend")'
    assert hit(msg, query, "a christmas gift for my wife")
    assert hit(msg, query, "my girl friend got an xmas present")
    assert not hit(msg, query, "a christmas gift, then a long story about nothing at all, my wife")
    assert not hit(msg, query, "christmas is coming and I bought a present for my wife")
