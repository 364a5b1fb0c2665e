"""Texts that share a cache key score exactly alike: VADER's scores, the n-gram features,
the plugin's answer, on generated texts full of handles and on the demo stream's replies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scrm_sentiment import analyzer, vader
from scrm_sentiment.keys import shared_key

from scrm_core import Sentiment

from .test_vader import _RULE_WORDS, _word


def _handle() -> st.SearchStrategy[str]:
    rule = st.sampled_from(_RULE_WORDS)
    name = st.one_of(
        rule,
        rule.map(str.upper),
        rule.map(str.title),
        st.text(alphabet="abcXYZ019_", min_size=1, max_size=10),
        st.text(alphabet="abcé_İ'", min_size=1, max_size=5),
        st.sampled_from(["n't", "don't", "u", "U", "lol", "ok", "http", "https", "www"]),
    )
    servers = ["@mastodon.social", "@mas.to", ".bsky.social", "@x.y!"]
    rest = st.sampled_from(["", "", *servers, "!", "?", ",", ":", "'s", "😍", "://a.b", "www.x", "-", "..."])
    before = st.sampled_from(["", "", "(", "@", "a", "😡"])
    return st.tuples(before, st.just("@"), name, rest).map("".join)


_piece = st.one_of(_handle(), _word())
_text = st.lists(st.tuples(_piece, st.sampled_from([" ", " ", "  ", "\n", "\t", ""])), max_size=20).map(
    lambda parts: "".join(w + sep for w, sep in parts)
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_text)
def test_a_text_and_its_key_score_alike(text: str) -> None:
    key = shared_key(text)
    assert shared_key(key) == key
    assert vader.polarity_scores(key) == vader.polarity_scores(text)
    assert analyzer.model().rows(key) == analyzer.model().rows(text)
    assert analyzer._analyze(key) == analyzer._analyze(text)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("@ana thanks so much!", "@u thanks so much!"),
        ("@ana@mastodon.social, @bo.b@bsky.social thanks", "@u@mastodon.social, @u.b@bsky.social thanks"),
        ("thanks @ana!", "thanks @u!"),
        ("no handle here", "no handle here"),
        # Kept: words VADER scores or reads in capitals, links, non-ASCII names, mid-word @
        # ("@no" is a word of its own to VADER, not "no": two letters keep their punctuation).
        ("@sad @LOVE @never @Ana @no", "@sad @LOVE @never @u @u"),
        ("@ana/https://x.example", "@ana/https://x.example"),
        ("@renée merci", "@renée merci"),
        ("mail me at ana@example.com", "mail me at ana@example.com"),
    ],
)
def test_which_handles_lose_their_names(text: str, key: str) -> None:
    assert shared_key(text) == key


def test_replies_to_different_people_are_analysed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    analyzer.clear_cache()
    computed: list[str] = []
    compute = analyzer._analyze
    monkeypatch.setattr(analyzer, "_analyze", lambda text: computed.append(text) or compute(text))
    first = analyzer.analyze("@ana@mas.to still waiting for my refund, 12 days now")
    second = analyzer.analyze("@bo_99@mas.to still waiting for my refund, 12 days now")
    assert first is second  # Sentiment is frozen: one object for both messages
    with pytest.raises(ValidationError):
        first.score = 1.0  # type: ignore[misc]  # no message can change another's sentiment
    assert computed == ["@u@mas.to still waiting for my refund, 12 days now"]


def test_the_demo_streams_replies_score_as_without_the_cache(tmp_path: Path) -> None:
    demo = pytest.importorskip("scrm_replay.demo", reason="the demo stream comes with scrm-replay")
    demo.generate_demo(tmp_path, messages=3000, seed=11)
    texts = sorted(
        {
            json.loads(line).get("message", {}).get("text", "")
            for path in tmp_path.glob("*.ndjson")
            for line in path.read_text(encoding="utf-8").splitlines()
        }
    )
    replies = [t for t in texts if "@" in t]
    assert len(replies) > 100
    keys = {shared_key(t) for t in replies}
    assert len(keys) < len(replies) / 2  # what the cache gains on this stream
    analyzer.clear_cache()
    assert [analyzer.analyze(t) for t in replies] == [analyzer.analyze(t) for t in replies[::-1]][::-1]
    uncached = [Sentiment(score=round(score, 4), label=label) for score, label in map(analyzer._analyze, replies)]
    assert [analyzer.analyze(t) for t in replies] == uncached
