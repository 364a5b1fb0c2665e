"""The intent model at run time: a linear model over sparse features, numpy only.

A model is one ``.npz`` file (numpy's zip of arrays, read with ``allow_pickle=False``: loading
a model runs no code, so a model file is data, not a program). It holds

* ``vocab``: the feature strings, UTF-8, one per line;
* ``weights``: float32 [features x classes], the logistic regression's coefficients with
  each feature's idf already multiplied in;
* ``idf2``: float32 [features], idf squared (for the l2 norm of the tf-idf vector);
* ``intercept``, ``classes``; ``temperature`` (calibration), ``unsure_below`` (the
  probability under which the model says "unsure"), ``meta`` (JSON: how it was trained).

Scoring a post is: its features -> the indexes of the known ones (a dict lookup each) ->
``weights[idx].sum(0) / sqrt(idf2[idx].sum()) + intercept`` -> softmax at the calibrated
temperature. Exactly what scikit-learn's ``TfidfVectorizer(binary=True)`` followed by
``LogisticRegression.decision_function`` computes, without either at run time.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .features import VERSION as FEATURES_VERSION
from .features import reading, split_features, word_features

__all__ = ["INTENTS", "IntentModel", "ModelError", "Prediction"]

#: The classes the shipped model knows; ``none`` is "no intent".
INTENTS = ("complaint", "question", "purchase", "praise", "spam", "none")

FloatArray = npt.NDArray[np.float32]
_WORD_CACHE_MAX = 200_000
# Posts repeat (retweets, boosts, bots, "thanks!"): a repeated one is answered from here.
_ANSWER_CACHE_MAX = 16384
_MAX_CHARS = 2000  # the features read no further (features.split_features)


class ModelError(ValueError):
    """A model file that cannot be used (damaged, or made for other features)."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """The model's answer for one post: the best class, its calibrated probability, and
    whether that is below the model's "unsure" threshold."""

    label: str
    confidence: float
    unsure: bool
    probabilities: dict[str, float]


