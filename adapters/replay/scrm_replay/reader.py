"""Complete lines of one file, from a byte offset, in bounded memory.

Reads are plain blocking ``read()`` calls of at most 1 MiB on a local file. They are
done on the event loop on purpose: one such read takes well under a millisecond, and
the time that matters is spent parsing, which holds the GIL anyway, so a worker thread
would add a hop per chunk without freeing the loop. Memory holds one chunk (or one
line, if a line is longer than a chunk), never the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from scrm_core import FatalError

__all__ = ["CHUNK", "LineReader"]

CHUNK = 1 << 20


class LineReader:
    """Yields lines ending in ``\\n``; an unterminated last line (still being written) is left unread."""

    def __init__(self, path: Path, label: str, offset: int, line: int) -> None:
        self.label = label
        self.offset = offset  #: where the next unread line starts
        self.line = line  #: lines consumed so far
        self._buf = b""
        self._pos = 0
        try:
            self._file = path.open("rb")
        except OSError as exc:  # gone or unreadable since the paths were expanded
            raise FatalError(f"replay: cannot read {label!r}: {exc.strerror or exc}") from exc
        try:
            self._check_resume_point()
        except BaseException:
            self._file.close()
            raise

    def _check_resume_point(self) -> None:
        size = self.size()
        if self.offset > size:
            raise FatalError(
                f"replay: cursor points at byte {self.offset} of {self.label!r}, which has only {size} bytes; "
                "the file was truncated or replaced. Reset the source's checkpoint to read it again."
            )
        if self.offset:
            self._file.seek(self.offset - 1)
            if self._file.read(1) != b"\n":
                raise FatalError(
                    f"replay: cursor points at byte {self.offset} of {self.label!r}, which is not the start of "
                    "a line; the file was changed. Reset the source's checkpoint to read it again."
                )

    def size(self) -> int:
        return os.fstat(self._file.fileno()).st_size

    def next_line(self) -> bytes | None:
        """The next complete line without its ``\\n``, or None when no complete line is left (yet)."""
        buf, pos = self._buf, self._pos
        nl = buf.find(b"\n", pos)
        while nl < 0:
            more = self._file.read(CHUNK)
            if not more:
                return None
            searched = len(buf) - pos  # do not rescan the unterminated tail
            buf = self._buf = buf[pos:] + more
            pos = self._pos = 0
            nl = buf.find(b"\n", searched)
        self._pos = nl + 1
        self.offset += nl + 1 - pos
        self.line += 1
        return buf[pos:nl]

    def close(self) -> None:
        self._file.close()
