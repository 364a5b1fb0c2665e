"""The "torture" stream: the demo stream plus what breaks a sync into a production CRM.

``generate_torture(out_dir, messages=3000, seed=1)`` writes replay files (one per network)
with exactly ``messages`` distinct messages: the demo stream
(:func:`~scrm_replay.demo.generate_demo`) plus

* authors whose display name is 300+ characters (emoji, accents, quotes), and authors
  whose name is SOQL- and HTML-like (``O'Brien' OR Name != '``, ``<b>&amp;``);
* texts of 60,000 and 66,000 characters (over Salesforce's 32,000 for a SocialPost's
  Content, and HubSpot's 65,536 for a note body), with characters outside the BMP;
* complaint threads whose first message is deleted after the case was opened (the
  case's subject was that message's text), sometimes with a reply deleted too;
* re-deliveries of old versions after an edit: an older ``message.edited`` after a
  newer one, and the original ``message.created`` again.

Every message that is deleted carries a unique token (``«gone:N»``) at the start of its
text, in every version, so a test can search every field of every CRM record for
``«gone:`` and prove that no deleted text (nor a subject or draft made from it) survived.
The complaint threads open with the word "refund": route ``keywords_any = ["refund"]``
to a case (:data:`TORTURE_ROUTING` is a ready ``[routing]`` section).

:func:`expected_torture` reads the files back and says what a CRM fed with them must
hold: each message's final text (the highest version, never an older one delivered
late) or that it is deleted, each message's author, every author, and the tokens.
:func:`stored_text_matches` compares a CRM's copy with the expected text, allowing for
a text cut to the field's length (with scrm's marker stating the full length).
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from scrm_core import MessageCreated, MessageDeleted, MessageEdited, ProfileUpdated
from scrm_core.fitting import is_cut

from .demo import generate_demo
from .format import is_blank, parse_line
from .reader import LineReader

__all__ = [
    "GONE",
    "TORTURE_ROUTING",
    "TortureExpectation",
    "TortureStats",
    "expected_torture",
    "generate_torture",
    "stored_text_matches",
]

GONE = "«gone:"  # every deleted message's text starts with «gone:N»
TORTURE_ROUTING = """
[[routing.rules]]
name = "refunds"
when = { keywords_any = ["refund"] }
actions = [{ kind = "case" }, { kind = "priority", value = "high" }]

[[routing.rules]]
name = "complaints"
when = { labels_any = ["intent:complaint"] }
actions = [{ kind = "case" }]

[[routing.rules]]
name = "buyers"
when = { labels_any = ["intent:purchase"] }
actions = [{ kind = "lead" }]