@dataclass
class IntentModel:
    vocab: dict[str, int]
    weights: FloatArray
    idf2: FloatArray
    intercept: FloatArray
    classes: tuple[str, ...]
    temperature: float = 1.0
    unsure_below: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)
    # Word -> the rows of its features in this model: most words of a post were seen before.
    _word_rows: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False, compare=False)
    # (text, sentiment, temperature) -> probabilities: the same post is scored once.
    _answers: dict[tuple[object, ...], list[float]] = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------ scoring

    def rows(self, text: str, sentiment: str | None = None) -> set[int]:
        """The rows of :attr:`weights` the post's features select (its known features)."""
        words, rest = split_features(text, sentiment)
        get = self.vocab.get
        cache = self._word_rows
        found = {i for f in rest if (i := get(f)) is not None}
        for w in words:
            rows = cache.get(w)
            if rows is None:
                rows = tuple(i for f in word_features(w) if (i := get(f)) is not None)
                if len(cache) >= _WORD_CACHE_MAX:
                    cache.clear()
                cache[w] = rows
            found.update(rows)
        return found

    def logits(self, text: str, sentiment: str | None = None) -> FloatArray:
        idx = self.rows(text, sentiment)
        if not idx:
            return self.intercept.copy()
        rows = np.fromiter(idx, dtype=np.intp, count=len(idx))
        norm = math.sqrt(float(self.idf2[rows].sum())) or 1.0
        result: FloatArray = self.weights[rows].sum(axis=0) / norm + self.intercept
        return result

    def probabilities(self, logits: FloatArray) -> FloatArray:
        z = logits / self.temperature
        z = np.exp(z - z.max())
        result: FloatArray = z / z.sum()
        return result

    def _row(self, text: str, sentiment: str | None) -> list[float]:
        """The post's class probabilities, from the cache when it, or a post that reads alike
        (:func:`~scrm_intent.features.reading`: replies to different handles), was scored before."""
        key = (text[:_MAX_CHARS], sentiment, self.temperature)
        row = self._answers.get(key)
        if row is None:
            alike = (*reading(text), sentiment, self.temperature)  # never equal to a key: 6 items, not 3
            row = self._answers.get(alike)
            if row is None:
                row = self.probabilities(self.logits(text, sentiment)).tolist()
            if len(self._answers) + 2 > _ANSWER_CACHE_MAX:
                self._answers.clear()
            self._answers[key] = self._answers[alike] = row
        return row

    def best(self, text: str, sentiment: str | None = None) -> tuple[str, float, bool]:
        """(label, confidence, unsure) of :meth:`predict`, without building the probabilities
        (what the pipeline's hook needs, once per message)."""
        row = self._row(text, sentiment)
        confidence = max(row)
        return self.classes[row.index(confidence)], confidence, confidence < self.unsure_below

    def predict(self, text: str, sentiment: str | None = None) -> Prediction:
        row = self._row(text, sentiment)
        confidence = max(row)
        return Prediction(
            label=self.classes[row.index(confidence)],
            confidence=confidence,
            unsure=confidence < self.unsure_below,
            probabilities=dict(zip(self.classes, row, strict=True)),
        )

    def predict_many(self, texts: Sequence[str], sentiments: Sequence[str | None] | None = None) -> list[Prediction]:
        """The same answers as :meth:`predict`, for a batch: one gather and one reduceat for all."""
        sentiments = sentiments if sentiments is not None else [None] * len(texts)
        flat: list[int] = []
        starts: list[int] = []
        for text, sentiment in zip(texts, sentiments, strict=True):
            starts.append(len(flat))
            flat.extend(self.rows(text, sentiment))
        if not texts:
            return []
        rows = np.asarray(flat, dtype=np.intp)
        counts = np.diff(np.asarray([*starts, len(flat)]))
        sums = np.zeros((len(texts), len(self.classes)), dtype=np.float32)
        norms = np.ones(len(texts), dtype=np.float32)
        nonempty = counts > 0
        if rows.size:
            offsets = np.asarray(starts, dtype=np.intp)[nonempty]
            sums[nonempty] = np.add.reduceat(self.weights[rows], offsets, axis=0)
            norms[nonempty] = np.sqrt(np.add.reduceat(self.idf2[rows], offsets))
        logits = sums / norms[:, None] + self.intercept
        z = logits / self.temperature
        z = np.exp(z - z.max(axis=1, keepdims=True))
        probs = z / z.sum(axis=1, keepdims=True)
        classes, unsure_below = self.classes, self.unsure_below
        out = []
        for row in probs.tolist():  # plain floats: numpy scalars cost ~1 µs each to convert
            confidence = max(row)
            out.append(
                Prediction(
                    label=classes[row.index(confidence)],
                    confidence=confidence,
                    unsure=confidence < unsure_below,
                    probabilities=dict(zip(classes, row, strict=True)),
                )
            )
        return out

    # ------------------------------------------------------------ files

    def to_bytes(self) -> bytes:
        vocab = sorted(self.vocab, key=self.vocab.__getitem__)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            vocab=np.frombuffer("\n".join(vocab).encode(), dtype=np.uint8),
            weights=self.weights.astype(np.float32),
            idf2=self.idf2.astype(np.float32),
            intercept=self.intercept.astype(np.float32),
            classes=np.frombuffer("\n".join(self.classes).encode(), dtype=np.uint8),
            temperature=np.float32(self.temperature),
            unsure_below=np.float32(self.unsure_below),
            meta=np.frombuffer(json.dumps({**self.meta, "features": FEATURES_VERSION}).encode(), dtype=np.uint8),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, *, origin: str = "model") -> IntentModel:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            vocab_lines = bytes(arrays["vocab"]).decode().split("\n")
            meta = json.loads(bytes(arrays["meta"]).decode())
            model = cls(
                vocab={f: i for i, f in enumerate(vocab_lines)},
                weights=arrays["weights"].astype(np.float32),
                idf2=arrays["idf2"].astype(np.float32),
                intercept=arrays["intercept"].astype(np.float32),
                classes=tuple(bytes(arrays["classes"]).decode().split("\n")),
                temperature=float(arrays["temperature"]),
                unsure_below=float(arrays["unsure_below"]),
                meta=meta,
            )
        except (OSError, KeyError, ValueError, UnicodeDecodeError) as exc:
            raise ModelError(f"{origin}: not an scrm intent model ({type(exc).__name__}: {exc})") from exc
        if meta.get("features") != FEATURES_VERSION:
            raise ModelError(
                f"{origin}: made for features version {meta.get('features')}, this scrm-intent has "
                f"{FEATURES_VERSION}; retrain it with `scrm intent train`"
            )
        n = len(model.vocab)
        if model.weights.shape != (n, len(model.classes)) or model.idf2.shape != (n,):
            raise ModelError(f"{origin}: arrays do not match ({model.weights.shape} for {n} features)")
        return model

    @classmethod
    def load(cls, path: Path) -> IntentModel:
        return cls.from_bytes(path.read_bytes(), origin=str(path))
