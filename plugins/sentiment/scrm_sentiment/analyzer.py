"""Sentiment for English posts: VADER stacked with word n-grams (see stacked.py and build.py).

VADER (Hutto & Gilbert, ICWSM 2014) is a lexicon and rule model made for social media: it
knows emoticons, emoji, slang ("meh", "lol"), capitals and "!!!" as intensifiers, and
negation ("not good"). Its four scores feed a logistic regression trained on human
ratings, beside the post's words and word pairs; the regression's answer is the label,
and ``P(positive) - P(negative)`` the score (-1..1).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Literal

from scrm_core import Sentiment

if TYPE_CHECKING:
    from .stacked import StackedModel

#: VADER's documented thresholds on its compound score (vaderSentiment README, "About the
#: Scoring"): positive >= 0.05, negative <= -0.05. Used by :func:`vader_label`, the baseline.
POSITIVE_FROM = 0.05
NEGATIVE_BELOW = -0.05

# VADER's cost grows with the number of words; a pasted log or a long forum post should
# not stall the pipeline, and the first few thousand characters carry the mood anyway.
_MAX_CHARS = 5000
# Social streams repeat themselves (retweets, boosts, bots, "thank you!", replies that
# differ only by the handle they answer), and a cache hit costs a dict lookup
# against ~50 µs for an analysis. Emptied when full.
_CACHE_SIZE = 16384

Label = Literal["negative", "neutral", "positive"]


def label_for(score: float) -> Label:
    """VADER's own label for a compound score (the baseline's thresholds)."""
    if score >= POSITIVE_FROM:
        return "positive"
    if score <= NEGATIVE_BELOW:
        return "negative"
    return "neutral"


def is_english(language: str | None) -> bool:
    """True for ``en`` and its regional tags (``en-GB``); None counts as English (see plugin)."""
    return language is None or language == "en" or language.split("-", 1)[0].lower() == "en"


def vader_scores(text: str) -> dict[str, float]:
    """VADER's neg/neu/pos/compound for one text (English): vaderSentiment's own scores,
    computed by :mod:`scrm_sentiment.vader` (the same rules, a fraction of the cost)."""
    from . import vader  # vaderSentiment's lexicons: read at the first text, not at plugin load

    return vader.polarity_scores(text[:_MAX_CHARS])


def compound_score(text: str) -> float:
    """VADER's compound score (-1..1)."""
    return min(1.0, max(-1.0, float(vader_scores(text)["compound"])))


def vader_label(text: str) -> Label:
    """What VADER alone says (the baseline the bench compares with)."""
    return label_for(compound_score(text))


@cache
def model() -> StackedModel:
    from .stacked import StackedModel  # numpy: imported at the first text, not at plugin load

    return StackedModel.from_bytes((resources.files("scrm_sentiment") / "model.npz").read_bytes())


# Text (and its shared key) -> its Sentiment. Sentiment is frozen, so one object serves
# every message with that text: a hit is a dict lookup.
_results: dict[str, Sentiment] = {}


def _remembered(text: str) -> Sentiment:
    """The Sentiment of a text not in the cache: from its key's entry
    (:func:`~scrm_sentiment.keys.shared_key`) when that was seen, else analysed; both cached."""
    from .keys import shared_key  # vaderSentiment's lexicons: read at the first text

    key = shared_key(text)
    found = _results.get(key) if key is not text else None
    if found is None:
        score, label = _analyze(key)
        found = Sentiment(score=round(score, 4), label=label)
    if len(_results) + 2 > _CACHE_SIZE:
        _results.clear()
    _results[text] = found
    if key is not text:
        _results[key] = found
    return found


def clear_cache() -> None:
    """Forget every result (benchmarks measure the cost of new texts with it)."""
    _results.clear()


def _analyze(text: str) -> tuple[float, Label]:
    """Score and label of ``text``, computed (no cache)."""
    from .stacked import CLASSES

    p = model().probabilities(text[:_MAX_CHARS], vader_scores(text))
    label: Label = CLASSES[max(range(3), key=p.__getitem__)]  # type: ignore[assignment]
    score = p[2] - p[0]
    return min(1.0, max(-1.0, score)), label


def analyze(text: str) -> Sentiment:
    """The text's Sentiment (from the cache when the text, or one its models cannot tell from
    it, was seen). Sentiment is frozen: the same object may be handed out again."""
    found = _results.get(text)
    return found if found is not None else _remembered(text)
