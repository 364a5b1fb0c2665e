#!/usr/bin/env python3
"""Listening match throughput: 1,000 queries compiled into one matcher vs evaluating each query.

Prints one JSON object. The headline is messages per CPU-second (``time.process_time``:
what the matcher costs, whatever else the shared machine runs); wall-clock rates are
shown beside it for reference only. All figures come from the same run, on the same
seeded data, pinned to one CPU; each is the median of several repeats:

* ``compiled``: ``compile_queries(queries).match(message)`` for every message (tokenize
  once, inverted index, evaluate only the candidate queries).
* ``baseline_naive``: tokenize each message once too, then evaluate every query's syntax
  tree against it (the obvious loop; on a sample, it is slow).
* ``baseline_tokenize_only``: only tokenizing the messages (the ceiling for any matcher
  that looks at every word).

Both matchers must return the same names for every sampled message, or the script fails.
The queries mix the shapes brand teams write, including every construct of the syntax
(NEAR/n, NEAR/nf, ONEAR, nested NEAR, "phrase"~n, ? and inner * wildcards, {CASE}).

    .venv/bin/python bench/bench_listening.py
    .venv/bin/python bench/bench_listening.py --queries 1000 --messages 50000 --repeats 5

Beside an older matcher (``--shapes classic`` keeps to the query shapes it read as today's
does; ``--listening-path`` imports ``scrm_listening`` from another checkout)::

    git archive 4a24bcc plugins/listening | tar -x -C /tmp/old
    .venv/bin/python bench/bench_listening.py --shapes classic --listening-path /tmp/old/plugins/listening
    .venv/bin/python bench/bench_listening.py --shapes classic
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from scrm.engine import tune_gc_for_throughput  # noqa: E402

from scrm_core import Message, SocialProfile  # noqa: E402

SYLLABLES = "ac me glo bex ini tech hoo li von ka zen trix qua lon vel ta nor dex pix ora lum ber sol ix".split()  # noqa: SIM905
PRODUCTS = "x200 pro max mini air one go plus lite ultra app card bank pay".split()  # noqa: SIM905
TOPICS = {
    "complaint": ["refund*", "broken", '"not working"', '"money back"', "scam", "cancel*", "overcharg*", "outage"],
    "praise": ["love", "great", "amazing", "recommend*", "thanks"],
    "purchase": ['"where can i buy"', "price", "discount*", '"in stock"', "preorder"],
    "support": ["help", "support", "password", "login", "account", '"customer service"'],
}
EXCLUDE = ["job", "hiring", "giveaway", "crypto", "nft", "lottery"]
NETWORKS = ["x", "mastodon", "bluesky", "reddit", "discourse", "matrix"]
_COMMON_TEXT = (
    "the a to and of i you it is in that my for this on was with but have just so be not are at they "
    "we what me your can if about all get one like out do up when there time how day today really "
    "still new now know people good got after back work going need week order phone app store "
    "update service team email home weather coffee game music movie weekend morning night friend"
)
COMMON = _COMMON_TEXT.split()
FOLLOWERS = [100, 1000, 10000]
EMOJI = ["😡", "😍", "🙏", "🔥", "👍", "😂"]


def brand_names(rng: random.Random, count: int) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        names.add("".join(rng.sample(SYLLABLES, rng.choice((2, 3)))))
    return sorted(names)


#: The first shapes (before NEAR/nf, "phrase"~n, ONEAR, nested NEAR, ? and {CASE}).
CLASSIC_SHAPES = 10


def make_queries(rng: random.Random, count: int, brands: list[str], classic: bool = False) -> dict[str, str]:
    """Query shapes in roughly the mix a brand team writes: mostly brand AND topic."""
    queries: dict[str, str] = {}
    shapes: list[Callable[[str, str], str]] = [
        lambda b, t: f"{b} AND ({' OR '.join(rng.sample(TOPICS[t], 3))}) -{rng.choice(EXCLUDE)}",
        lambda b, t: f"({b} OR #{b} OR @{b}support) {rng.choice(TOPICS[t])}",
        lambda b, t: f'"{b} {rng.choice(PRODUCTS)}" OR {b}{rng.choice(PRODUCTS)}',
        lambda b, t: f"{b} NEAR/{rng.randint(2, 6)} ({' OR '.join(rng.sample(TOPICS[t], 2))})",
        lambda b, t: f"{b}* lang:{rng.choice(['en', 'fr', 'de'])} -{rng.choice(EXCLUDE)} -{rng.choice(EXCLUDE)}",
        lambda b, t: f"${b} OR ({b} AND (stock OR shares OR earnings))",
        lambda b, t: f"@{b}support is:reply",
        lambda b, t: (
            f"({b} OR {rng.choice(brands)}) network:{rng.choice(NETWORKS)} min_followers:{rng.choice(FOLLOWERS)}"
        ),
        lambda b, t: f"#{b}fail OR (#{b} {rng.choice(TOPICS['complaint'])})",
        lambda b, t: f"{b} has:links -giveaway",
        lambda b, t: f"{b} NEAR/{rng.randint(1, 4)}f ({' OR '.join(rng.sample(TOPICS[t], 2))})",
        lambda b, t: f'"{b} {rng.choice(PRODUCTS)}"~{rng.randint(1, 3)} -{rng.choice(EXCLUDE)}',
        lambda b, t: f"({b} ONEAR/2 {rng.choice(PRODUCTS)}) NEAR/4 ({' OR '.join(rng.sample(TOPICS[t], 2))})",
        lambda b, t: f"{{{b.upper()}}} AND (colo?r OR {b[:3]}?{b[4:]} OR cust*er*)",
    ]
    if classic:
        shapes = shapes[:CLASSIC_SHAPES]
    while len(queries) < count:
        brand, topic = rng.choice(brands), rng.choice(list(TOPICS))
        queries[f"q{len(queries):04d}"] = rng.choice(shapes)(brand, topic)
    return queries


def make_messages(rng: random.Random, count: int, brands: list[str]) -> list[Message]:
    topic_words = [w.strip('"*') for ws in TOPICS.values() for w in ws] + ["refunded", "cancelled", "recommended"]
    topic_words += ["colour", "color", "customer", "customers"]
    created = datetime(2026, 1, 1, tzinfo=UTC)
    messages = []
    for i in range(count):
        words = rng.choices(COMMON, k=rng.randint(6, 30))
        if rng.random() < 0.3:  # most of a firehose is not about any brand
            for _ in range(rng.randint(1, 2)):
                brand = rng.choice(brands)
                forms = [brand, brand.capitalize(), brand.upper(), f"#{brand}", f"@{brand}support", f"${brand.upper()}"]
                form = rng.choice(forms)
                if rng.random() < 0.3:
                    form += " " + rng.choice(PRODUCTS)
                words.insert(rng.randrange(len(words) + 1), form)
            for _ in range(rng.randint(0, 3)):
                words.insert(rng.randrange(len(words) + 1), rng.choice(topic_words))
        if rng.random() < 0.2:
            words.append(rng.choice(EMOJI))
        if rng.random() < 0.1:
            words.append(f"https://example.com/p/{i}")
        author = SocialProfile(
            network="x", account_id=str(i % 5000), handle=f"user{i % 5000}", followers=rng.choice([3, 80, 500, 20000])
        )
        messages.append(
            Message(
                network=rng.choice(NETWORKS),
                id=str(i),
                author=author,
                text=" ".join(words),
                created_at=created,
                language=rng.choice(["en", "en", "en", "fr", "de", None]),
                parent_id=str(i - 1) if rng.random() < 0.3 else None,
            )
        )
    return messages


def pin_to_one_cpu() -> int | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = max(os.sched_getaffinity(0))  # the last CPU: other work on this machine tends to sit on the first
    os.sched_setaffinity(0, {cpu})
    return cpu


class Timing:
    """Median CPU seconds and median wall seconds of several runs."""

    def __init__(self, cpu: list[float], wall: list[float]) -> None:
        self.each = cpu
        self.cpu = statistics.median(cpu)
        self.wall = statistics.median(wall)

    def rates(self, count: int) -> dict[str, float]:
        return {
            "messages_per_cpu_s": round(count / self.cpu),
            "us_cpu_per_message": round(self.cpu / count * 1e6, 2),
            "messages_per_wall_s": round(count / self.wall),
            "cpu_seconds_each_repeat": [round(seconds, 3) for seconds in self.each],
        }


def timed(repeats: int, run: Callable[[], Any]) -> tuple[Timing, Any]:
    """CPU and wall time of ``repeats`` runs (medians), and the last run's result."""
    cpu, wall, result = [], [], None
    for _ in range(repeats):
        gc.collect()  # each repeat starts from the same heap
        started_cpu, started_wall = time.process_time(), time.perf_counter()
        result = run()
        cpu.append(time.process_time() - started_cpu)
        wall.append(time.perf_counter() - started_wall)
    return Timing(cpu, wall), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--naive-messages", type=int, default=2_000, help="sample for the (slow) naive baseline")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    parser.add_argument("--shapes", choices=["all", "classic"], default="all", help="classic: the older shapes only")
    parser.add_argument(
        "--listening-path",
        type=Path,
        default=ROOT / "plugins" / "listening",
        help="where scrm_listening is imported from",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(args.listening_path.resolve()))
    listening = importlib.import_module("scrm_listening")
    Doc, compile_queries, evaluate, parse = (
        listening.Doc,
        listening.compile_queries,
        listening.evaluate,
        listening.parse,
    )

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    pinned = None if args.no_pin else pin_to_one_cpu()
    rng = random.Random(args.seed)
    brands = brand_names(rng, 300)
    queries = make_queries(rng, args.queries, brands, classic=args.shapes == "classic")
    messages = make_messages(rng, args.messages, brands)
    tune_gc_for_throughput()  # as `scrm run` does: the 50,000 messages are not rescanned by every collection

    compile_time, matcher = timed(args.repeats, lambda: compile_queries(queries))
    parsed = [(name, parse(text).root) for name, text in queries.items()]
    sample = messages[: args.naive_messages]

    def compiled() -> list[list[str]]:
        match = matcher.match
        return [match(m) for m in messages]

    def naive() -> list[list[str]]:
        out = []
        for m in sample:
            doc = Doc(m)
            out.append([name for name, root in parsed if evaluate(root, doc)])
        return out

    def tokenize_only() -> int:
        return sum(len(Doc(m).tokens) for m in messages)

    compiled_time, compiled_results = timed(args.repeats, compiled)
    naive_time, naive_results = timed(max(1, args.repeats // 2), naive)
    tokenize_time, _ = timed(args.repeats, tokenize_only)
    if compiled_results[: len(sample)] != naive_results:
        raise SystemExit("compiled matcher and naive evaluation disagree")

    matched = sum(1 for names in compiled_results if names)
    candidates = [matcher.candidates(m) for m in sample]
    compiled_rate = len(messages) / compiled_time.cpu
    naive_rate = len(sample) / naive_time.cpu
    report = {
        "benchmark": "listening",
        "headline": "messages per CPU-second (process_time), compiled matcher, 1,000 queries",
        "messages_per_cpu_s": round(compiled_rate),
        "target_messages_per_cpu_s": 50_000,
        "speedup_vs_naive_cpu": round(compiled_rate / naive_rate, 1),
        "share_of_tokenize_only_cpu": round(compiled_time.cpu / tokenize_time.cpu, 2),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus_available": cpus,
        "pinned_to_one_cpu": pinned is not None,
        "gc": "tuned as scrm run (freeze + threshold 50000)",
        "listening_from": str(Path(listening.__file__).resolve().parent),
        "query_shapes": args.shapes,
        "seed": args.seed,
        "repeats": args.repeats,
        "queries": len(queries),
        "messages": len(messages),
        "compile_cpu_ms": round(compile_time.cpu * 1000, 1),
        "compiled": {
            **compiled_time.rates(len(messages)),
            "messages_matched": matched,
            "matches": sum(len(names) for names in compiled_results),
            "mean_candidates_evaluated": round(statistics.mean(candidates), 2),
        },
        "baseline_naive": {
            "messages": len(sample),
            **naive_time.rates(len(sample)),
            "queries_evaluated_per_message": len(queries),
        },
        "baseline_tokenize_only": tokenize_time.rates(len(messages)),
        "identical_results_on_sample": True,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
