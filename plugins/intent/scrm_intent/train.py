"""Training an intent model: scikit-learn's logistic regression over :mod:`.features`.

Needs the ``train`` extra (``pip install 'scrm-intent[train]'``): scikit-learn is only
needed to train, never to classify.

Why this model: posts are short, labelled data is scarce (hundreds per class, not
millions) and the budget is tens of microseconds per message on one core. A linear model
over word and character n-grams is the strongest thing that fits: it learns from a few
hundred examples, its probabilities calibrate with one temperature, it runs as a sparse
dot product, and the whole model is a few MB. Character n-grams carry it across typos,
inflection and languages with few examples; the cross-language cue lexicon and VADER's
sentiment (as a feature) carry what the examples do not show.

Used twice: by :mod:`.build` to make the model shipped in the wheel from the packaged
examples, and by ``scrm intent train`` to make a deployment's own model from the same
examples plus its agents' corrections (weighted higher: they are that company's traffic).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from .features import features
from .model import INTENTS, IntentModel

__all__ = [
    "Example",
    "TrainingError",
    "calibrate",
    "cross_validated_logits",
    "fit",
    "macro_f1",
    "shipped_examples",
]

#: Logistic regression's inverse regularisation strength, chosen by cross-validation on
#: the shipped examples (see build.py).
DEFAULT_C = 8.0
#: A feature must occur in this many training posts to enter the vocabulary.
MIN_DF = 2


class TrainingError(RuntimeError):
    """Training cannot run (scikit-learn missing, too few examples)."""


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    label: str  # one of the model's classes, without the "intent:" prefix
    language: str | None = None
    sentiment: str | None = None  # the sentiment label scrm gave the text, if any
    weight: float = 1.0
    source: str = "shipped"


def _sklearn() -> Any:
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore[import-untyped]
        from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise TrainingError(
            "training needs scikit-learn: pip install 'scrm-intent[train]' (classifying does not)"
        ) from exc
    return TfidfVectorizer, LogisticRegression


def shipped_examples(sentiment: Callable[[str, str | None], str | None] | None = None) -> list[Example]:
    """The examples the shipped model is trained on (``scrm_intent/data/*.tsv``).

    ``sentiment(text, language)`` gives each its sentiment label as the pipeline would
    (the installed sentiment plugin); None leaves them without one.
    """
    examples: list[Example] = []
    folder = resources.files("scrm_intent") / "data"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".tsv"):
            continue
        language = entry.name.removesuffix(".tsv")
        for n, line in enumerate(entry.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            label, sep, text = line.partition("\t")
            if not sep or label not in INTENTS:
                raise TrainingError(f"{entry.name}:{n}: expected 'label<TAB>text' with a label in {INTENTS}")
            mood = sentiment(text, language) if sentiment else None
            examples.append(Example(text=text, label=label, language=language, sentiment=mood))
    return examples


def augment(examples: Sequence[Example], *, seed: int = 13, weight: float = 0.5) -> list[Example]:
    """Variants people really write: without accents, lower case, with or without the
    @handle in front, one letter dropped. Each at ``weight``; the originals stay."""
    rng = random.Random(seed)
    out = list(examples)
    for ex in examples:
        text = ex.text
        variant = text
        choice = rng.random()
        if choice < 0.3:
            variant = _without_accents(text).lower()
        elif choice < 0.55:
            variant = text.split(" ", 1)[1] if text.startswith("@") and " " in text else "@support " + text
        elif choice < 0.8:
            variant = _typo(text, rng)
        else:
            variant = text.rstrip("?!.") if text[-1:] in "?!." else text + "!"
        if variant != text and variant.strip():
            # Some variants lose their sentiment, as a post does when the plugin abstains.
            mood = ex.sentiment if rng.random() < 0.8 else None
            out.append(Example(variant, ex.label, ex.language, mood, ex.weight * weight, ex.source))
    return out


def _without_accents(text: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _typo(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    long_words = [i for i, w in enumerate(words) if len(w) > 4 and w.isalpha()]
    if not long_words:
        return text
    i = rng.choice(long_words)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    words[i] = w[:j] + w[j + 1 :] if rng.random() < 0.5 else w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


def _analyzer(doc: tuple[str, str | None]) -> list[str]:
    return features(doc[0], doc[1])


def fit(examples: Sequence[Example], *, c: float = DEFAULT_C, classes: Sequence[str] = INTENTS) -> IntentModel:
    """A model trained on ``examples`` (uncalibrated: temperature 1, no "unsure")."""
    TfidfVectorizer, LogisticRegression = _sklearn()
    labels = [ex.label for ex in examples]
    present = [c_ for c_ in classes if c_ in set(labels)]
    if len(present) < 2:
        raise TrainingError("training needs examples of at least two labels")
    vectorizer = TfidfVectorizer(analyzer=_analyzer, binary=True, min_df=MIN_DF, norm="l2", use_idf=True)
    x = vectorizer.fit_transform([(ex.text, ex.sentiment) for ex in examples])
    clf = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    clf.fit(x, labels, sample_weight=np.asarray([ex.weight for ex in examples]))
    idf = vectorizer.idf_.astype(np.float32)
    coef = clf.coef_.T.astype(np.float32)  # [features, classes]
    if coef.shape[1] == 1:  # binary: scikit-learn keeps one column
        coef = np.hstack([-coef, coef]) / 2
    weights = np.zeros((len(idf), len(present)), dtype=np.float32)
    intercept = np.zeros(len(present), dtype=np.float32)
    order = [list(clf.classes_).index(c_) for c_ in present]
    weights[:, :] = (coef * idf[:, None])[:, order]
    icpt = clf.intercept_ if len(clf.classes_) > 2 else np.asarray([-clf.intercept_[0], clf.intercept_[0]]) / 2
    intercept[:] = icpt[order]
    vocab = {f: int(i) for f, i in vectorizer.vocabulary_.items()}
    return IntentModel(
        vocab=vocab,
        weights=weights,
        idf2=(idf * idf).astype(np.float32),
        intercept=intercept,
        classes=tuple(present),
        meta={"c": c, "examples": len(examples)},
    )


def cross_validated_logits(
    examples: Sequence[Example],
    *,
    folds: int = 5,
    c: float = DEFAULT_C,
    seed: int = 7,
    train_extra: Sequence[Example] = (),
    augment_train: bool = True,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Out-of-fold logits for every example: each fold's model never saw its own examples
    (nor their augmented variants). ``train_extra`` joins every fold's training part."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    # Stratified by label: deal each label's examples round the folds.
    by_label: dict[str, list[int]] = {}
    for i in order:
        by_label.setdefault(examples[i].label, []).append(i)
    fold_of = [0] * len(examples)
    k = 0
    for idxs in by_label.values():
        for i in idxs:
            fold_of[i] = k % folds
            k += 1
    classes = tuple(c_ for c_ in INTENTS if any(ex.label == c_ for ex in [*examples, *train_extra]))
    logits = np.zeros((len(examples), len(classes)), dtype=np.float32)
    for f in range(folds):
        train = [examples[i] for i in range(len(examples)) if fold_of[i] != f]
        train = augment(train) if augment_train else train
        model = fit([*train, *train_extra], c=c, classes=classes)
        for i in range(len(examples)):
            if fold_of[i] == f:
                got = model.logits(examples[i].text, examples[i].sentiment)
                logits[i] = [got[model.classes.index(c_)] if c_ in model.classes else -1e4 for c_ in classes]
    return logits, classes


def calibrate(logits: np.ndarray, labels: Sequence[str], classes: Sequence[str]) -> float:
    """The temperature that minimises the negative log-likelihood of held-out predictions."""
    y = np.asarray([list(classes).index(label) for label in labels])

    def nll(t: float) -> float:
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(y)), y].mean())

    best_t, best = 1.0, math.inf
    for t in np.exp(np.linspace(math.log(0.2), math.log(5.0), 121)):
        value = nll(float(t))
        if value < best:
            best_t, best = float(t), value
    return best_t


def macro_f1(
    gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> tuple[float, dict[str, dict[str, float]]]:
    """Macro-F1 over ``labels`` (others, such as "none", count only as wrong answers), and
    precision/recall/F1/support per label."""
    per: dict[str, dict[str, float]] = {}
    for label in labels:
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label and p == label)
        predicted_n = sum(1 for p in predicted if p == label)
        actual_n = sum(1 for g in gold if g == label)
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / actual_n if actual_n else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per[label] = {"precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3), "n": actual_n}
    scored = [label for label in labels if per[label]["n"]]
    return (round(sum(per[label]["f1"] for label in scored) / len(scored), 3) if scored else 0.0), per
