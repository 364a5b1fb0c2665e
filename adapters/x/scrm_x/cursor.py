"""X cursors: ``x1;m=<since_id>;s=<since_id>;p=<position>;w=<ids>``.

* ``m`` / ``s``: the ``since_id`` of the mentions and the search listing at the start of
  the current poll round (``-``: never polled), i.e. the newest post id that round began after;
* ``p``: inside a round, the ``<original id>.<version id>`` of the last post handed out
  (``-`` between rounds). A round is re-fetched from ``m``/``s`` and what sorts at or
  before ``p`` is skipped, so resuming yields exactly what came after the page;
* ``w``: the ids of the most recent messages, looked up again to detect deletions
  (X sends no deletion events to pollers).

Everything is a decimal post id, so a cursor never holds a secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from scrm_core import Cursor as CursorBase

__all__ = ["Cursor"]

_FORMAT = re.compile(r"x1;m=(\d+|-);s=(\d+|-);p=(\d+\.\d+|-);w=((?:\d+(?:,\d+)*)?)")


@dataclass(frozen=True)
class Cursor(CursorBase):
    mentions: int | None = None
    search: int | None = None
    position: tuple[int, int] | None = None
    window: tuple[int, ...] = field(default_factory=tuple)

    def dump(self) -> str:
        pos = "-" if self.position is None else f"{self.position[0]}.{self.position[1]}"
        return f"x1;m={_num(self.mentions)};s={_num(self.search)};p={pos};w={','.join(map(str, self.window))}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        match = _FORMAT.fullmatch(text)
        if match is None:
            raise ValueError("expected 'x1;m=<id>;s=<id>;p=<pos>;w=<ids>'")
        m, s, p, w = match.groups()
        position = None if p == "-" else (int(p.split(".")[0]), int(p.split(".")[1]))
        return cls(_int(m), _int(s), position, tuple(int(i) for i in w.split(",") if i))


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)


def _int(value: str) -> int | None:
    return None if value == "-" else int(value)
