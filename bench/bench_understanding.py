#!/usr/bin/env python3
"""CPU cost of each understanding hook per message, on the demo stream, optionally beside an older copy of the plugins.

    .venv/bin/python bench/bench_understanding.py                       # 20,000 demo messages
    .venv/bin/python bench/bench_understanding.py --distinct            # each text once: no cache hits
    git archive 2bd7a8b plugins | tar -x -C /tmp/old
    .venv/bin/python bench/bench_understanding.py --baseline-root /tmp/old

Prints one JSON object. The demo stream (``scrm_replay.demo``, the data bench_pipeline.py
replays) is parsed once; then each hook the pipeline's understanding step calls runs on
every message in pipeline order: ``scrm_detect_language`` (for messages whose network
stated no language), ``scrm_analyze_sentiment``, ``scrm_listening_match`` (five brand
queries), ``scrm_classify_message`` of scrm-intent and scrm-influence, each called
directly (the dispatch around them is the engine's, measured by bench_pipeline.py).

Figures are CPU µs per message of the stream (language detection's too, although it
runs only for the messages whose network stated no language) (``process_time``, one pinned CPU), the best of
``--rounds`` rounds; every round starts with the plugins' text caches emptied (a new
stream) and their per-word caches warm (a running one). With ``--baseline-root`` (a tree
holding ``plugins/<name>/scrm_<name>``, e.g. an older commit's), the baseline's copy of
each plugin found there runs beside the installed one, the two taking turns round by
round, and the answers of both are compared message by message.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

PLUGINS = ("language", "sentiment", "listening", "intent", "influence")


def load_plugin(name: str, root: Path | None) -> ModuleType | None:
    """``scrm_<name>.plugin``: the installed one, or the copy under ``root`` (imported under
    another package name so both run in one process); None when ``root`` has none."""
    if root is None:
        return importlib.import_module(f"scrm_{name}.plugin")
    folder = root / "plugins" / name / f"scrm_{name}"
    if not (folder / "__init__.py").exists():
        return None
    package = f"baseline_scrm_{name}"
    spec = importlib.util.spec_from_file_location(
        package, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[package] = module
    spec.loader.exec_module(module)
    return importlib.import_module(f"{package}.plugin")


def implementation(plugin: ModuleType, hook: str, queries: dict[str, str]) -> tuple[Callable[..., Any], object]:
    """What answers ``hook`` in ``plugin``: its module function (plugins that keep no state),
    or the method of the object it builds from the configuration (``scrm_register_processors``)
    or registers as a classifier (``scrm_register_classifiers``), as a plugin host would.
    Returns the callable and the object holding its state (the module for a function)."""
    fn = getattr(plugin, hook, None)
    if fn is not None:
        return fn, plugin
    built: list[object] = []
    if hasattr(plugin, "scrm_register_processors"):
        listening = SimpleNamespace(queries=[SimpleNamespace(name=n, query=q) for n, q in queries.items()])
        plugin.scrm_register_processors(config=SimpleNamespace(listening=listening), register=built.append)
    if hasattr(plugin, "scrm_register_classifiers"):
        plugin.scrm_register_classifiers(register=built.append)
    for obj in built:
        method = getattr(obj, hook, None)
        if method is not None:
            return method, obj
    raise SystemExit(f"{plugin.__name__} answers no {hook}")


HOOKS = {
    "language": "scrm_detect_language",
    "sentiment": "scrm_analyze_sentiment",
    "listening": "scrm_listening_match",
    "intent": "scrm_classify_message",
    "influence": "scrm_classify_message",
}


def clear_text_caches(plugin: ModuleType, holder: object) -> None:
    """Empty what a plugin remembers of whole texts (not its per-word caches)."""
    package = sys.modules[plugin.__name__.rsplit(".", 1)[0]]
    detector = getattr(plugin, "DETECTOR", None)  # older plugins: a module global
    if detector is None and hasattr(plugin, "detector"):
        detector = plugin.detector()  # built at the first post, once per process
    if detector is not None and hasattr(detector, "_cache"):
        detector._cache.clear()
    analyzer = getattr(package, "analyzer", None)
    if analyzer is not None and hasattr(analyzer, "clear_cache"):
        analyzer.clear_cache()
    if analyzer is not None and hasattr(getattr(analyzer, "_analyze", None), "cache_clear"):
        analyzer._analyze.cache_clear()  # older plugins: an lru_cache
    classifier = getattr(plugin, "CLASSIFIER", holder)  # older plugins kept one in the module
    if hasattr(classifier, "current"):
        answers = getattr(classifier.current().model, "_answers", None)
        if answers is not None:
            answers.clear()


def warm_up(plugin: ModuleType, message: Any, queries: dict[str, str]) -> None:
    """Load what each plugin loads on first use (models, word lists), outside the timing."""
    detector = getattr(plugin, "DETECTOR", None)
    if detector is None and hasattr(plugin, "detector"):
        detector = plugin.detector()
    if detector is not None and hasattr(detector, "load"):
        detector.load()


def demo_messages(count: int, seed: int) -> list[Any]:
    from pydantic import TypeAdapter
    from scrm_replay.demo import generate_demo

    from scrm_core.models import Event, MessageCreated

    events: TypeAdapter[Any] = TypeAdapter(Event)
    out = []
    with tempfile.TemporaryDirectory(prefix="scrm-bench-understanding-") as tmp:
        generate_demo(Path(tmp), messages=count, seed=seed)
        for path in sorted(Path(tmp).glob("*.ndjson")):
            with path.open("rb") as fh:
                for line in fh:
                    event = events.validate_json(line)
                    if isinstance(event, MessageCreated):
                        out.append(event.message)
    return out


def calls(
    name: str,
    fn: Callable[..., Any],
    stateless: bool,
    messages: list[Any],
    queries: dict[str, str],
    unstated: list[str],
) -> Callable[[], list[Any]]:
    """One pass of the hook over the messages (inputs prepared beforehand); returns its answers.
    ``unstated``: the texts of the messages whose network stated no language; ``stateless``: a
    module function (older listening plugins took the queries with each message)."""
    if name == "language":
        return lambda: list(map(fn, unstated))
    if name == "sentiment":
        pairs = [(m.text, m.language) for m in messages]
        return lambda: [fn(t, lang) for t, lang in pairs]
    if name == "listening" and stateless:
        return lambda: [fn(m, queries) for m in messages]
    return lambda: list(map(fn, messages))


def comparable(name: str, answers: list[Any]) -> list[Any]:
    if name == "sentiment":
        return [(a.score, a.label) if a is not None else None for a in answers]
    return answers


def measure(
    name: str,
    plugins: dict[str, ModuleType],
    messages: list[Any],
    queries: dict[str, str],
    unstated: list[str],
    rounds: int,
) -> dict[str, object]:
    best = dict.fromkeys(plugins, float("inf"))
    answers: dict[str, list[Any]] = {}
    found = {label: implementation(plugin, HOOKS[name], queries) for label, plugin in plugins.items()}
    passes = {
        label: calls(name, fn, holder is plugins[label], messages, queries, unstated)
        for label, (fn, holder) in found.items()
    }
    for label in found:  # first use (models, word lists) outside the timing
        warm_up(plugins[label], messages[0], queries)
        passes[label]()
    for r in range(rounds):
        for label in list(plugins)[:: 1 if r % 2 == 0 else -1]:
            clear_text_caches(plugins[label], found[label][1])
            started = time.process_time()
            answers[label] = passes[label]()
            best[label] = min(best[label], time.process_time() - started)
    out: dict[str, object] = {label: round(cpu / len(messages) * 1e6, 2) for label, cpu in best.items()}
    if "baseline" in plugins:
        out["ratio_current_to_baseline"] = round(best["current"] / best["baseline"], 3) if best["baseline"] else None
        same = sum(
            1
            for a, b in zip(comparable(name, answers["current"]), comparable(name, answers["baseline"]), strict=True)
            if a == b
        )
        out["same_answers"] = f"{same} of {len(answers['current'])}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="demo messages to generate")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--distinct", action="store_true", help="keep each text once (no cache hits)")
    parser.add_argument("--baseline-root", type=Path, help="a tree with plugins/<name>/scrm_<name> to run beside")
    args = parser.parse_args()
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_pipeline import LISTENING_QUERIES

    queries = {q["name"]: q["query"] for q in tomllib.loads(LISTENING_QUERIES)["listening"]["queries"]}
    messages = demo_messages(args.messages, args.seed)
    if args.distinct:
        seen: set[str] = set()
        messages = [m for m in messages if not (m.text in seen or seen.add(m.text))]  # type: ignore[func-returns-value]

    # Inputs as the pipeline has them when each hook runs: the language (detected unless the
    # network stated it) before sentiment, the sentiment before intent.
    unstated = [m.text for m in messages if m.language is None]
    language = load_plugin("language", None)
    sentiment = load_plugin("sentiment", None)
    assert language is not None and sentiment is not None
    for m in messages:
        if m.language is None:
            m.language = language.scrm_detect_language(m.text)
        m.sentiment = sentiment.scrm_analyze_sentiment(m.text, m.language)

    report: dict[str, Any] = {
        "benchmark": "understanding",
        "python": platform.python_version(),
        "cpu": cpu,
        "messages": len(messages),
        "distinct_texts": len({m.text for m in messages}),
        "network_stated_language": len(messages) - len(unstated),
        "rounds": args.rounds,
        "baseline_root": str(args.baseline_root) if args.baseline_root else None,
        "us_per_message": {},
    }
    totals: dict[str, float] = {}
    for name in PLUGINS:
        plugins = {"current": load_plugin(name, None)}
        if args.baseline_root:
            plugins["baseline"] = load_plugin(name, args.baseline_root)
        found = {label: p for label, p in plugins.items() if p is not None}
        figures = measure(name, found, messages, queries, unstated, args.rounds)
        report["us_per_message"][name] = figures
        for label in found:
            totals[label] = totals.get(label, 0.0) + float(figures[label])  # type: ignore[arg-type]
    report["total_us_per_message"] = {label: round(v, 1) for label, v in totals.items()}
    report["messages_per_cpu_second_understanding_alone"] = {label: round(1e6 / v) for label, v in totals.items() if v}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
