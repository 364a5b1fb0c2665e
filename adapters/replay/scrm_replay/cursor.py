"""Replay cursors: ``v1:<line>:<offset>:<file>``.

``file`` is the file's path relative to the config's folder (absolute when it lies
outside), ``offset`` the byte offset where the next unread line starts and ``line`` the
number of lines consumed so far in that file (so the next line is ``line + 1``). The file
comes last so that a name holding ``:`` (a Windows drive, a timestamp) still parses.
Resuming seeks straight to ``offset``: no rescan, whatever the size of the file.
"""

from __future__ import annotations

from dataclasses import dataclass

from scrm_core import FatalError

__all__ = ["Cursor"]

_VERSION = "v1"


@dataclass(frozen=True, slots=True)
class Cursor:
    file: str
    offset: int
    line: int

    def encode(self) -> str:
        return f"{_VERSION}:{self.line}:{self.offset}:{self.file}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        parts = text.split(":", 3)
        if len(parts) != 4 or parts[0] != _VERSION or not parts[3]:
            raise FatalError(_bad(text, "expected 'v1:<line>:<offset>:<file>'"))
        _, line, offset, file = parts
        if not all(p.isascii() and p.isdigit() for p in (line, offset)):
            raise FatalError(_bad(text, "line and offset must be non-negative integers"))
        n, pos = int(line), int(offset)
        if pos < n or (n == 0 and pos > 0):  # every line takes at least one byte
            raise FatalError(_bad(text, "line and offset disagree"))
        return cls(file=file, offset=pos, line=n)


def _bad(text: str, why: str) -> str:
    shown = text if len(text) <= 120 else text[:117] + "..."
    return f"replay: invalid cursor {shown!r}: {why}"
