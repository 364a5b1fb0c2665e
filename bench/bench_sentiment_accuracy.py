#!/usr/bin/env python3
"""Three-class sentiment accuracy of the scrm-sentiment plugin beside VADER alone, and what each costs.

Prints one JSON object. For each labelled set in bench/data (see bench/data/README.md):

* ``plugin``: the plugin's hook (VADER stacked with word n-grams), told the text is
  English; macro F1 over negative/neutral/positive, per-class precision/recall/F1,
  confusion matrix.
* ``vader``: VADER alone with its documented thresholds (the plugin until 0.1): the
  baseline to beat, in the same run.
* ``plugin_after_language_plugin``: as the pipeline runs it, the language plugin first;
  when it calls a text non-English, the plugin abstains and the message gets no
  sentiment, counted here as neutral.
* ``trained_on``: whether the plugin's model learnt from this set. VADER's tweets were
  (with the movie-review and editorial snippets); the Amazon snippets and the airline
  tweets were not: those are the held-out figures.
* ``baseline_majority``: always the set's most frequent class (a trivial baseline; it
  knows the class balance of the very set it is scored on, so it is if anything flattered).

``cost`` is the hook's time per message on one pinned CPU: ``cold`` with every text new
to its cache, ``cached`` for a repeated text; VADER alone, as the plugin computes it and
as vaderSentiment does (the same scores: tests/test_vader.py); and the language plugin's,
for the pipeline's budget. ``--baseline`` adds another copy of the plugin (an older
commit's) measured beside this one, texts in turns, with how many texts both score alike.

    .venv/bin/python bench/bench_sentiment_accuracy.py
    git archive 2bd7a8b plugins/sentiment | tar -x -C /tmp/old
    .venv/bin/python bench/bench_sentiment_accuracy.py --baseline /tmp/old/plugins/sentiment/scrm_sentiment
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

DATA = Path(__file__).parent / "data"
CLASSES = ("negative", "neutral", "positive")
#: Mean human rating on VADER's -4..+4 scale -> class: at least half a scale step from
#: neutral counts as positive or negative.
RATING_NEUTRAL_BELOW = 0.5

Example = tuple[str, str]  # (text, gold class)


def vader_ground_truth() -> list[Example]:
    """Hutto & Gilbert's 4,200 tweets, each the mean of 20 human ratings (-4..+4)."""
    examples = []
    with (DATA / "vader_tweets_groundtruth.tsv").open(encoding="utf-8") as fh:
        for line in fh:
            _, rating, text = line.rstrip("\r\n").split("\t", 2)
            mean = float(rating)
            gold = "neutral" if abs(mean) < RATING_NEUTRAL_BELOW else ("positive" if mean > 0 else "negative")
            examples.append((text, gold))
    return examples


def vader_amazon_snippets() -> list[Example]:
    """Hutto & Gilbert's 3,708 Amazon review snippets (held out from the plugin's training)."""
    examples = []
    with (DATA / "vader_amazon_snippets_groundtruth.tsv").open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            parts = line.rstrip("\r\n").split("\t", 2)
            if len(parts) < 3:
                continue
            mean = float(parts[1])
            gold = "neutral" if abs(mean) < RATING_NEUTRAL_BELOW else ("positive" if mean > 0 else "negative")
            examples.append((parts[2], gold))
    return examples


def airline_sample() -> list[Example]:
    """356 tweets to six US airlines, Feb 2015, labelled by CrowdFlower contributors."""
    with (DATA / "airline_tweets_sample.csv").open(encoding="utf-8", newline="") as fh:
        return [(row["text"], row["airline_sentiment"]) for row in csv.DictReader(fh)]


