#!/usr/bin/env python3
"""Validate the held-out evaluation sets in this directory and print their counts as JSON.

    python3 bench/data/eval/check_eval.py            # counts on stdout, problems on stderr
    python3 bench/data/eval/check_eval.py --quiet    # only the exit status

Checks the schema of every record (naming file, line and field on failure), that ids and
texts are unique, and the minimum counts the sets were built to (see README.md). Exits 1 if
anything is wrong. Standard library only: it must run before any virtualenv exists.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

INTENT_LABELS = ("complaint", "question", "purchase", "praise", "spam", "none")
NETWORKS = {"mastodon", "bluesky", "x", "reddit", "facebook", "instagram"}
INTENT_MAIN_LANGUAGES = ("es", "pt", "fr", "de")  # each >= 90 posts and >= 10 per label
INTENT_LANGUAGES = {"en", "es", "pt", "fr", "de", "it", "nl"}
DETECT_LANGUAGES = ("en", "es", "pt", "fr", "de", "it", "nl", "ja", "zh", "ru")
DIALECTS = {"brandwatch", "talkwalker", "sentione", "x", "onesight"}
MESSAGE_FIELDS = {"text", "language", "author", "network", "hashtags", "mentions"}
# The constructs issue 13 says were silently misread: each must be in listening.jsonl.
ISSUE_QUERIES = ('"acme support"~3', "colo?r", "acme ONEAR/3 kettle", "acme~3", "{ACME}")
BCP47 = re.compile(r"^[a-z]{2,3}(-[A-Z]{2}|-[A-Za-z]{4})?$")


class Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")


def records(path: Path, problems: Problems) -> Iterator[tuple[str, dict[str, Any]]]:
    """(location, record) for each line; unparsable lines are reported and skipped."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            where = f"{path.name}:{number}"
            if not line.strip():
                problems.add(where, "empty line")
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                problems.add(where, f"not JSON ({error.msg})")
                continue
            if not isinstance(record, dict):
                problems.add(where, "not a JSON object")
                continue
            yield where, record


def require_str(where: str, record: dict[str, Any], field: str, problems: Problems) -> str:
    value = record.get(field)
    if not isinstance(value, str) or not value.strip():
        problems.add(where, f"field {field!r} must be a non-empty string")
        return ""
    return value


def unique(where: str, value: str, seen: set[str], what: str, problems: Problems) -> None:
    key = value.casefold()
    if key in seen:
        problems.add(where, f"duplicate {what} {value!r}")
    seen.add(key)


def check_intent(problems: Problems) -> dict[str, Any]:
    path = HERE / "intent.jsonl"
    ids: set[str] = set()
    texts: set[str] = set()
    by_label: Counter[str] = Counter()
    by_language: Counter[str] = Counter()
    by_tag: Counter[str] = Counter()
    by_network: Counter[str] = Counter()
    cells: Counter[tuple[str, str]] = Counter()
    for where, record in records(path, problems):
        extra = set(record) - {"id", "text", "lang", "label", "network", "notes"}
        if extra:
            problems.add(where, f"unknown fields {sorted(extra)}")
        unique(where, require_str(where, record, "id", problems), ids, "id", problems)
        unique(where, require_str(where, record, "text", problems), texts, "text", problems)
        tag = require_str(where, record, "lang", problems)
        label = require_str(where, record, "label", problems)
        if tag and not BCP47.match(tag):
            problems.add(where, f"field 'lang' {tag!r} is not a BCP-47 tag like 'pt-BR'")
        language = tag.split("-")[0]
        if tag and language not in INTENT_LANGUAGES:
            problems.add(where, f"field 'lang' {tag!r} is not one of {sorted(INTENT_LANGUAGES)}")
        if label and label not in INTENT_LABELS:
            problems.add(where, f"field 'label' {label!r} is not one of {list(INTENT_LABELS)}")
        network = record.get("network")
        if network is not None and network not in NETWORKS:
            problems.add(where, f"field 'network' {network!r} is not one of {sorted(NETWORKS)}")
        if "notes" in record and not isinstance(record["notes"], str):
            problems.add(where, "field 'notes' must be a string")
        by_label[label] += 1
        by_language[language] += 1
        by_tag[tag] += 1
        by_network[str(network)] += 1
        cells[(language, label)] += 1
    total = sum(by_label.values())
    if total < 750:
        problems.add(path.name, f"{total} posts, need at least 750")
    if by_language["en"] < 300:
        problems.add(path.name, f"{by_language['en']} English posts, need at least 300")
    for label in INTENT_LABELS:
        if by_label[label] < 60:
            problems.add(path.name, f"{by_label[label]} posts labelled {label}, need at least 60")
    for language in INTENT_MAIN_LANGUAGES:
        if by_language[language] < 90:
            problems.add(path.name, f"{by_language[language]} posts in {language}, need at least 90")
        for label in INTENT_LABELS:
            if cells[(language, label)] < 10:
                problems.add(
                    path.name, f"{cells[(language, label)]} {language} posts labelled {label}, need at least 10"
                )
    languages = sorted(by_language, key=lambda code: (-by_language[code], code))
    return {
        "total": total,
        "by_label": {label: by_label[label] for label in INTENT_LABELS},
        "by_language": {code: by_language[code] for code in languages},
        "by_language_tag": dict(sorted(by_tag.items())),
        "by_language_and_label": {code: {label: cells[(code, label)] for label in INTENT_LABELS} for code in languages},
        "by_network": dict(sorted(by_network.items())),
    }


