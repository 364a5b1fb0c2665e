"""VADER behind a small, cached function.

VADER (Hutto & Gilbert, ICWSM 2014) is a lexicon and rule model made for social media:
it knows emoticons, emoji, slang ("meh", "lol"), capitals and "!!!" as intensifiers, and
negation ("not good"). Its ``compound`` score is already normalised to -1..1.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # type: ignore[import-untyped]

from scrm_core import Sentiment

#: VADER's documented thresholds on the compound score (vaderSentiment README, "About the
#: Scoring"): positive >= 0.05, negative <= -0.05, neutral in between.
POSITIVE_FROM = 0.05
NEGATIVE_BELOW = -0.05

# VADER's cost grows with the number of words; a pasted log or a long forum post should
# not stall the pipeline, and the first few thousand characters carry the mood anyway.
_MAX_CHARS = 5000
# Social streams repeat themselves (retweets, boosts, bots, "thank you!"), and a cache
# hit costs well under a microsecond against ~90 µs for an analysis.
_CACHE_SIZE = 8192

# One analyzer for the process: building one loads the lexicon (~15 ms).
_vader = SentimentIntensityAnalyzer()


def label_for(score: float) -> Literal["negative", "neutral", "positive"]:
    if score >= POSITIVE_FROM:
        return "positive"
    if score <= NEGATIVE_BELOW:
        return "negative"
    return "neutral"


def is_english(language: str | None) -> bool:
    """True for ``en`` and its regional tags (``en-GB``); None counts as English (see plugin)."""
    return language is None or language.split("-", 1)[0].lower() == "en"


@lru_cache(maxsize=_CACHE_SIZE)
def compound_score(text: str) -> float:
    """VADER's compound score (-1..1) for one text (English)."""
    score = float(_vader.polarity_scores(text[:_MAX_CHARS])["compound"])
    return min(1.0, max(-1.0, score))  # guard the model's bounds against float drift


def analyze(text: str) -> Sentiment:
    """A new Sentiment for each call: messages are mutable, so results are never shared."""
    score = compound_score(text)
    return Sentiment.model_construct(score=score, label=label_for(score))
