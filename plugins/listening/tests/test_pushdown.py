"""to_x_rule: a filtered-stream rule that lets through at least what the query matches."""

from __future__ import annotations

import pytest
from scrm_listening import parse, to_x_rule


@pytest.mark.parametrize(
    ("query", "rule"),
    [
        ("acme", "acme"),
        ("acme refund", "(acme refund)"),
        ('acme OR "money back"', '(acme OR "money back")'),
        ("acme -job -hiring", "(acme -job -hiring)"),
        ("acme -(job OR hiring)", "(acme -job -hiring)"),
        ("#acme @acmehelp $acme", "(#acme @acmehelp $acme)"),
        ("acme author:AcmeHelp", "(acme from:acmehelp)"),
        ("acme lang:pt-br is:reply has:links", "(acme lang:pt is:reply has:links)"),
        ("acme refund*", "acme"),  # X has no wildcards: dropped, the core filters
        ("acme NEAR/3 broken", "(acme broken)"),  # NEAR relaxed to AND
        ("acme network:reddit min_followers:10", "acme"),
        ("acme -refund*", "acme"),  # a negation X cannot say exactly is dropped (wider, never narrower)
        ("(acme refund*) OR globex", "(acme OR globex)"),
    ],
)
def test_rules(query: str, rule: str) -> None:
    assert to_x_rule(parse(query)) == rule


@pytest.mark.parametrize(
    "query", ["refund*", "network:x", "min_followers:1000", "acme* OR globex", "is:reply has:links", "lang:en -job"]
)
def test_queries_x_cannot_narrow_give_no_rule(query: str) -> None:
    assert to_x_rule(parse(query)) is None


@pytest.mark.parametrize(
    ("query", "rule"),
    [
        ("{ACME} kettle", "(acme kettle)"),  # X matches any case: wider
        ('"acme support"~3', "(acme support)"),
        ("acme ONEAR/2 kettle", "(acme kettle)"),
        ("acme colo?r", "acme"),
        ("(acme NEAR/2 kettle) NEAR/3 broken", "((acme kettle) broken)"),
    ],
)
def test_new_constructs_are_relaxed(query: str, rule: str) -> None:
    assert to_x_rule(parse(query)) == rule