[[routing.rules]]
name = "everything"
actions = [{ kind = "log" }]
"""
_OPTS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z
_LONG_NAME = 'Ζωή-Åsa 🙂 “the” "real" O\'Brien-Łukasiewicz ' * 8  # 360+ characters
_QUOTED = ["O'Brien' OR Name != '", 'Bobby"); DROP TABLE contacts;--', "<b>&amp; Ann</b>", "Zoë \\' \\\" %_*"]
_BODY = "Ünïcode ✓ 🙂 the kettle & the <lid> — "


@dataclass
class TortureStats:
    messages: int = 0
    long_names: int = 0
    quoted_names: int = 0
    long_texts: int = 0
    deleted_roots: int = 0
    deleted: int = 0
    stale_redeliveries: int = 0
    files: list[Path] = field(default_factory=list)


def _read(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _long_text(size: int, rng: random.Random) -> str:
    words = (_BODY * (size // len(_BODY) + 2))[: size - 20]
    return f"[{rng.randrange(10**6):06d}] " + words


def generate_torture(out_dir: Path, *, messages: int = 3000, seed: int = 1) -> TortureStats:
    """Write the torture stream into ``out_dir`` (created if needed) and say what it holds."""
    rng = random.Random(f"torture:{seed}")
    threads = max(6, messages // 250)
    injected = threads * 3
    if messages < injected + 50:
        raise ValueError(f"a torture stream needs at least {injected + 50} messages")
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = TortureStats(messages=messages)
    with tempfile.TemporaryDirectory(prefix="scrm-torture-") as tmp:
        generate_demo(Path(tmp), messages=messages - injected, seed=seed)
        streams = {path.name: _read(path) for path in sorted(Path(tmp).glob("*.ndjson"))}
    _rename_authors(streams, rng, stats)
    _lengthen_texts(streams, rng, stats)
    for _ in range(threads):
        _inject_deleted_root_thread(streams, rng, stats)
    _inject_stale_redeliveries(streams, rng, stats)
    _mark_deleted(streams, stats)
    for name, events in streams.items():
        path = out_dir / name
        path.write_bytes(b"".join(orjson.dumps(e, option=_OPTS) for e in events))
        stats.files.append(path)
    return stats


def _authors(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for event in events:
        author = event.get("message", {}).get("author") or event.get("profile")
        if author and author.get("account_id") and event["kind"] != "message.deleted":
            seen.setdefault(author["account_id"], author)
    return list(seen.values())


def _rename_authors(streams: dict[str, list[dict[str, Any]]], rng: random.Random, stats: TortureStats) -> None:
    for events in streams.values():
        authors = [a for a in _authors(events) if not a.get("handle", "").startswith("acme")]
        rng.shuffle(authors)
        picks = max(2, len(authors) // 100)
        names: dict[str, str] = {}
        for author in authors[:picks]:
            names[author["account_id"]] = _LONG_NAME + author["account_id"]
            stats.long_names += 1
        for i, author in enumerate(authors[picks : 2 * picks]):
            names[author["account_id"]] = _QUOTED[i % len(_QUOTED)] + f" {i}"
            stats.quoted_names += 1
        for event in events:
            person = event.get("message", {}).get("author") or event.get("profile")
            if person and person.get("account_id") in names:
                person["display_name"] = names[person["account_id"]]


def _lengthen_texts(streams: dict[str, list[dict[str, Any]]], rng: random.Random, stats: TortureStats) -> None:
    for events in streams.values():
        created = [e for e in events if e["kind"] == "message.created"]
        for i, event in enumerate(rng.sample(created, k=max(2, len(created) // 300))):
            event["message"]["text"] = _long_text(60_000 if i % 2 == 0 else 66_000, rng)
            stats.long_texts += 1
            for edit in events:
                if edit["kind"] == "message.edited" and edit["message"]["id"] == event["message"]["id"]:
                    edit["message"]["text"] = event["message"]["text"] + " (edited)"


def _inject_deleted_root_thread(
    streams: dict[str, list[dict[str, Any]]], rng: random.Random, stats: TortureStats
) -> None:
    name = rng.choice(sorted(streams))
    events = streams[name]
    authors = _authors(events)
    at = rng.randrange(len(events) // 10, len(events) * 8 // 10)
    anchor = next(e for e in events[at:] if e["kind"] == "message.created")["message"]
    network, when = anchor["network"], _time(anchor["created_at"])
    n = stats.deleted_roots
    root_id = f"torture-root-{n}"
    people = rng.sample(authors, k=3)

    def message(mid: str, author: dict[str, Any], text: str, minutes: int, **more: Any) -> dict[str, Any]:
        body = {"network": network, "id": mid, "author": author, "text": text,
                "created_at": _iso(when + timedelta(minutes=minutes))}  # fmt: skip
        return {"kind": "message.created", "message": {**body, **more}}

    root = message(root_id, people[0], f"My order #{n} arrived broken and I want a refund now, case {n}", 0)
    replies = [
        message(
            f"torture-reply-{n}-{k}",
            people[k],
            f"Same here about order #{n}, reply {k}",
            k,
            thread_root_id=root_id,
            parent_id=root_id,
        )
        for k in (1, 2)
    ]
    delete_root = {"kind": "message.deleted", "network": network, "message_id": root_id,
                   "deleted_at": _iso(when + timedelta(minutes=30))}  # fmt: skip
    later = [delete_root]
    if n % 2:
        later.append({"kind": "message.deleted", "network": network, "message_id": replies[0]["message"]["id"],
                      "deleted_at": _iso(when + timedelta(minutes=31))})  # fmt: skip
    events[at:at] = [root, *replies]
    gap = min(len(events), at + 3 + rng.randrange(10, 60))
    events[gap:gap] = later
    stats.deleted_roots += 1


def _inject_stale_redeliveries(
    streams: dict[str, list[dict[str, Any]]], rng: random.Random, stats: TortureStats
) -> None:
    for events in streams.values():
        created = [(i, e) for i, e in enumerate(events) if e["kind"] == "message.created"]
        chosen = sorted(rng.sample(created, k=max(2, len(created) // 200)), key=lambda t: -t[0])
        for k, (index, event) in enumerate(chosen):
            original = event["message"]
            first = _time(original["created_at"])
            v1 = {**original, "text": original["text"] + " [v1]", "edited_at": _iso(first + timedelta(minutes=5))}
            v2 = {**original, "text": original["text"] + " [v2]", "edited_at": _iso(first + timedelta(minutes=9))}
            if k % 2:
                tail = [  # the newer edit first, the older one delivered late (never seen before)
                    {"kind": "message.edited", "message": v2},
                    {"kind": "message.edited", "message": v1},
                    {"kind": "message.created", "message": dict(original)},
                ]
            else:
                tail = [
                    {"kind": "message.edited", "message": v1},
                    {"kind": "message.edited", "message": v2},
                    {"kind": "message.edited", "message": dict(v1)},  # the older version, delivered again
                    {"kind": "message.created", "message": dict(original)},  # and the original
                ]
            spot = min(len(events), index + 1 + rng.randrange(1, 40))
            events[spot:spot] = tail
            stats.stale_redeliveries += 2


def _mark_deleted(streams: dict[str, list[dict[str, Any]]], stats: TortureStats) -> None:
    for events in streams.values():
        gone = [e["message_id"] for e in events if e["kind"] == "message.deleted"]
        tokens = {mid: f"{GONE}{stats.deleted + i}» " for i, mid in enumerate(dict.fromkeys(gone))}
        stats.deleted += len(tokens)
        for event in events:
            message = event.get("message")
            if message is not None and message["id"] in tokens and not message["text"].startswith(GONE):
                message["text"] = tokens[message["id"]] + message["text"]


# ---------------------------------------------------------------- what a CRM must hold


@dataclass
class TortureExpectation:
    texts: dict[str, str | None]  # message external key -> final text; None: deleted (redacted)
    authors: dict[str, str]  # message external key -> its author's profile external key
    profiles: set[str]  # every author's profile external key
    display_names: dict[str, str]  # profile external key -> the latest display name
    deleted_tokens: set[str]


def expected_torture(paths: Iterable[Path]) -> TortureExpectation:
    texts: dict[str, str | None] = {}
    versions: dict[str, str] = {}
    authors: dict[str, str] = {}
    names: dict[str, str] = {}
    deleted: set[str] = set()
    tokens: set[str] = set()
    for path in paths:
        reader = LineReader(path, path.name, 0, 0)
        try:
            while (raw := reader.next_line()) is not None:
                if is_blank(raw):
                    continue
                event = parse_line(raw)
                if isinstance(event, MessageCreated | MessageEdited):
                    m = event.message
                    key = f"scrm:{m.key}"
                    if m.text.startswith(GONE):
                        tokens.add(m.text.split("»", 1)[0] + "»")
                    author = f"scrm:{m.author.key}"
                    if m.author.display_name:
                        names[author] = m.author.display_name
                    authors.setdefault(key, author)
                    version = m.edited_at.isoformat() if m.edited_at else ""
                    if key in deleted or (key in versions and version <= versions[key]):
                        continue
                    versions[key], texts[key] = version, m.text
                elif isinstance(event, MessageDeleted):
                    key = f"scrm:{event.message_key}"
                    deleted.add(key)
                    texts[key] = None
                elif isinstance(event, ProfileUpdated) and event.profile.display_name:
                    names[f"scrm:{event.profile.key}"] = event.profile.display_name
        finally:
            reader.close()
    return TortureExpectation(
        texts=texts,
        authors={k: v for k, v in authors.items() if k in texts},
        profiles={authors[k] for k in authors if k in texts},
        display_names=names,
        deleted_tokens=tokens,
    )


def stored_text_matches(stored: str | None, expected: str | None) -> bool:
    """Whether a CRM's copy is the expected text: equal, or cut with scrm's marker stating its full length."""
    if expected is None:
        return not stored
    stored = stored or ""
    if stored == expected:
        return True
    full = is_cut(stored)
    if full is None or full != len(expected):
        return False
    kept = stored[: stored.rindex("…[scrm: cut")]
    return bool(kept) and expected.startswith(kept)
