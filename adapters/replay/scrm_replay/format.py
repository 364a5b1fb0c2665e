"""The NDJSON replay format: one :data:`scrm_core.Event` per line, as its JSON model dump.

Parsing goes straight from bytes through pydantic-core's Rust JSON parser (one
``validate_json`` call per line), which is several times faster than ``json.loads`` plus
model validation, and lets a bad line be reported on its own without stopping the file.
"""

from __future__ import annotations

import re

from pydantic import TypeAdapter, ValidationError

from scrm_core import Event

__all__ = ["EVENT_ADAPTER", "MAX_REASON", "dump_event", "is_blank", "parse_line"]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
#: Longest reason kept for a rejected line; never the line itself, which may be huge.
MAX_REASON = 200
_TAGS = frozenset({"message.created", "message.edited", "message.deleted", "profile.updated"})
_LINE_1 = re.compile(r" at line 1 column ")


def dump_event(event: Event) -> bytes:
    """One event as a replay line (with its trailing newline). ``None`` fields are left out."""
    return EVENT_ADAPTER.dump_json(event, exclude_none=True) + b"\n"


def parse_line(line: bytes) -> Event | str:
    """The event on ``line``, or a short reason why it is not one."""
    try:
        return EVENT_ADAPTER.validate_json(line)
    except ValidationError as exc:
        return _reason(exc)


def _reason(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    parts = []
    for err in errors[:3]:
        if err["type"] == "union_tag_invalid":
            parts.append(f"kind: unknown event kind {err.get('ctx', {}).get('tag')!r}")
            continue
        if err["type"] == "union_tag_not_found":
            parts.append("kind: field required (message.created, message.edited, ...)")
            continue
        loc = [str(p) for p in err["loc"]]
        if loc and loc[0] in _TAGS:  # the discriminator's branch name, not a field
            loc = loc[1:]
        msg = _LINE_1.sub(" at column ", err["msg"])
        parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
    if len(errors) > 3:
        parts.append(f"(+{len(errors) - 3} more)")
    reason = "; ".join(parts)
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


def is_blank(line: bytes) -> bool:
    return not line or line.isspace()
