"""docs/listening.md says what the code does: its config examples parse, its refusals are refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from scrm_listening import QuerySyntaxError, parse, warnings

DOC = (Path(__file__).resolve().parents[3] / "docs" / "listening.md").read_text(encoding="utf-8")


def test_every_config_example_parses_without_warnings() -> None:
    examples = re.findall(r"^query = '(.*)'$", DOC, re.M)
    assert len(examples) >= 3
    for query in examples:
        assert warnings(parse(query)) == [], query


@pytest.mark.parametrize(
    "query",
    ["a OR b AND c", "a OR b c", "acme -job OR hiring", "a NEAR/2 b OR c", "a NEAR/2 b NEAR/3 c", "(a OR b)~3"],
)
def test_the_refusals_the_doc_names_are_refused(query: str) -> None:
    assert f"`{query}`" in DOC
    with pytest.raises(QuerySyntaxError):
        parse(query)
