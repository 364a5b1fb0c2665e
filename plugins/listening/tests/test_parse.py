"""Parsing: every operator, precedence, normalisation, and errors that point at the column."""

from __future__ import annotations

import pytest
from scrm_listening import And, Field, MinFollowers, Near, Not, Or, Phrase, Prefix, QuerySyntaxError, Term, parse


def shape(text: str) -> str:
    """The query with every group explicit: how precedence was applied."""
    return str(parse(text))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("acme", "acme"),
        ("acme refund", "(acme AND refund)"),  # a space is AND
        ("acme AND refund", "(acme AND refund)"),
        ("acme OR globex", "(acme OR globex)"),
        ("acme NOT job", "(acme AND NOT job)"),
        ("acme -job", "(acme AND NOT job)"),
        ("a OR (b c)", "(a OR (b AND c))"),
        ("(a b) OR (c d)", "((a AND b) OR (c AND d))"),
        ("(a OR b) c", "((a OR b) AND c)"),
        ("(NOT a b) OR c", "((NOT a AND b) OR c)"),  # NOT binds tighter than AND
        ("x -(a OR b)", "(x AND NOT (a OR b))"),
        ("a NEAR/3 b c", "((a NEAR/3 b) AND c)"),  # NEAR binds tightest
        ("x -a NEAR/2 b", "(x AND NOT (a NEAR/2 b))"),
        ('(acme OR "acme corp") NEAR/5 (refund* OR broken)', '((acme OR "acme corp") NEAR/5 (refund* OR broken))'),
        ("((a))", "a"),
        ("a NEAR/3f b", "(a NEAR/3f b)"),
        ("a ONEAR/3 b", "(a NEAR/3f b)"),
        ("(a NEAR/2 b) NEAR/3 c", "((a NEAR/2 b) NEAR/3 c)"),
        ("(a NEAR/2 b) OR c", "((a NEAR/2 b) OR c)"),
        ('"a b"~3 c', '("a b"~3 AND c)'),
        ("(a AND (b OR c))~4", "(a NEAR/4 (b OR c))"),  # Brandwatch (ForSight) proximity
        ("{ACME} OR {British Telecom}", '({ACME} OR {"British Telecom"})'),
        ("colo?r cust*er refund*", "(colo?r AND cust*er AND refund*)"),
        ("acme <<<the brand>>> -job", "(acme AND NOT job)"),  # Brandwatch comments
        ("language:EN acme", "(lang:en AND acme)"),
        ("site:twitter.com acme", "(network:x AND acme)"),
        ("author:(alice OR @bob) acme", "((author:alice OR author:bob) AND acme)"),
    ],
)
def test_precedence(query: str, expected: str) -> None:
    assert shape(query) == expected


def test_leaves_are_normalised_like_message_text() -> None:
    assert parse("ACME").root == Term("acme")
    assert parse('"Money  Back"').root == Phrase(("money", "back"))
    assert parse("“money back”").root == Phrase(("money", "back"))  # typographic quotes
    assert parse("don't").root == Phrase(("don", "t"))  # split like the text is
    assert parse("acme.com").root == Phrase(("acme", "com"))
    assert parse('"refund"').root == Term("refund")
    assert parse("Refund*").root == Prefix("refund")
    assert parse("#AcmeFail").root == Term("#acmefail")
    assert parse("@AcmeSupport").root == Term("@acmesupport")
    assert parse("@alice@mastodon.social").root == Term("@alice@mastodon.social")
    assert parse("$ACME").root == Term("$acme")
    assert parse("#acme*").root == Prefix("#acme")
    assert parse("STRASSE").root == parse("straße").root  # casefolded
    assert parse("😡").root == Term("😡")
    assert parse("銀行").root == Phrase(("銀", "行"))  # CJK: one token per character
    assert parse("and").root == Term("and")  # operators are upper case only


