"""The polling cursor: the highest post id delivered, and what was delivered of the recent posts.

``v1:<last post id>:<window>``, e.g. ``v1:1234:0.3fa9c1,2.77b0e2,5.0c1d9a``. The window
lists the most recent delivered posts (highest ids first), each as the gap to the
previous id and a short hash of the ``raw`` text that was delivered. Re-checking those
posts on the next poll compares hashes, so an edit is reported once (and only when the
text changed), and resuming from any page's cursor repeats nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from scrm_core import Cursor, FatalError

__all__ = ["PollState", "text_hash"]

_CURSOR = re.compile(r"v1:(\d{1,19}):((?:\d{1,19}\.[0-9a-f]{6})(?:,\d{1,19}\.[0-9a-f]{6})*)?")


def text_hash(raw: str) -> str:
    """Six hex digits of SHA-256: enough to tell an edit from no edit, short enough for a cursor."""
    return hashlib.sha256(raw.encode()).hexdigest()[:6]


@dataclass
class PollState(Cursor):
    last_id: int = 0
    window: dict[int, str] = field(default_factory=dict)  # post id -> hash of the delivered text

    @classmethod
    def decode(cls, cursor: str) -> PollState:
        match = _CURSOR.fullmatch(cursor)
        if match is None:
            raise ValueError("expected 'v1:<post id>:...'")
        last_id = int(match.group(1))
        window: dict[int, str] = {}
        previous = last_id
        for entry in filter(None, (match.group(2) or "").split(",")):
            gap, digest = entry.split(".")
            previous -= int(gap)
            if previous <= 0:
                raise FatalError("discourse: the saved cursor is damaged (post ids below 1); reset the checkpoint")
            window[previous] = digest
        return cls(last_id, window)

    def dump(self) -> str:
        parts, previous = [], self.last_id
        for post_id in sorted(self.window, reverse=True):
            parts.append(f"{previous - post_id}.{self.window[post_id]}")
            previous = post_id
        return f"v1:{self.last_id}:{','.join(parts)}"

    def remember(self, post_id: int, raw: str, keep: int) -> None:
        """A post was delivered with this text; keep only the ``keep`` most recent."""
        if keep <= 0:
            return
        self.window[post_id] = text_hash(raw)
        while len(self.window) > keep:
            del self.window[min(self.window)]
