"""VADER stacked with word n-grams: a logistic regression over VADER's four scores and the
post's words and word pairs, trained on human ratings (see build.py).

VADER's lexicon and rules carry the general mood; the n-grams learn what VADER's rules
miss in the ratings: "save your money" is negative, "meh" is neutral, a factual post with
one friendly word is neutral, not positive. Its thresholds are learnt too, instead of
VADER's fixed ±0.05 that calls almost nothing neutral.

The model is an ``.npz`` of arrays (read with ``allow_pickle=False``: data, not code):
``vocab`` (UTF-8, one feature per line), ``weights`` [features x 3] with idf folded in,
``idf2``, ``dense`` [9 x 3] for VADER's features, ``intercept``, ``classes``, ``meta``.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["CLASSES", "StackedModel", "vader_features", "words"]

CLASSES = ("negative", "neutral", "positive")
FloatArray = npt.NDArray[np.float64]

_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"(?<![\w@])@\w+")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|[!?]+|[^\w\s]")


def words(text: str) -> list[str]:
    """Words and word pairs of a post (handles and links reduced to ``@`` and ``<url>``)."""
    text = _MENTION.sub("@", _URL.sub(" ", text[:2000].lower()))
    found = _WORD.findall(text)
    return ["w:" + w for w in found] + ["b:" + a + "|" + b for a, b in pairwise(found)]


def vader_features(scores: dict[str, float]) -> list[float]:
    """VADER's neg/neu/pos/compound and where compound falls."""
    c = scores["compound"]
    return [
        scores["neg"],
        scores["neu"],
        scores["pos"],
        c,
        float(c >= 0.05),
        float(c <= -0.05),
        float(abs(c) < 0.05),
        c * c,
        float(abs(c) > 0.5),
    ]


@dataclass
class StackedModel:
    vocab: dict[str, int]
    weights: FloatArray
    idf2: FloatArray
    dense: FloatArray
    intercept: FloatArray
    classes: tuple[str, ...] = CLASSES
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Rows of [w_negative, w_neutral, w_positive, idf²]: one gather and one sum per post.
        self._rows = np.hstack([self.weights, self.idf2[:, None]]).astype(np.float64)
        self._dense: list[list[float]] = self.dense.tolist()
        self._intercept: list[float] = self.intercept.tolist()

    def probabilities(self, text: str, vader_scores: dict[str, float]) -> tuple[float, float, float]:
        """P(negative), P(neutral), P(positive)."""
        z0, z1, z2 = self._intercept
        for x, (d0, d1, d2) in zip(vader_features(vader_scores), self._dense, strict=True):
            z0 += x * d0
            z1 += x * d1
            z2 += x * d2
        get = self.vocab.get
        idx = {i for w in words(text) if (i := get(w)) is not None}
        if idx:
            s0, s1, s2, norm = self._rows[np.fromiter(idx, dtype=np.intp, count=len(idx))].sum(axis=0).tolist()
            if norm:
                norm = math.sqrt(norm)
                z0, z1, z2 = z0 + s0 / norm, z1 + s1 / norm, z2 + s2 / norm
        top = max(z0, z1, z2)
        e0, e1, e2 = math.exp(z0 - top), math.exp(z1 - top), math.exp(z2 - top)
        total = e0 + e1 + e2
        return e0 / total, e1 / total, e2 / total

    def to_bytes(self) -> bytes:
        vocab = sorted(self.vocab, key=self.vocab.__getitem__)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            vocab=np.frombuffer("\n".join(vocab).encode(), dtype=np.uint8),
            weights=self.weights.astype(np.float32),
            idf2=self.idf2.astype(np.float32),
            dense=self.dense.astype(np.float32),
            intercept=self.intercept.astype(np.float32),
            classes=np.frombuffer("\n".join(self.classes).encode(), dtype=np.uint8),
            meta=np.frombuffer(json.dumps(self.meta).encode(), dtype=np.uint8),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> StackedModel:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            a = {name: npz[name] for name in npz.files}
        vocab = bytes(a["vocab"]).decode().split("\n")
        classes = tuple(bytes(a["classes"]).decode().split("\n"))
        if classes != CLASSES or a["weights"].shape != (len(vocab), 3) or a["dense"].shape != (9, 3):
            raise ValueError("not an scrm-sentiment model (shapes or classes differ)")
        return cls(
            vocab={w: i for i, w in enumerate(vocab)},
            weights=a["weights"].astype(np.float64),
            idf2=a["idf2"].astype(np.float64),
            dense=a["dense"].astype(np.float64),
            intercept=a["intercept"].astype(np.float64),
            classes=classes,
            meta=json.loads(bytes(a["meta"]).decode()),
        )

    @classmethod
    def load(cls, path: Path) -> StackedModel:
        return cls.from_bytes(path.read_bytes())
