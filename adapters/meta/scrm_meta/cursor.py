"""Poll cursors: ``meta1|<platform>|<unix seconds>|<tag>|<tag>...``.

The Graph API times everything to the second (``created_time``, ``updated_time``,
``timestamp``), so a cursor holds the newest second delivered so far and the events
already delivered *at* that second (``c<id>`` created, ``e<id>`` edited). Resuming yields
the events after that second plus those at it not yet listed: exactly once, even when a
second comment lands within the same second after the page was cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scrm_core import Cursor, FatalError

__all__ = ["PollCursor"]

_VERSION = "meta1"


@dataclass
class PollCursor(Cursor):
    platform: str
    second: int = 0
    tags: set[str] = field(default_factory=set)

    def after(self, second: int, tag: str) -> bool:
        """Whether the event (second, tag) comes after this cursor."""
        return second > self.second or (second == self.second and tag not in self.tags)

    def advance(self, second: int, tag: str) -> None:
        if second > self.second:
            self.second, self.tags = second, {tag}
        else:
            self.tags.add(tag)

    def dump(self) -> str:
        return "|".join([_VERSION, self.platform, str(self.second), *sorted(self.tags)])

    @classmethod
    def read(cls, text: str, platform: str) -> PollCursor:
        """The cursor saved as ``text`` by a source of ``platform`` (a cursor of the other platform is refused)."""
        parts = text.split("|")
        if len(parts) < 3 or parts[0] != _VERSION:
            raise FatalError(
                _bad(text, "not a cursor this adapter produced (expected 'meta1|<platform>|<seconds>|...')")
            )
        if parts[1] != platform:
            raise FatalError(_bad(text, f"it belongs to a {parts[1]!r} source, this one reads {platform!r}"))
        if not (parts[2].isascii() and parts[2].isdigit()):
            raise FatalError(_bad(text, "the time must be whole Unix seconds"))
        tags = parts[3:]
        if not all(len(t) > 1 and t[0] in "ce" for t in tags):
            raise FatalError(_bad(text, "event tags must be c<id> or e<id>"))
        return cls(platform, int(parts[2]), set(tags))


def _bad(text: str, why: str) -> str:
    shown = text if len(text) <= 120 else text[:117] + "..."
    return f"meta: invalid cursor {shown!r}: {why}"
