"""The influence score and its bands.

    score = min(100, 20 * log10(followers + 1) + (10 if verified else 0))

Log-scaled because reach is: going from 100 to 1,000 followers matters as much as from
10,000 to 100,000. Each tenfold adds 20 points, so 10 followers ≈ 21, 100 ≈ 40,
1,000 ≈ 60, 10,000 ≈ 80 and 100,000 or more = 100. A verified account gets 10 points
(the same as ~3x the followers): the network vouches that it is who it says, and
journalists, officials and brands are the verified ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Band = Literal["high", "medium", "low"]

_POINTS_PER_TENFOLD = 20.0
_VERIFIED_BONUS = 10.0


def influence_score(followers: int, verified: bool) -> float:
    """0..100; see the module docstring for the formula."""
    score = _POINTS_PER_TENFOLD * math.log10(max(followers, 0) + 1)
    if verified:
        score += _VERIFIED_BONUS
    return min(100.0, score)


@dataclass(frozen=True)
class Thresholds:
    """Lowest score of each band. The defaults put ~10,000 followers (or ~3,200
    verified) in ``high`` and ~320 (or ~100 verified) in ``medium``."""

    high: float = 80.0
    medium: float = 50.0

    def __post_init__(self) -> None:
        if not 0 <= self.medium <= self.high <= 100:
            raise ValueError(f"need 0 <= medium <= high <= 100, got medium={self.medium} high={self.high}")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Thresholds:
        """``SCRM_INFLUENCE_HIGH`` and ``SCRM_INFLUENCE_MEDIUM`` override the defaults."""
        return cls(
            high=float(env.get("SCRM_INFLUENCE_HIGH", cls.high)),
            medium=float(env.get("SCRM_INFLUENCE_MEDIUM", cls.medium)),
        )

    def band(self, score: float) -> Band:
        if score >= self.high:
            return "high"
        if score >= self.medium:
            return "medium"
        return "low"


def influence_label(followers: int | None, verified: bool, thresholds: Thresholds) -> str | None:
    """``influence:high|medium|low``, or None when the network did not say how many followers."""
    if followers is None:
        return None  # unknown is not "low": a routing rule must not deprioritise on a guess
    return f"influence:{thresholds.band(influence_score(followers, verified))}"
