#!/usr/bin/env python3
"""Score scrm's listening parser and matcher on the held-out set bench/data/eval/listening.jsonl.

Prints one JSON object. Scoring follows bench/data/eval/README.md:

* a ``refuse`` query passes if parsing fails at ``column`` (or one of ``acceptable_columns``);
  if it parses, that is a **silent misread**; refused at another column, a (non-silent)
  wrong-column failure;
* a ``match`` query passes if it parses, every ``should_match`` message matches and no
  ``should_not_match`` one does; when ``refusal_acceptable`` is true, a refusal at the
  stated column passes too. A query that parses and gets any message wrong is a silent
  misread; a refusal the set does not accept is a (non-silent) failure.

The compiled matcher and the reference evaluator must agree on every message.

    .venv/bin/python bench/eval_listening.py            # summary; failures listed with --details
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from scrm_core import Message, SocialProfile  # noqa: E402

DEFAULT = ROOT / "bench" / "data" / "eval" / "listening.jsonl"
#: Messages that name no network are read as posts on X (the set's messages are social posts).
DEFAULT_NETWORK = "x"


def to_message(raw: str | dict[str, Any], number: int) -> Message:
    data: dict[str, Any] = {"text": raw} if isinstance(raw, str) else dict(raw)
    network = data.get("network") or DEFAULT_NETWORK
    author = SocialProfile(network=network, account_id=f"author-{number}", handle=data.get("author"))
    return Message(
        network=network,
        id=str(number),
        author=author,
        text=data["text"],
        created_at=datetime(2026, 12, 7, tzinfo=UTC),
        language=data.get("language"),
        hashtags=list(data.get("hashtags") or []),
        mentions=list(data.get("mentions") or []),
    )


def score(record: dict[str, Any], listening: Any) -> dict[str, Any]:
    QuerySyntaxError, compile_queries, matches, parse = (
        listening.QuerySyntaxError,
        listening.compile_queries,
        listening.matches,
        listening.parse,
    )
    columns = {record.get("column"), *(record.get("acceptable_columns") or [])} - {None}
    try:
        query = parse(record["query"])
    except QuerySyntaxError as exc:
        accepted = record["expect"] == "refuse" or bool(record.get("refusal_acceptable"))
        at_column = exc.column in columns
        outcome = "pass (refused)" if accepted and at_column else "refused, not accepted"
        if accepted and not at_column:
            outcome = "refused at another column"
        return {"outcome": outcome, "column": exc.column, "expected_columns": sorted(columns), "error": exc.message}
    if record["expect"] == "refuse":
        return {"outcome": "silent misread", "reading": str(query), "why": "parsed, but must be refused"}
    matcher = compile_queries({"q": query})
    wrong = []
    number = 0
    for expected, key in ((True, "should_match"), (False, "should_not_match")):
        for raw in record[key]:
            number += 1
            message = to_message(raw, number)
            got = matcher.match(message) == ["q"]
            if got != matches(query, message):
                raise SystemExit(f"{record['id']}: the matcher and the reference evaluator disagree on {raw!r}")
            if got != expected:
                wrong.append({"message": raw, "expected": expected})
    if wrong:
        return {"outcome": "silent misread", "reading": str(query), "wrong": wrong}
    return {"outcome": "pass"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--details", action="store_true", help="list every failure with the query and messages")
    parser.add_argument(
        "--listening-path", type=Path, default=ROOT / "plugins" / "listening", help="where scrm_listening comes from"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(args.listening_path.resolve()))
    listening = importlib.import_module("scrm_listening")
    records = [json.loads(line) for line in args.path.read_text(encoding="utf-8").splitlines() if line.strip()]
    results = {r["id"]: {**score(r, listening), "query": r["query"], "dialect": r.get("dialect")} for r in records}
    outcomes: dict[str, int] = {}
    for result in results.values():
        outcomes[result["outcome"]] = outcomes.get(result["outcome"], 0) + 1
    report: dict[str, Any] = {
        "set": str(args.path.relative_to(ROOT) if args.path.is_relative_to(ROOT) else args.path),
        "listening_from": str(Path(listening.__file__).resolve().parent),
        "queries": len(records),
        "outcomes": outcomes,
        "silent_misreads": sorted(i for i, r in results.items() if r["outcome"] == "silent misread"),
        "other_failures": sorted(i for i, r in results.items() if not r["outcome"].startswith(("pass", "silent"))),
    }
    if args.details:
        report["failures"] = {i: r for i, r in results.items() if not r["outcome"].startswith("pass")}
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
