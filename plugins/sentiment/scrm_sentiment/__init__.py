"""VADER sentiment for scrm: ``scrm_analyze_sentiment`` for English social posts."""

from .analyzer import NEGATIVE_BELOW, POSITIVE_FROM, analyze, is_english, label_for

__version__ = "0.1.0"
__all__ = ["NEGATIVE_BELOW", "POSITIVE_FROM", "analyze", "is_english", "label_for"]
