"""Influence for scrm: a 0..100 score from audience size, exposed as an ``influence:*`` label."""

from .score import Thresholds, influence_label, influence_score

__version__ = "0.1.0"
__all__ = ["Thresholds", "influence_label", "influence_score"]