def scores(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, object]:
    confusion = {g: dict.fromkeys(CLASSES, 0) for g in CLASSES}
    for g, p in zip(gold, predicted, strict=True):
        confusion[g][p] += 1
    per_class = {}
    for c in CLASSES:
        tp = confusion[c][c]
        predicted_c = sum(confusion[g][c] for g in CLASSES)
        actual_c = sum(confusion[c].values())
        precision = tp / predicted_c if predicted_c else 0.0
        recall = tp / actual_c if actual_c else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[c] = {"precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3), "n": actual_c}
    return {
        "macro_f1": round(sum(float(v["f1"]) for v in per_class.values()) / len(CLASSES), 3),
        "accuracy": round(sum(confusion[c][c] for c in CLASSES) / len(gold), 3),
        "per_class": per_class,
        "confusion_gold_to_predicted": confusion,
    }


def evaluate(examples: list[Example], trained_on: bool) -> dict[str, object]:
    from scrm_language.plugin import scrm_detect_language
    from scrm_sentiment import vader_label
    from scrm_sentiment.plugin import scrm_analyze_sentiment

    def plugin(text: str, language: str | None) -> str:
        sentiment = scrm_analyze_sentiment(text, language)
        return sentiment.label if sentiment else "neutral"  # no mood known: nothing to show in the CRM

    gold = [g for _, g in examples]
    with_language = [(t, scrm_detect_language(t)) for t, _ in examples]
    majority = Counter(gold).most_common(1)[0][0]
    return {
        "examples": len(examples),
        "trained_on": trained_on,
        "class_counts": dict(Counter(gold)),
        "plugin": scores(gold, [plugin(t, "en") for t, _ in examples]),
        "vader": scores(gold, [vader_label(t) for t, _ in examples]),
        "plugin_after_language_plugin": {
            "abstained_as_not_english": sum(1 for _, lang in with_language if lang not in (None, "en")),
            **scores(gold, [plugin(t, lang) for t, lang in with_language]),
        },
        "baseline_majority": {"always": majority, **scores(gold, [majority] * len(gold))},
    }


def microseconds_per_call(fn: Callable[[str], object], texts: Sequence[str]) -> float:
    started = time.process_time()
    for text in texts:
        fn(text)
    return round((time.process_time() - started) / len(texts) * 1e6, 1)


def load_package(folder: Path) -> ModuleType:
    """Another copy of a plugin package (e.g. an older commit's, from git archive), imported
    under another name so that it runs beside the installed one."""
    name = f"baseline_{folder.name}"
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if spec is None or spec.loader is None:
        raise SystemExit(f"{folder}: not a package folder")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _forget(analyzer: ModuleType) -> None:
    """Empty an analyzer module's cache of results: ``clear_cache`` now, the lru_cache before."""
    if hasattr(analyzer, "clear_cache"):
        analyzer.clear_cache()
    if hasattr(analyzer._analyze, "cache_clear"):
        analyzer._analyze.cache_clear()


def cold_microseconds(analyzers: dict[str, ModuleType], texts: list[str], rounds: int = 5) -> dict[str, float]:
    """CPU µs per new text of each analyzer's ``_analyze`` (its cache emptied first): the
    best of ``rounds`` rounds, the analyzers taking turns within each round."""
    best = dict.fromkeys(analyzers, float("inf"))
    for r in range(rounds):
        for name, module in list(analyzers.items())[:: 1 if r % 2 == 0 else -1]:
            _forget(module)
            best[name] = min(best[name], microseconds_per_call(module._analyze, texts))
    return best


def cost(texts: list[str], baseline: Path | None) -> dict[str, object]:
    from scrm_language.plugin import scrm_detect_language
    from scrm_sentiment import analyzer, vader_label
    from scrm_sentiment.analyzer import _analyze, model
    from scrm_sentiment.plugin import scrm_analyze_sentiment
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # type: ignore[import-untyped]

    def sentiment(text: str) -> object:
        return scrm_analyze_sentiment(text, "en")

    model()  # loaded once per process, not per message
    _forget(analyzer)
    cold = microseconds_per_call(sentiment, texts)  # every text seen for the first time
    vader = microseconds_per_call(vader_label, texts)
    reference = SentimentIntensityAnalyzer().polarity_scores
    vader_reference = microseconds_per_call(reference, texts)
    out: dict[str, object] = {
        "sentiment_us_per_message_cold": cold,
        "vader_alone_us_per_message": vader,
        "vader_reference_us_per_message": vader_reference,
        "vader_speedup_vs_reference": round(vader_reference / vader, 2) if vader else 0.0,
        "plugin_to_vader_cost_ratio": round(cold / vader, 2) if vader else 0.0,
        "sentiment_us_per_message_cached": microseconds_per_call(sentiment, texts),
        "language_us_per_message": microseconds_per_call(scrm_detect_language, texts),
        "messages": len(texts),
    }
    if baseline is not None:
        old = load_package(baseline).analyzer
        old.model()
        best = cold_microseconds({"current": analyzer, "baseline": old}, texts)
        same = sum(1 for t in texts if old._analyze(t) == _analyze(t))
        out["beside_baseline"] = {
            "baseline": str(baseline),
            "current_us_per_new_text": round(best["current"], 1),
            "baseline_us_per_new_text": round(best["baseline"], 1),
            "ratio_current_to_baseline": round(best["current"] / best["baseline"], 3),
            "same_score_and_label": f"{same} of {len(texts)}",
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another scrm_sentiment package folder (e.g. from git archive) whose cost per new text is measured "
        "beside this one, with a count of texts both score the same",
    )
    args = parser.parse_args()
    cpu = max(os.sched_getaffinity(0))  # one CPU, as bench_pipeline does: these machines are noisy
    os.sched_setaffinity(0, {cpu})
    loaders = {
        "vader_tweets_groundtruth.tsv": (vader_ground_truth, True),
        "vader_amazon_snippets_groundtruth.tsv": (vader_amazon_snippets, False),
        "airline_tweets_sample.csv": (airline_sample, False),
    }
    # A set whose licence does not suit a deployment may be deleted: the others still run.
    sets = {
        name.split(".")[0]: (load(), trained) for name, (load, trained) in loaders.items() if (DATA / name).exists()
    }
    report = {
        "machine": {"python": platform.python_version(), "cpu": cpu, "platform": platform.platform()},
        "rating_rule": f"vader sets: |mean rating| < {RATING_NEUTRAL_BELOW} -> neutral, else by sign",
        "datasets": {name: evaluate(examples, trained) for name, (examples, trained) in sets.items()},
        "cost": cost([t for examples, _ in sets.values() for t, _ in examples], args.baseline),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