def check_language(problems: Problems) -> dict[str, Any]:
    path = HERE / "language.jsonl"
    ids: set[str] = set()
    texts: set[str] = set()
    by_language: Counter[str] = Counter()
    lengths: list[int] = []
    for where, record in records(path, problems):
        extra = set(record) - {"id", "text", "lang", "notes"}
        if extra:
            problems.add(where, f"unknown fields {sorted(extra)}")
        unique(where, require_str(where, record, "id", problems), ids, "id", problems)
        text = require_str(where, record, "text", problems)
        unique(where, text, texts, "text", problems)
        language = require_str(where, record, "lang", problems)
        if language and language not in DETECT_LANGUAGES:
            problems.add(where, f"field 'lang' {language!r} is not one of {list(DETECT_LANGUAGES)}")
        by_language[language] += 1
        lengths.append(len(text))
    total = len(lengths)
    if total < 300:
        problems.add(path.name, f"{total} posts, need at least 300")
    for language in DETECT_LANGUAGES:
        if by_language[language] < 30:
            problems.add(path.name, f"{by_language[language]} posts in {language}, need at least 30")
    under_60 = sum(length < 60 for length in lengths)
    if total and under_60 * 2 <= total:
        problems.add(path.name, f"only {under_60} of {total} posts are under 60 characters; most should be")
    return {
        "total": total,
        "by_language": {language: by_language[language] for language in DETECT_LANGUAGES},
        "under_60_chars": under_60,
        "max_chars": max(lengths, default=0),
    }


def check_message(where: str, message: Any, problems: Problems) -> None:
    if isinstance(message, str):
        if not message.strip():
            problems.add(where, "empty message text")
        return
    if not isinstance(message, dict):
        problems.add(where, "a message is a string or an object with 'text'")
        return
    if not isinstance(message.get("text"), str) or not message["text"].strip():
        problems.add(where, "message object needs a non-empty 'text'")
    extra = set(message) - MESSAGE_FIELDS
    if extra:
        problems.add(where, f"message has unknown fields {sorted(extra)}")


def check_columns(where: str, record: dict[str, Any], query: str, problems: Problems) -> None:
    column = record.get("column")
    if not isinstance(column, int) or isinstance(column, bool) or not 1 <= column <= len(query) + 1:
        problems.add(where, f"field 'column' must be an int from 1 to {len(query) + 1}")
        return
    accepted = record.get("acceptable_columns")
    if accepted is not None and (not isinstance(accepted, list) or column not in accepted):
        problems.add(where, "field 'acceptable_columns' must be a list that includes 'column'")


def check_listening(problems: Problems) -> dict[str, Any]:
    path = HERE / "listening.jsonl"
    ids: set[str] = set()
    queries: set[str] = set()
    by_dialect: Counter[str] = Counter()
    by_expect: Counter[str] = Counter()
    constructs: Counter[str] = Counter()
    refusal_acceptable = 0
    for where, record in records(path, problems):
        unique(where, require_str(where, record, "id", problems), ids, "id", problems)
        query = require_str(where, record, "query", problems)
        if query in queries:
            problems.add(where, f"duplicate query {query!r}")
        queries.add(query)
        dialect = require_str(where, record, "dialect", problems)
        if dialect and dialect not in DIALECTS:
            problems.add(where, f"field 'dialect' {dialect!r} is not one of {sorted(DIALECTS)}")
        sources = record.get("sources")
        if (
            not isinstance(sources, list)
            or not sources
            or not all(isinstance(source, dict) and source.get("key") and source.get("ref") for source in sources)
        ):
            problems.add(where, "field 'sources' must be a non-empty list of {key, ref}")
        tags = record.get("constructs")
        if not isinstance(tags, list) or not tags:
            problems.add(where, "field 'constructs' must be a non-empty list")
        else:
            constructs.update(str(tag) for tag in tags)
        expect = record.get("expect")
        by_dialect[dialect] += 1
        by_expect[str(expect)] += 1
        if expect == "refuse":
            check_columns(where, record, query, problems)
        elif expect == "match":
            for field in ("should_match", "should_not_match"):
                messages = record.get(field)
                if not isinstance(messages, list) or len(messages) < 2:
                    problems.add(where, f"field {field!r} must list at least 2 messages")
                    continue
                for message in messages:
                    check_message(f"{where} {field}", message, problems)
            if not isinstance(record.get("refusal_acceptable"), bool):
                problems.add(where, "field 'refusal_acceptable' must be true or false")
            elif record["refusal_acceptable"]:
                refusal_acceptable += 1
                check_columns(where, record, query, problems)
        else:
            problems.add(where, f"field 'expect' must be 'match' or 'refuse', not {expect!r}")
    total = sum(by_expect.values())
    if total < 40:
        problems.add(path.name, f"{total} queries, need at least 40")
    for query in ISSUE_QUERIES:
        if query not in queries:
            problems.add(path.name, f"the query {query!r} from issue 13 is missing")
    return {
        "total": total,
        "by_expect": dict(sorted(by_expect.items())),
        "match_where_refusal_is_acceptable": refusal_acceptable,
        "by_dialect": dict(sorted(by_dialect.items())),
        "constructs": dict(sorted(constructs.items())),
    }


def main(argv: list[str]) -> int:
    problems = Problems()
    counts = {
        "intent": check_intent(problems),
        "language": check_language(problems),
        "listening": check_listening(problems),
    }
    if "--quiet" not in argv:
        print(json.dumps(counts, indent=2, ensure_ascii=False))
    for problem in problems.items:
        print(problem, file=sys.stderr)
    return 1 if problems.items else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
