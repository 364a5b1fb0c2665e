"""Build the stacked sentiment model: ``python -m scrm_sentiment.build [--sdist vaderSentiment-3.3.2.tar.gz]``.

Trained on three of the four human-rated sets Hutto & Gilbert published with VADER (MIT,
inside the ``vaderSentiment`` 3.3.2 source distribution on PyPI: 4,200 tweets, 10,605
movie-review snippets, 5,190 New York Times editorial snippets; each text the mean of 20
people's ratings on -4..+4, neutral when within half a step of 0). The fourth set, 3,708
Amazon product-review snippets, is **never** used here: it is the held-out set the bench
scores VADER and this model on (bench/bench_sentiment_accuracy.py).

Each set counts the same in training (weights by set size), so the 10,605 movie snippets
do not drown the tweets. ``C`` is chosen by leave-one-set-out cross-validation over the
three training sets (train on two, score the third), never on the held-out set. Needs
scikit-learn (``pip install 'scrm-sentiment[train]'``); without ``--sdist`` the source
distribution is fetched with ``pip download`` and its sha256 checked.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from .stacked import CLASSES, StackedModel, vader_features, words

SDIST = "vaderSentiment-3.3.2.tar.gz"
SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
TRAIN_SETS = {
    "tweets": "tweets_GroundTruth.txt",
    "movie_reviews": "movieReviewSnippets_GroundTruth.txt",
    "nyt_editorials": "nytEditorialSnippets_GroundTruth.txt",
}
HELD_OUT = "amazonReviewSnippets_GroundTruth.txt"  # never read here
C_GRID = (0.3, 1.0, 3.0)
NEUTRAL_WITHIN = 0.5  # mean rating on -4..+4: closer to 0 than this is neutral

Example = tuple[str, str]


def read_ratings(text: str) -> list[Example]:
    out: list[Example] = []
    for line in text.splitlines():
        parts = line.rstrip("\r\n").split("\t", 2)
        if len(parts) < 3:
            continue
        mean = float(parts[1])
        gold = "neutral" if abs(mean) < NEUTRAL_WITHIN else ("positive" if mean > 0 else "negative")
        out.append((parts[2], gold))
    return out


def load_sets(sdist: Path) -> dict[str, list[Example]]:
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise SystemExit(f"{sdist}: sha256 {digest}, expected {SDIST_SHA256}")
    with tarfile.open(sdist) as outer:
        member = outer.extractfile("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
        assert member is not None
        with tarfile.open(fileobj=member) as inner:
            sets = {}
            for name, file in TRAIN_SETS.items():
                handle = inner.extractfile(f"hutto_ICWSM_2014/{file}")
                assert handle is not None
                sets[name] = read_ratings(handle.read().decode("utf-8", errors="replace"))
    return sets


def fit(examples: Sequence[Example], weights: Sequence[float], c: float) -> StackedModel:
    from scipy import sparse  # type: ignore[import-untyped]
    from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    from .analyzer import vader_scores

    vectorizer = TfidfVectorizer(analyzer=words, binary=True, min_df=2)
    xw = vectorizer.fit_transform([t for t, _ in examples])
    xv = sparse.csr_matrix(np.asarray([vader_features(vader_scores(t)) for t, _ in examples]))
    clf = LogisticRegression(C=c, max_iter=3000)
    clf.fit(sparse.hstack([xw, xv]).tocsr(), [g for _, g in examples], sample_weight=np.asarray(weights))
    order = [list(clf.classes_).index(k) for k in CLASSES]
    coef = clf.coef_[order].T  # [features + 9, classes]
    idf = vectorizer.idf_
    n = len(idf)
    return StackedModel(
        vocab={w: int(i) for w, i in vectorizer.vocabulary_.items()},
        weights=coef[:n] * idf[:, None],
        idf2=idf * idf,
        dense=coef[n:],
        intercept=clf.intercept_[order],
        meta={"c": c},
    )


def macro_f1(gold: Sequence[str], predicted: Sequence[str]) -> float:
    f1s = []
    for k in CLASSES:
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p == k)
        said, actual = predicted.count(k), gold.count(k)
        pr, rc = (tp / said if said else 0.0), (tp / actual if actual else 0.0)
        f1s.append(2 * pr * rc / (pr + rc) if pr + rc else 0.0)
    return round(sum(f1s) / len(f1s), 3)


def _balanced(sets: dict[str, list[Example]]) -> tuple[list[Example], list[float]]:
    examples: list[Example] = []
    weights: list[float] = []
    total = sum(len(s) for s in sets.values())
    for s in sets.values():
        examples += s
        weights += [total / (len(sets) * len(s))] * len(s)
    return examples, weights


def predict(model: StackedModel, texts: Sequence[str]) -> list[str]:
    from .analyzer import vader_scores

    return [CLASSES[max(range(3), key=model.probabilities(t, vader_scores(t)).__getitem__)] for t in texts]


def build(sdist: Path, out: Path) -> dict[str, object]:
    sets = load_sets(sdist)
    cv: dict[str, dict[str, float]] = {}
    for c in C_GRID:
        cv[str(c)] = {}
        for held in sets:
            train, weights = _balanced({k: v for k, v in sets.items() if k != held})
            model = fit(train, weights, c)
            cv[str(c)][held] = macro_f1([g for _, g in sets[held]], predict(model, [t for t, _ in sets[held]]))
    best = max(C_GRID, key=lambda c: (sum(cv[str(c)].values()), -c))
    train, weights = _balanced(sets)
    model = fit(train, weights, best)
    model.meta = {
        "c": best,
        "built": datetime.now(UTC).date().isoformat(),
        "trained_on": {k: len(v) for k, v in sets.items()},
        "held_out_never_used": HELD_OUT,
        "source": f"{SDIST} (sha256 {SDIST_SHA256}), MIT, Hutto & Gilbert ICWSM 2014",
    }
    data = model.to_bytes()
    out.write_bytes(data)
    StackedModel.from_bytes(data)
    return {"model": str(out), "bytes": len(data), "features": len(model.vocab), "c": best, "leave_one_set_out": cv}


def _fetch_sdist(folder: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-d",
            str(folder),
            "vaderSentiment==3.3.2",
        ],
        check=True,
    )
    return folder / SDIST


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdist", type=Path, help=f"a local {SDIST} (default: pip download it)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("model.npz"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sdist = args.sdist or _fetch_sdist(Path(tmp))
        print(json.dumps(build(sdist, args.out), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
