"""The two cursor forms, one per listening mode. Both are plain text and parse back.

* ``bsky-poll:v1:<base64url JSON>``: the last post emitted (``indexedAt`` in µs and URI,
  the order of the stream) and the latest posts emitted (URI, µs), which are re-checked
  for deletion and keep late-indexed posts from coming twice.
* ``bsky-js:v1:<time_us>``: Jetstream's own cursor, the ``time_us`` of the last event read
  (unix microseconds; https://github.com/bluesky-social/jetstream README).

A cursor of the other mode or of anything else is a :class:`FatalError`.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from scrm_core import Cursor
from scrm_core.errors import FatalError

__all__ = ["PollCursor", "jetstream_cursor", "parse_jetstream_cursor"]

_POLL = "bsky-poll:v1:"
_JETSTREAM = "bsky-js:v1:"


@dataclass
class PollCursor(Cursor):
    time_us: int = 0
    uri: str = ""
    recent: list[tuple[str, int]] = field(default_factory=list)
    #: ``indexedAt`` (µs) of the newest post dropped from ``recent``: older late posts are not looked for.
    floor: int = 0

    @property
    def position(self) -> tuple[int, str]:
        return self.time_us, self.uri

    def dump(self) -> str:
        data = {"t": self.time_us, "u": self.uri, "f": self.floor, "r": [[u, t] for u, t in self.recent]}
        raw = json.dumps(data, separators=(",", ":")).encode()
        return _POLL + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> PollCursor:
        if cursor.startswith(_JETSTREAM):
            raise FatalError(f"cursor {cursor[:40]!r} is a Jetstream cursor; this source is in poll mode")
        if not cursor.startswith(_POLL):
            raise FatalError(f"cursor {cursor[:40]!r} was not made by the bluesky adapter (expected {_POLL}...)")
        body = cursor.removeprefix(_POLL)
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            recent = [(str(u), int(t)) for u, t in data["r"]]
            return cls(int(data["t"]), str(data["u"]), recent, int(data["f"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise FatalError(f"cursor {cursor[:40]!r} is damaged: not a bluesky poll cursor") from None


def jetstream_cursor(time_us: int) -> str:
    return f"{_JETSTREAM}{time_us}"


def parse_jetstream_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if cursor.startswith(_POLL):
        raise FatalError(f"cursor {cursor[:40]!r} is a poll cursor; this source is in jetstream mode")
    value = cursor.removeprefix(_JETSTREAM)
    if not cursor.startswith(_JETSTREAM) or not value.isdigit():
        raise FatalError(f"cursor {cursor[:40]!r} was not made by the bluesky adapter (expected {_JETSTREAM}<time_us>)")
    return int(value)
