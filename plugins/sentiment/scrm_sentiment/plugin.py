"""The scrm hook: ``scrm_analyze_sentiment`` backed by VADER.

VADER's lexicon is English. For a text known to be in another language it answers
None, so the next sentiment plugin (if any) is asked instead of VADER guessing
"neutral" for every word it does not know. When the language is unknown (the language
plugin abstains on short texts such as "thanks!" or "👍"), VADER still runs: its
emoji and emoticon rules are language-independent and most short posts are English.
"""

from __future__ import annotations

from scrm_core import Sentiment, hookimpl

from .analyzer import analyze, is_english


@hookimpl
def scrm_analyze_sentiment(text: str, language: str | None) -> Sentiment | None:
    if not is_english(language) or not text.strip():
        return None
    return analyze(text)
