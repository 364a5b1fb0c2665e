"""Replay cursors: ``v1:<line>:<offset>:<file>``.

``file`` is the file's path relative to the config's folder (absolute when it lies
outside), ``offset`` the byte offset where the next unread line starts and ``line`` the
number of lines consumed so far in that file (so the next line is ``line + 1``). The file
comes last so that a name holding ``:`` (a Windows drive, a timestamp) still parses.
Resuming seeks straight to ``offset``: no rescan, whatever the size of the file.
"""

from __future__ import annotations

from dataclasses import dataclass

from scrm_core import Cursor as CursorBase

__all__ = ["Cursor"]

_VERSION = "v1"


@dataclass(frozen=True, slots=True)
class Cursor(CursorBase):
    file: str = ""  # "": before the first file
    offset: int = 0
    line: int = 0

    def dump(self) -> str:
        return f"{_VERSION}:{self.line}:{self.offset}:{self.file}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        parts = text.split(":", 3)
        if len(parts) != 4 or parts[0] != _VERSION or not parts[3]:
            raise ValueError("expected 'v1:<line>:<offset>:<file>'")
        _, line, offset, file = parts
        if not all(p.isascii() and p.isdigit() for p in (line, offset)):
            raise ValueError("line and offset must be non-negative integers")
        n, pos = int(line), int(offset)
        if pos < n or (n == 0 and pos > 0):  # every line takes at least one byte
            raise ValueError("line and offset disagree")
        return cls(file=file, offset=pos, line=n)
