"""Sentiment for scrm: ``scrm_analyze_sentiment`` for English posts, VADER stacked with word n-grams."""

from .analyzer import NEGATIVE_BELOW, POSITIVE_FROM, analyze, compound_score, is_english, label_for, vader_label

__version__ = "0.2.0"
__all__ = ["NEGATIVE_BELOW", "POSITIVE_FROM", "analyze", "compound_score", "is_english", "label_for", "vader_label"]