def test_fields() -> None:
    assert parse("author:@AcmeSupport x").root == And((Field("author", "acmesupport"), Term("x")))
    assert parse("lang:pt_BR x").root == And((Field("lang", "pt-br"), Term("x")))
    assert parse("network:Reddit x").root == And((Field("network", "reddit"), Term("x")))
    assert parse("is:reply x").root == And((Field("is", "reply"), Term("x")))
    assert parse("has:links x").root == And((Field("has", "links"), Term("x")))
    assert parse("min_followers:1000").root == MinFollowers(1000)
    assert parse("network:reddit").root == Field("network", "reddit")  # a field alone is a query
    assert parse('"re:invent"').root == Phrase(("re", "invent"))  # quoted: searched as text
    assert parse("https://acme.com").root == Phrase(("https", "acme", "com"))  # a URL is text, not a field


def test_structure() -> None:
    assert parse("a NEAR/0 b").root == Near(Term("a"), Term("b"), 0)
    assert parse("a OR b OR c").root == Or((Term("a"), Term("b"), Term("c")))
    assert parse("a NOT b").root == And((Term("a"), Not(Term("b"))))


@pytest.mark.parametrize(
    ("query", "message", "column"),
    [
        ('acme AND (refund OR "money back"', "unbalanced parenthesis: '(' is never closed", 10),
        ("acme AND refund)", "unbalanced parenthesis: ')' without '('", 16),
        ("(acme (refund)", "unbalanced parenthesis: '(' is never closed", 1),
        ("acme ()", "empty parentheses", 6),
        ('acme "money back', "unterminated quote", 6),
        ('acme ""', "empty phrase", 6),
        ("", "empty query", 1),
        ("   ", "empty query", 1),
        ("acme AND", "AND needs a term after it, found the end of the query", 9),
        ("AND acme", "AND needs a term before it", 1),
        ("acme OR", "OR needs a term after it, found the end of the query", 8),
        ("acme OR OR globex", "OR needs a term after it, found 'OR'", 9),
        ("acme AND OR globex", "AND needs a term after it, found 'OR'", 10),
        ("acme NOT", "NOT needs a term after it, found the end of the query", 9),
        ("acme (OR x)", "OR needs a term before it", 7),
        ("acme - job", "'-' must touch the term it excludes, e.g. -job", 6),
        ("acme NEAR/x refund", "NEAR needs a distance in words, e.g. NEAR/3", 6),
        ("acme NEAR refund", "NEAR needs a distance in words, e.g. NEAR/3", 6),
        ("acme NEAR/101 refund", "NEAR distance must be at most 100 words", 6),
        ("acme NEAR/3", "NEAR/3 needs a word, phrase or group after it", 12),
        ("NEAR/3 acme", "NEAR/n needs a term before it", 1),
        ("a NEAR/2 b NEAR/3 c", "NEAR cannot be chained without brackets", 12),
        ("acme NEAR/3 -refund", "NEAR/3 needs a word, phrase or group after it", 13),
        ("acme NEAR/3 lang:en", "NEAR works on words, phrases, wildcards, tags, OR-groups and bracketed NEARs", 13),
        ("(a b) NEAR/3 c", "NEAR works on words, phrases, wildcards, tags, OR-groups and bracketed NEARs", 2),
        ("acme NEAR/3x b", "NEAR needs a distance in words, e.g. NEAR/3", 6),
        ("acme near/3 b", "operators are written in capitals: NEAR/3", 6),
        ("acme *und", "a word cannot start with a wildcard", 6),
        ("acme ?und", "a word cannot start with a wildcard", 6),
        ("acme r*", "a wildcard needs at least 2 letters before it", 7),
        ("acme #a?", "a wildcard needs at least 2 letters before it", 8),
        ("acme don't*", "a wildcard applies to one plain word or tag", 6),
        ('acme "refund* policy"', "'*' inside quotes", 13),
        ('acme "where to buy?"', "'?' inside quotes", 19),
        ("acme ...", "nothing to search for in '...': no letters, digits or emoji", 6),
        ("a OR b c", "AND and OR mixed without brackets", 3),
        ("a b OR c", "AND and OR mixed without brackets", 5),
        ("a OR b AND c", "AND and OR mixed without brackets", 3),
        ("acme -job OR hiring", "AND and OR mixed without brackets", 11),
        ("a NEAR/2 b OR c", "NEAR and OR mixed without brackets", 12),
        ("c OR a NEAR/2 b", "NEAR and OR mixed without brackets", 3),
        ('"acme support"~', "'~' after a phrase needs a number of moves", 15),
        ("(acme refund globex)~3", "'~n' after brackets means proximity only as (a AND b)~n", 21),
        ("acme~2", "fuzzy matching (word~ or word~n) is not supported", 5),
        ("{ACME OR x}", "{…} takes words written as they must appear", 1),
        ("{ACM*}", "{…} takes words written as they must appear", 5),
        ("{ACME", "unterminated '{'", 1),
        ("ACME}", "closing '}' without an opening '{'", 5),
        ("{a {b}}", "'{' cannot be nested", 4),
        ("acme <<<note", "unterminated comment", 6),
        ("+acme", "'+' is not supported", 1),
        ("google+", "'+' is not supported", 7),
        ("!NASA", "'!' is not supported", 1),
        ("acme^2", "'^' (boost) is not supported", 5),
        ("acme | globex", "'|' is not an operator here: write OR", 6),
        ("acme && globex", "'&&' is not an operator here: write AND", 6),
        ("acme, globex", "',' is not an operator", 5),
        ("acme /3 refund", "'/n' is not an operator here: write NEAR/n", 6),
        ("raw:Google", "raw: was retired by Brandwatch", 1),
        ("acme title:kettle", "title: is not supported", 6),
        ("acme country:fr", "location fields are not supported", 6),
        ("acme site:example.com", "site: takes a network's domain", 11),
        ("acme author:(a AND b)", "author:( … ) takes values separated by OR", 16),
        ("acme auther:bob", "unknown field 'auther:'", 6),
        ("acme lang:", "lang: needs a value", 11),
        ("acme lang:english", "lang: needs a language code, e.g. lang:en or lang:pt-br", 11),
        ("acme language:english", "language: needs a language code, e.g. language:en or language:pt-br", 15),
        ("acme is:retweet", "is: takes reply, verified, direct", 9),
        ("acme has:video", "has: takes links, mentions, hashtags", 10),
        ("acme min_followers:lots", "min_followers: needs a whole number, e.g. min_followers:1000", 20),
        ("acme network:!!", "network: needs a network name, e.g. network:reddit", 14),
        ("acme ”", "closing quote without an opening one", 6),
    ],
)
def test_errors_point_at_the_column(query: str, message: str, column: int) -> None:
    with pytest.raises(QuerySyntaxError) as raised:
        parse(query)
    error = raised.value
    assert error.message.startswith(message)
    assert error.column == column
    assert f"at column {column}" in str(error)
    if query.strip():
        query_line, caret_line = str(error).splitlines()[1:]
        assert query_line == f"  {query}"
        assert caret_line == "  " + " " * (column - 1) + "^"


@pytest.mark.parametrize(
    ("query", "column"),
    [("-spam", 1), ("NOT spam", 1), ("NOT (a OR b)", 1), ("acme OR -job", 9), ("-a -b", 1), ("(x OR (-a -b))", 8)],
)
def test_a_query_that_only_excludes_is_refused(query: str, column: int) -> None:
    with pytest.raises(QuerySyntaxError, match="only excludes") as raised:
        parse(query)
    assert raised.value.column == column


@pytest.mark.parametrize("query", ["acme -job", "network:reddit -spam", "min_followers:100 -spam", "(a -b) OR c"])
def test_exclusions_beside_something_required_are_fine(query: str) -> None:
    parsed = parse(query)  # refusing it would raise QuerySyntaxError
    assert parsed.text == query and "NOT" in str(parsed)


def test_the_error_message_reads_well() -> None:
    with pytest.raises(QuerySyntaxError) as raised:
        parse("acme AND (refund")
    assert str(raised.value) == (
        "unbalanced parenthesis: '(' is never closed at column 10\n  acme AND (refund\n           ^"
    )
