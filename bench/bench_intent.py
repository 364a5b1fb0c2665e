#!/usr/bin/env python3
"""Intent accuracy of the installed plugins, beside scrm-intent's old keyword rules, on one evaluation set.

    .venv/bin/python bench/bench_intent.py [--data bench/data/eval/intent.jsonl]

The evaluation set is JSON lines with ``id``, ``text``, ``lang`` and ``label`` (one of
complaint, question, purchase, praise, spam, none), written independently of the model
and its training examples (see bench/data/eval/README.md). Nothing here trains or tunes.

Each post goes through the pipeline's own understanding step
(:class:`scrm.engine.understand.Understander`, what ``scrm run`` calls) with every
installed plugin, the network stating no language (the language plugin detects it). The
answer is the ``intent:*`` label with the highest confidence; ``intent:unsure`` and no
label both count as "none". Prints one JSON object: per-label precision/recall/F1,
macro-F1 over the five intents, complaint recall, macro-F1 on the non-English part and
per language, for the model and for the rules (``scrm_intent.rules``, the plugin until
0.1); and the CPU cost per post of the model, one at a time and in batches.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from scrm.engine.understand import Understander
from scrm.plugins import PluginHost

from scrm_core import Message, SocialProfile

INTENTS = ("complaint", "question", "purchase", "praise", "spam")
LABELS = (*INTENTS, "none")
DEFAULT_DATA = Path(__file__).parent / "data" / "eval" / "intent.jsonl"


def load(path: Path) -> list[dict[str, str]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("label") not in LABELS or not isinstance(row.get("text"), str):
            raise SystemExit(f"{path}:{n}: needs 'text' and 'label' in {LABELS}")
        rows.append(row)
    return rows


def scores(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, object]:
    per: dict[str, dict[str, float]] = {}
    for label in LABELS:
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p == label)
        said, actual = list(predicted).count(label), list(gold).count(label)
        precision = tp / said if said else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per[label] = {"precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3), "n": actual}
    present = [label for label in INTENTS if per[label]["n"]]
    macro = sum(per[label]["f1"] for label in present) / len(present) if present else 0.0
    return {
        "n": len(gold),
        "macro_f1": round(macro, 3),
        "accuracy": round(sum(1 for g, p in zip(gold, predicted, strict=True) if g == p) / len(gold), 3)
        if gold
        else 0.0,
        "per_label": per,
    }


def report(rows: list[dict[str, str]], predicted: Sequence[str]) -> dict[str, object]:
    gold = [r["label"] for r in rows]
    out = scores(gold, predicted)
    per = out["per_label"]
    assert isinstance(per, dict)
    out["complaint_recall"] = per["complaint"]["recall"]
    other = [i for i, r in enumerate(rows) if (r.get("lang") or "en").split("-")[0] != "en"]
    out["non_english"] = scores([gold[i] for i in other], [predicted[i] for i in other]) if other else None
    by_lang: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_lang.setdefault((r.get("lang") or "?").split("-")[0], []).append(i)
    out["per_language_macro_f1"] = {
        lang: {"n": len(idx), "macro_f1": scores([gold[i] for i in idx], [predicted[i] for i in idx])["macro_f1"]}
        for lang, idx in sorted(by_lang.items())
    }
    return out


def intent_of(message: Message) -> str:
    found = [(message.label_confidence.get(x, 0.0), x) for x in message.labels if x.startswith("intent:")]
    if not found:
        return "none"
    label = max(found)[1].removeprefix("intent:")
    return label if label in INTENTS else "none"


async def pipeline(rows: list[dict[str, str]], host: PluginHost) -> tuple[list[Message], float]:
    understander = Understander(host.hooks, {})
    author = SocialProfile(network="bench", account_id="eval")
    now = datetime.now(UTC)
    messages = [
        Message(network="bench", id=str(r.get("id", i)), author=author, text=r["text"], created_at=now)
        for i, r in enumerate(rows)
    ]
    await understander.understand(Message(network="bench", id="warm-up", author=author, text="warm up", created_at=now))
    started = time.process_time()
    for m in messages:
        await understander.understand(m)
    return messages, time.process_time() - started


def model_cost(texts: list[str], repeat: int = 3) -> dict[str, float]:
    """CPU µs per post of the intent model alone: one at a time (the hook) for a post it has
    not seen (its answer cache emptied first; words seen before, as in a running stream) and
    for a repeated one, and in batches."""
    from scrm_intent import IntentClassifier

    model = IntentClassifier().current().model
    model.predict(texts[0])
    one = repeated = batch = float("inf")
    for _ in range(repeat):
        model._answers.clear()
        started = time.process_time()
        for t in texts:
            model.predict(t)
        one = min(one, time.process_time() - started)
        started = time.process_time()
        for t in texts:
            model.predict(t)
        repeated = min(repeated, time.process_time() - started)
        started = time.process_time()
        for i in range(0, len(texts), 256):
            model.predict_many(texts[i : i + 256])
        batch = min(batch, time.process_time() - started)
    return {
        "one_at_a_time_us": round(one / len(texts) * 1e6, 1),
        "one_at_a_time_repeated_post_us": round(repeated / len(texts) * 1e6, 1),
        "batched_us": round(batch / len(texts) * 1e6, 1),
        "batched_texts_per_cpu_second": round(len(texts) / batch) if batch else 0.0,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(json.dumps({"error": f"no evaluation data at {args.data}"}))
        return 2
    rows = load(args.data)
    host = PluginHost().load()
    messages, cpu = asyncio.run(pipeline(rows, host))

    from scrm_intent import rules

    rules_predicted = [(rules.classify(r["text"]) or "intent:none").removeprefix("intent:") for r in rows]
    model_predicted = [intent_of(m) for m in messages]
    texts = list(dict.fromkeys(r["text"] for r in rows))
    result = {
        "data": str(args.data),
        "plugins": sorted(host.plugins),
        "model": report(rows, model_predicted),
        "old_rules": report(rows, rules_predicted),
        "unsure_share": round(sum(1 for m in messages if "intent:unsure" in m.labels) / len(messages), 3),
        "pipeline_understanding_cpu_us_per_post": round(cpu / len(rows) * 1e6, 1),
        "intent_model_cost": model_cost(texts),
    }
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
