from __future__ import annotations

import glob
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic import Field

from scrm_core import Event, EventPage, FatalError, NetworkCapability, PollingAdapter, PollingSettings

from .cursor import Cursor
from .format import is_blank, parse_line
from .reader import LineReader

__all__ = ["ReplayAdapter", "ReplaySettings"]


class ReplaySettings(PollingSettings):
    paths: list[str] = Field(
        min_length=1,
        description="Files or glob patterns (``**`` allowed), relative to the config file's folder. "
        "All matches are read in sorted order.",
    )
    page_size: int = Field(default=500, ge=1, le=10_000, description="Most events (plus rejects) per page.")
    poll_seconds: float = Field(
        default=1.0, gt=0, le=3600, description="Seconds between looks at the last file in follow mode."
    )


class ReplayAdapter(PollingAdapter[ReplaySettings, Cursor]):
    """Replays recorded events; in follow mode, tails the last file like ``tail -f``."""

    name = "replay"
    Settings = ReplaySettings
    cursor_type = Cursor
    capabilities = frozenset({NetworkCapability.poll, NetworkCapability.edits, NetworkCapability.deletes})

    def files(self) -> list[tuple[str, Path]]:
        """``(label, path)`` of every matching file, sorted by label; the label is what cursors hold."""
        found: dict[str, Path] = {}
        for pattern in self.settings.paths:
            full = self.context.resolve_path(pattern)
            if any(ch in str(full) for ch in "*?["):
                matches = [Path(p) for p in glob.glob(str(full), recursive=True)]
            else:
                matches = [full]
            matches = [m for m in matches if m.is_file()]
            if not matches:
                raise FatalError(f"replay: no file matches {pattern!r} (looked for {full})")
            for m in matches:
                found[self._label(m)] = m
        return sorted(found.items())

    def local_problems(self) -> list[str]:
        problems = []
        for i, pattern in enumerate(self.settings.paths):  # each pattern on its own: every miss at once
            one = ReplayAdapter(self.settings.model_copy(update={"paths": [pattern]}), self.context)
            try:
                one.files()
            except FatalError as exc:
                problems.append(f"paths[{i}]: {exc.operator_message}")
        return problems

    def _label(self, path: Path) -> str:
        try:
            return path.relative_to(self.context.base_dir).as_posix()
        except ValueError:
            return path.as_posix()

    async def poll(self, cursor: Cursor) -> AsyncIterator[EventPage]:
        """Every complete line after ``cursor``, in pages; a file still being written is read
        again from the page's cursor at the next pass (``follow``)."""
        files = self.files()
        first, offset, line = 0, 0, 0
        if cursor.file:
            labels = [label for label, _ in files]
            if cursor.file not in labels:
                raise FatalError(
                    f"replay: the cursor refers to {cursor.file!r}, which is no longer among the files matched by "
                    f"paths={self.settings.paths!r}. Restore the file or reset the source's checkpoint."
                )
            first, offset, line = labels.index(cursor.file), cursor.offset, cursor.line
        events: list[Event] = []
        rejects: list[tuple[str, str]] = []
        for index in range(first, len(files)):
            label, path = files[index]
            reader = LineReader(path, label, offset, line) if index == first else LineReader(path, label, 0, 0)
            try:
                while True:
                    full = _fill(reader, events, rejects, self.settings.page_size)
                    if full or (index == len(files) - 1 and (events or rejects)):
                        # Pages may span files: the cursor only ever names the file read last.
                        # model_construct: the events are validated already; don't check 500 models again.
                        yield EventPage.model_construct(
                            events=events, cursor=Cursor(label, reader.offset, reader.line).dump(), rejects=rejects
                        )
                        events, rejects = [], []
                    if not full:
                        break
            finally:
                reader.close()


def _fill(reader: LineReader, events: list[Event], rejects: list[tuple[str, str]], limit: int) -> bool:
    """Parse lines into the page until it is full (True) or no complete line is left (False)."""
    while len(events) + len(rejects) < limit:
        raw = reader.next_line()
        if raw is None:
            return False
        if is_blank(raw):
            continue
        parsed = parse_line(raw)
        if isinstance(parsed, str):
            rejects.append((f"{reader.label}:{reader.line}", parsed))
        else:
            events.append(parsed)
    return True
