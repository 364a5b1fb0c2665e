"""Shared fixtures for the core tests."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str, str], Path]:
    """Install a throwaway distribution with an ``scrm`` entry point, found by importlib.metadata.

    ``fake_distribution("acme-broken", "broken", source)`` writes ``scrm_fake_broken.py`` and a
    ``.dist-info`` with ``[scrm] broken = scrm_fake_broken`` into a folder put on sys.path.
    """
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    monkeypatch.syspath_prepend(str(site))

    def install(dist: str, entry: str, source: str) -> Path:
        module = f"scrm_fake_{entry}"
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{dist.replace('-', '_')}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0.1\n")
        (info / "entry_points.txt").write_text(f"[scrm]\n{entry} = {module}\n")
        return site

    return install
