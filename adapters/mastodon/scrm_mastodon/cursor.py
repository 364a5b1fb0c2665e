"""The Mastodon cursor: where each source stands, and the recent statuses to re-check.

Format (plain text; :meth:`Cursor.parse` reads it back, :meth:`Cursor.dump` writes it)::

    n:<notification id>|s:<own status id>|w:<status id>[~<edited_at epoch>],...

``n`` and ``s`` are the ``min_id`` of the next request (the newest id already delivered; 0
at the start); ``w`` is the re-check window: the most recent statuses delivered and the
version (``edited_at`` as Unix seconds) last delivered for each, so an edit or deletion
found on re-check is delivered once, even after a restart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from scrm_core import Cursor as CursorBase

__all__ = ["Cursor", "id_key"]

_CURSOR = re.compile(r"n:(\d+)\|s:(\d+)\|w:((?:\d+(?:~\d+)?(?:,\d+(?:~\d+)?)*)?)")


def id_key(value: str) -> tuple[int, str]:
    """Mastodon ids are strings of digits that sort as numbers (docs: "cast from an integer")."""
    return (len(value), value)


@dataclass
class Cursor(CursorBase):
    notifications: str = "0"
    own: str = "0"
    window: dict[str, int] = field(default_factory=dict)  # status id -> edited_at epoch (0: never edited)

    @classmethod
    def decode(cls, text: str) -> Cursor:
        match = _CURSOR.fullmatch(text)
        if match is None:
            raise ValueError("expected 'n:<id>|s:<id>|w:...'")
        window: dict[str, int] = {}
        for item in filter(None, match.group(3).split(",")):
            status_id, _, version = item.partition("~")
            window[status_id] = int(version or 0)
        return cls(match.group(1), match.group(2), window)

    def dump(self) -> str:
        items = ",".join(
            f"{sid}~{v}" if v else sid for sid, v in sorted(self.window.items(), key=lambda p: id_key(p[0]))
        )
        return f"n:{self.notifications}|s:{self.own}|w:{items}"

    def copy(self) -> Cursor:
        return Cursor(self.notifications, self.own, dict(self.window))

    def remember(self, status_id: str, version: int, keep: int) -> None:
        """Add a delivered status to the window, keeping the ``keep`` most recent ids."""
        self.window[status_id] = max(version, self.window.get(status_id, 0))
        if len(self.window) > keep:
            for old in sorted(self.window, key=id_key)[: len(self.window) - keep]:
                del self.window[old]
