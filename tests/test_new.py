"""``scrm new network NAME``: the generated package passes its own conformance run as generated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from scrm.cli import app
from scrm.cli.new import render_network
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent


def test_names_that_cannot_be_packages_are_refused_and_nothing_is_overwritten(tmp_path: Path) -> None:
    for bad in ("Telegram", "2chat", "tele-gram", ""):
        with pytest.raises(ValueError, match="not a network name"):
            render_network(bad)
    runner = CliRunner()
    assert runner.invoke(app, ["new", "network", "acme", "--dir", str(tmp_path)]).exit_code == 0
    (tmp_path / "scrm-acme" / "README.md").write_text("mine")
    again = runner.invoke(app, ["new", "network", "acme", "--dir", str(tmp_path)])
    assert again.exit_code != 0 and "exists already" in again.output
    assert (tmp_path / "scrm-acme" / "README.md").read_text() == "mine"


@pytest.mark.slow
def test_the_generated_package_passes_its_conformance_run_lint_and_types(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["new", "network", "acme_chat", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    package = tmp_path / "scrm-acme-chat"
    assert sorted(str(p.relative_to(package)) for p in package.rglob("*") if p.is_file()) == [
        "README.md",
        "pyproject.toml",
        "scrm_acme_chat/__init__.py",
        "scrm_acme_chat/adapter.py",
        "scrm_acme_chat/plugin.py",
        "scrm_acme_chat/testing.py",
        "tests/test_conformance.py",
    ]
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=package,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert "17 passed" in tests.stdout  # the whole suite; only the two webhook tests skip
    bin_dir = Path(sys.executable).parent
    lint = subprocess.run(
        [bin_dir / "ruff", "check", "--config", ROOT / "pyproject.toml", "."], cwd=package, capture_output=True
    )
    assert lint.returncode == 0, lint.stdout.decode()
    (tmp_path / "mypy.ini").write_text("[mypy]\nstrict = True\nplugins = pydantic.mypy\n")
    types = subprocess.run(
        [bin_dir / "mypy", "--config-file", tmp_path / "mypy.ini", "scrm_acme_chat"], cwd=package, capture_output=True
    )
    assert types.returncode == 0, types.stdout.decode()
