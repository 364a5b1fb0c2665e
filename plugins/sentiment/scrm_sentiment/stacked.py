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
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from itertools import chain, pairwise
from operator import is_not
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["CLASSES", "READ_CHARS", "StackedModel", "vader_features", "words"]

CLASSES = ("negative", "neutral", "positive")
#: How much of a post the n-grams read.
READ_CHARS = 2000
FloatArray = npt.NDArray[np.float64]

_URL = re.compile(r"https?://\S+|www\.\S+")
# "@" first, then what precedes it: the search jumps from "@" to "@" (a lookbehind first
# is tried at every character). The same matches as (?<![\w@])@\w+.
_MENTION = re.compile(r"@(?<![\w@]@)\w+")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|[!?]+|[^\w\s]")
# _WORD for lower-case ASCII text, where [^\W\d_] is [a-z]: a set of bytes, not a
# Unicode category test per character.
_ASCII_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|[!?]+|[^\w\s]")
_not_none = partial(is_not, None)


def _split_pair(pair: str) -> tuple[str, str]:
    # "a|b"; "|" is a token of its own, so "||b" is ("|", "b") and "a||" is ("a", "|").
    if pair.startswith("|") and len(pair) > 1 and pair[1] == "|":
        return "|", pair[2:]
    a, _, b = pair.partition("|")
    return a, b


def words(text: str) -> list[str]:
    """Words and word pairs of a post (links removed, a handle's name reduced to ``@``)."""
    text = _MENTION.sub("@", _URL.sub(" ", text[:READ_CHARS].lower()))
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
        # Per feature: (w_negative, w_neutral, w_positive, idf²) as one tuple of plain
        # floats, allocated side by side (a post selects a few dozen rows: summing them in
        # Python beats numpy's per-call cost, and a row is one or two cache lines).
        # Word and word-pair features by their text, so a post builds no "w:"/"b:" strings.
        rows = np.hstack([self.weights, self.idf2[:, None]]).astype(np.float64)
        self._rows: list[tuple[float, float, float, float]] = list(map(tuple, rows.tolist()))
        self._words = {f[2:]: i for f, i in self.vocab.items() if f.startswith("w:")}
        self._pairs = {f[2:]: i for f, i in self.vocab.items() if f.startswith("b:")}
        # A pair seen in enough posts to be a feature has both its words as features too
        # (document frequency), so a pair with an unknown word need not be looked up. A
        # model without that property (built otherwise) has every pair looked up.
        self._pairs_of_known_words = all(
            a in self._words and b in self._words for a, b in map(_split_pair, self._pairs)
        )
        self._dense: list[list[float]] = self.dense.tolist()
        self._intercept: list[float] = self.intercept.tolist()

    def rows(self, text: str) -> set[int]:
        """The features of :func:`words` the model knows, as row numbers: the same set,
        built in the same order (so sums over it add in the same order)."""
        text = text[:READ_CHARS].lower()
        if "http" in text or "www." in text:
            text = _URL.sub(" ", text)
        if "@" in text:
            text = _MENTION.sub("@", text)
        found = (_ASCII_WORD if text.isascii() else _WORD).findall(text)
        words = list(map(self._words.get, found))
        if self._pairs_of_known_words:
            joined = [
                a + "|" + b
                for (a, b), (x, y) in zip(pairwise(found), pairwise(words), strict=True)
                if x is not None and y is not None
            ]
        else:
            joined = list(map("|".join, pairwise(found)))
        # Inserted in the order words() lists them, so the set iterates as it always has.
        found_ids: Iterable[int | None] = chain(words, map(self._pairs.get, joined))
        return set(filter(_not_none, found_ids))  # type: ignore[arg-type]  # filter drops the None

    def probabilities(self, text: str, vader_scores: dict[str, float]) -> tuple[float, float, float]:
        """P(negative), P(neutral), P(positive)."""
        z0, z1, z2 = self._intercept
        for x, (d0, d1, d2) in zip(vader_features(vader_scores), self._dense, strict=True):
            z0 += x * d0
            z1 += x * d1
            z2 += x * d2
        idx = self.rows(text)
        if idx:
            # Each column summed in the order of idx, as numpy summed the gathered rows.
            s0, s1, s2, idf2 = map(sum, zip(*map(self._rows.__getitem__, idx), strict=True))
            if idf2:
                norm = math.sqrt(idf2)
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
