"""scrm_sentiment.vader gives vaderSentiment's own scores, exactly, on generated and real texts."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scrm_sentiment import vader
from vaderSentiment.vaderSentiment import (  # type: ignore[import-untyped]
    BOOSTER_DICT,
    NEGATE,
    SPECIAL_CASES,
    SentimentIntensityAnalyzer,
)

REFERENCE = SentimentIntensityAnalyzer()
BENCH_DATA = Path(__file__).parents[3] / "bench" / "data"

# Words that trigger each of VADER's rules, in every case they are looked up in.
_RULE_WORDS = sorted(
    {
        *NEGATE,
        *(w for key in [*BOOSTER_DICT, *SPECIAL_CASES] for w in key.split()),
        *("no", "not", "never", "so", "this", "without", "doubt", "least", "at", "very", "but", "kind", "of"),
        *("or", "nor", "the", "good", "great", "love", "hate", "bad", "terrible", "awful", "nice", "ok", "meh"),
        *("lol", "sux", "happy", "sad"),
    }
)
_EMOJI = ["😍", "😡", "👍", "💘", "😁", "🙏", "☺", "❤"]
_EMOTICONS = [":)", ":(", ":D", "<3", ":-)", ";)", ":/", "xD"]
_PUNCT = ["!", "!!", "!!!!!", "?", "??", "????", ".", ",", "...", "'", '"', "-", "(", ")"]


def _word() -> st.SearchStrategy[str]:
    rule = st.sampled_from(_RULE_WORDS)
    cased = st.one_of(rule, rule.map(str.upper), rule.map(str.title))
    other = st.text(alphabet="abcdefghijklmnopqrstuvwxyzÀÉÜßİ'", min_size=1, max_size=8)
    return st.one_of(
        cased,
        cased,
        cased,
        other,
        st.sampled_from(_EMOJI),
        st.sampled_from(_EMOTICONS),
        st.tuples(cased, st.sampled_from(_PUNCT)).map("".join),
        st.tuples(st.sampled_from(_PUNCT), cased).map("".join),
        st.tuples(cased, st.sampled_from(_EMOJI)).map("".join),
    )


_text = st.lists(st.tuples(_word(), st.sampled_from([" ", " ", " ", "  ", "\n", "\t", ""])), max_size=30).map(
    lambda parts: "".join(w + sep for w, sep in parts)
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_text)
def test_same_scores_as_vadersentiment_on_generated_texts(text: str) -> None:
    assert vader.polarity_scores(text) == REFERENCE.polarity_scores(text)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_same_scores_on_arbitrary_unicode(text: str) -> None:
    assert vader.polarity_scores(text) == REFERENCE.polarity_scores(text)


# VADER's own examples (vaderSentiment.py's __main__), each aimed at one of its rules.
VADER_EXAMPLES = [
    "VADER is smart, handsome, and funny.",
    "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
    "VADER is not smart, handsome, nor funny.",
    "At least it isn't a horrible book.",
    "The book was only kind of good.",
    "The plot was good, but the characters are uncompelling and the dialog is not great.",
    "Today only kinda sux! But I'll get by, lol",
    "Make sure you :) or :D today!",
    "Catch utf-8 emoji such as 💘 and 💋 and 😁",
    "Not bad at all",
    "Sentiment analysis has never been this good!",
    "With VADER, sentiment analysis is the shit!",
    "On the other hand, VADER is quite bad ass",
    "Without a doubt, excellent idea.",
    "Roger Dodger is one of the least compelling variations on this theme.",
    "Roger Dodger is at least compelling as a variation on the theme.",
    "good good but good bad good",  # "but" with repeated scores: list.index quirks
    "no no no good",
    "it was to die for, kiss of death, yeah right",
    "",
    "   ",
    "😍😍 great😡",
]


@pytest.mark.parametrize("text", VADER_EXAMPLES)
def test_same_scores_on_vaders_own_examples(text: str) -> None:
    assert vader.polarity_scores(text) == REFERENCE.polarity_scores(text)


def test_same_scores_on_the_human_rated_sets() -> None:
    """Every text of the sets the bench uses (~7,900 tweets and review snippets)."""
    texts: list[str] = []
    for name in ("vader_tweets_groundtruth.tsv", "vader_amazon_snippets_groundtruth.tsv"):
        path = BENCH_DATA / name
        if path.exists():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                parts = line.split("\t", 2)
                if len(parts) == 3:
                    texts.append(parts[2])
    if not texts:
        pytest.skip(f"no human-rated sets in {BENCH_DATA} (deleted for their licence?)")
    different = [t for t in texts if vader.polarity_scores(t) != REFERENCE.polarity_scores(t)]
    assert different == []
