"""What ``scrm config check`` can tell about the state store without opening it for work."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["LOW_SPACE_BYTES", "sqlite_file_problems"]

#: Less free space than this on the state's disk is worth a warning.
LOW_SPACE_BYTES = 64 * 1024 * 1024


def _probe_folder(folder: Path) -> str | None:
    """Create and remove a file in ``folder``: what SQLite will do with -wal/-shm (a real try,
    so a read-only mount is caught even for root, whom permission bits do not stop)."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".scrm-check-"):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def sqlite_file_problems(path: Path, what: str) -> tuple[list[str], list[str]]:
    """(problems, warnings) for an SQLite file scrm must write, e.g. the state store."""
    problems: list[str] = []
    warnings: list[str] = []
    folder = path.parent
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        return [f"{what} {path}: {existing or folder} is not a folder; point it at a file in a folder"], warnings
    if existing != folder:
        error = _probe_folder(existing)
        if error:
            problems.append(
                f"{what} {path}: its folder {folder} does not exist and cannot be created in {existing} ({error}); "
                f'create it: mkdir -p {folder} && chown "$(id -un)" {folder}'
            )
        return problems, warnings
    error = _probe_folder(folder)
    if error:
        problems.append(
            f"{what} {path}: cannot write in its folder {folder} ({error}); SQLite creates {path.name}-wal and "
            f"-shm there: fix its permissions (chmod u+wx {folder}) or move the file"
        )
    if path.exists():
        try:
            with open(path, "ab"):
                pass
        except OSError as exc:
            problems.append(f"{what} {path} is not writable ({exc.strerror or exc}): chmod u+rw {path}")
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = LOW_SPACE_BYTES
    if free < LOW_SPACE_BYTES:
        warnings.append(f"{what} {path}: only {free / 1e6:.0f} MB free on its disk")
    if path.exists() and not os.access(path, os.R_OK):
        problems.append(f"{what} {path} is not readable: chmod u+r {path}")
    return problems, warnings
