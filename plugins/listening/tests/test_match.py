"""Matching: what each operator finds in real message text, through the compiled matcher."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from scrm_listening import compile_queries, matches, parse

from scrm_core import Message

MakeMessage = Callable[..., Message]


def hit(msg: MakeMessage, query: str, text: str, **fields: Any) -> bool:
    message = msg(text, **fields)
    compiled = compile_queries({"q": query}).match(message) == ["q"]
    assert compiled == matches(parse(query), message), "matcher and reference disagree"
    return compiled


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        # words: case-insensitive, whole words only
        ("bank", "My BANK is closed", True),
        ("bank", "online banking is down", False),
        ("bank*", "online banking is down", True),
        ("bank", "bank.", True),
        ("bank", "the bank's app", True),
        ("e-mail", "send me an e-mail", True),
        ("e-mail", "send me an email", False),
        # AND / implicit AND / OR / NOT / -
        ("acme refund", "acme, I want a refund", True),
        ("acme refund", "acme is great", False),
        ("acme AND refund", "refund please acme", True),
        ("acme OR globex", "globex rocks", True),
        ("acme OR globex", "initech rocks", False),
        ("acme -job", "acme broke again", True),
        ("acme -job", "acme job offer", False),
        ("acme NOT job", "acme job offer", False),
        ("acme -(job OR hiring)", "acme is hiring", False),
        # brackets: a OR (b AND c)
        ("a OR (b c)", "a", True),
        ("a OR (b c)", "b", False),
        ("a OR (b c)", "c b", True),
        ("(a OR b) c", "a", False),
        # phrases: order and adjacency
        ('"money back"', "I want my money back!", True),
        ('"money back"', "back my money", False),
        ('"money back"', "money, back", True),  # punctuation is not a word
        ('"money back"', "money to back", False),
        ('"not working"', "it's NOT WORKING", True),
        ("don't", "I don't know", True),
        # NEAR/n: at most n words between, either order
        ("acme NEAR/2 broken", "acme kettle is broken", True),
        ("acme NEAR/1 broken", "acme kettle is broken", False),
        ("acme NEAR/2 broken", "broken kettle from acme", True),
        ("acme NEAR/0 broken", "broken acme", True),
        ("acme NEAR/0 broken", "broken old acme", False),
        ("acme NEAR/3 broken", "acme", False),
        ("acme NEAR/3 acme", "acme", False),  # two occurrences needed
        ("acme NEAR/3 acme", "acme and acme", True),
        ('"acme app" NEAR/1 "keeps crashing"', "the acme app really keeps crashing", True),
        ('"acme app" NEAR/0 "keeps crashing"', "the acme app really keeps crashing", False),
        ("acme NEAR/2 (refund* OR broken)", "acme sent me a refunded order", False),
        ("acme NEAR/2 (refund* OR broken)", "acme finally refunded", True),
        ("#acme NEAR/1 fail", "#Acme epic fail", True),
        # wildcards
        ("refund*", "REFUNDED at last", True),
        ("refund*", "a refund", True),
        ("refund*", "nonrefundable", False),
        ("#acme*", "#AcmeFail again", True),
        ("#acme*", "acmefail again", False),
        # tags
        ("#acme", "love #acme", True),
        ("#acme", "love acme", False),
        ("acme", "love #acme", True),  # a word also finds the tag with that text
        ("@acme", "hey @ACME help", True),
        ("@acme", "mail bob@acme.com", False),  # an e-mail address is not a mention
        ("acme", "mail bob@acme.com", True),
        ("@alice@mastodon.social", "cc @alice@mastodon.social", True),
        ("@alice.bsky.social", "thanks @alice.bsky.social.", True),
        ("$acme", "buying $ACME today", True),
        ("$acme", "acme costs $5", False),
        ("5", "acme costs $5", True),
        # Unicode, emoji, CJK
        ("straße", "STRASSE gesperrt", True),
        ("café", "Cafe\u0301 au lait", True),  # decomposed é is normalised
        ("café", "cafe", False),  # accents matter, as in X rules
        ("\u043c\u043e\u0441\u043a\u0432\u0430", "Hi, \u041c\u041e\u0421\u041a\u0412\u0410!", True),  # Cyrillic
        ("😡", "acme again😡😡", True),
        ("acme 😡", "acme again😡", True),
        ("acme 😡", "acme again 😍", False),
        ("銀行", "私の銀行は閉まっている", True),
        ("銀行", "銀の行", False),
        ("नमस्ते", "नमस्ते दुनिया", True),
    ],
)
def test_text_operators(msg: MakeMessage, query: str, text: str, expected: bool) -> None:
    assert hit(msg, query, text) is expected


def test_fields(msg: MakeMessage) -> None:
    assert hit(msg, "acme author:AcmeFan", "acme", author={"handle": "@acmefan"})
    assert not hit(msg, "acme author:acmefan", "acme", author={"handle": "other"})
    assert hit(msg, "acme lang:en", "acme", language="en-GB")
    assert hit(msg, "acme lang:en-gb", "acme", language="en_GB")
    assert not hit(msg, "acme lang:en-us", "acme", language="en-GB")
    assert not hit(msg, "acme lang:en", "acme")  # unknown language
    assert hit(msg, "acme network:reddit", "acme", network="reddit")
    assert not hit(msg, "acme network:reddit", "acme", network="x")
    assert hit(msg, "acme is:reply", "acme", parent_id="0")
    assert not hit(msg, "acme is:reply", "acme")
    assert hit(msg, "acme is:verified", "acme", author={"verified": True})
    assert hit(msg, "acme is:direct", "acme", visibility="direct")
    assert hit(msg, "acme has:links", "acme https://acme.com/x")
    assert hit(msg, "acme has:links", "acme www.acme.com")
    assert not hit(msg, "acme has:links", "acme dot com")
    assert hit(msg, "acme has:hashtags", "acme #fail")
    assert hit(msg, "acme has:hashtags", "acme", hashtags=["Fail"])
    assert hit(msg, "acme has:mentions", "acme @bob")
    assert not hit(msg, "acme has:mentions", "acme bob@example.com")
    assert hit(msg, "acme min_followers:1000", "acme", author={"followers": 1000})
    assert not hit(msg, "acme min_followers:1000", "acme", author={"followers": 999})
    assert not hit(msg, "acme min_followers:1", "acme")  # unknown count is 0
    assert hit(msg, "network:reddit", "anything at all", network="reddit")  # a field alone
    assert hit(msg, "min_followers:10000", "anything", author={"followers": 20000})  # not indexable: always evaluated


def test_tags_given_by_the_network_count_too(msg: MakeMessage) -> None:
    assert hit(msg, "#acme", "no tags in the text", hashtags=["#Acme"])
    assert hit(msg, "@acme", "no mentions in the text", mentions=["ACME"])
    assert hit(msg, "acme", "no mentions in the text", mentions=["acme"])


def test_names_come_back_in_config_order(msg: MakeMessage) -> None:
    matcher = compile_queries({"z": "acme", "a": "refund*", "m": "globex", "b": '"acme refund"'})
    assert matcher.match(msg("acme refund")) == ["z", "a", "b"]
    assert matcher.match(msg("nothing here")) == []


def test_compile_reports_the_bad_query_by_name() -> None:
    with pytest.raises(Exception, match="query 'broken': unbalanced parenthesis"):
        compile_queries({"fine": "acme", "broken": "(acme"})
    matcher = compile_queries({"fine": "acme", "broken": "(acme"}, skip_invalid=True)
    assert matcher.names == ("fine",)
    assert matcher.errors["broken"].column == 1


def test_already_parsed_queries_are_accepted(msg: MakeMessage) -> None:
    assert compile_queries([("q", parse("acme"))]).match(msg("ACME")) == ["q"]


def test_only_candidate_queries_are_evaluated(msg: MakeMessage) -> None:
    queries = {f"q{i}": f"brand{i} (refund* OR broken)" for i in range(1000)} | {"reddit": "network:reddit"}
    matcher = compile_queries(queries)
    assert matcher.candidates(msg("brand7 refunded me")) == 1
    assert matcher.candidates(msg("the weather is nice")) == 0
    assert matcher.candidates(msg("the weather is nice", network="reddit")) == 1
    assert matcher.match(msg("brand7 refunded me")) == ["q7"]


def test_the_lookup_cache_is_bounded(msg: MakeMessage, monkeypatch: pytest.MonkeyPatch) -> None:
    import scrm_listening.matcher as matcher_module

    monkeypatch.setattr(matcher_module, "_CACHE_LIMIT", 10)
    matcher = compile_queries({"q": "acme"})
    for i in range(50):
        assert matcher.match(msg(f"word{i} other{i} acme")) == ["q"]
    assert len(matcher._known) <= 10


def test_a_repeated_text_is_answered_from_the_cache_unless_the_answer_needs_more_than_the_text(
    msg: MakeMessage, monkeypatch: pytest.MonkeyPatch
) -> None:
    text_only = compile_queries({"refund": "refund*", "tea": "#tea"})
    evaluated: list[str] = []
    match = text_only._match
    monkeypatch.setattr(text_only, "_match", lambda m: evaluated.append(m.text) or match(m))
    first = text_only.match(msg("where is my refund"))
    again = text_only.match(msg("where is my refund", author={"followers": 10_000}, network="reddit"))
    assert first == again == ["refund"] and first is not again and evaluated == ["where is my refund"]
    # Tags the network gave are not in the text: they are part of the key.
    assert text_only.match(msg("where is my refund", hashtags=["tea"])) == ["refund", "tea"]
    assert text_only.match(msg("where is my refund", hashtags=["tea"], author={"handle": "b"})) == ["refund", "tea"]
    assert text_only.match(msg("where is my refund", mentions=["tea"])) == ["refund"]
    assert len(evaluated) == 3
    # A field or a follower count makes the answer depend on more than the text: no cache.
    for queries in ({"big": "refund AND min_followers:1000"}, {"reddit": "refund AND network:reddit"}):
        matcher = compile_queries(queries)
        assert matcher.match(msg("my refund", author={"followers": 5000}, network="reddit")) == list(queries)
        assert matcher.match(msg("my refund", author={"followers": 5}, network="x")) == []
