#!/usr/bin/env python3
"""One entry point for a fresh machine: needs only Python >= 3.11 and pip.

    python3 scripts/dev.py demo     # set up .venv, then run the demo into the embedded CRM
    python3 scripts/dev.py test     # set up .venv, then ruff, mypy and the whole test suite
    python3 scripts/dev.py bench    # set up .venv, then the benchmarks (JSON on stdout)
    python3 scripts/dev.py setup    # only create/refresh .venv

The virtual environment is refreshed only when a pyproject.toml changed (a stamp file
holds their hash), so the second run starts at once. Extra arguments go to the command
(`dev.py test -k engine`, `dev.py demo --fresh`).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".scrm-installed"


def packages() -> list[Path]:
    """The workspace: the core, then the runtime and every adapter, plugin, back-end and example distribution."""
    patterns = (
        "runtime/pyproject.toml",
        "adapters/*/pyproject.toml",
        "plugins/*/pyproject.toml",
        "backends/*/pyproject.toml",
        "examples/*/pyproject.toml",
    )
    found = [p.parent for pattern in patterns for p in ROOT.glob(pattern)]
    return [ROOT, *sorted(found)]


def test_extra(pkg: Path) -> str | None:
    """The extra holding a package's test-only needs: ``dev`` for the core, ``test`` where declared
    (e.g. the Matrix adapter's tests run a real Synapse homeserver)."""
    if pkg == ROOT:
        return "dev"
    text = (pkg / "pyproject.toml").read_text()
    return "test" if re.search(r"(?m)^test\s*=", text) else None


def fingerprint() -> str:
    digest = hashlib.sha256()
    for pkg in packages():
        digest.update((pkg / "pyproject.toml").read_bytes())
    return digest.hexdigest()


def run(*cmd: str | Path) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    result = subprocess.run([str(c) for c in cmd], cwd=ROOT, check=False)
    if result.returncode:
        sys.exit(result.returncode)


def setup() -> None:
    if STAMP.exists() and STAMP.read_text() == fingerprint():
        return
    if not (BIN / "python").exists():
        print(f"creating {VENV.relative_to(ROOT)}", flush=True)
        venv.create(VENV, with_pip=True)
    pip = [BIN / "python", "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    run(*pip, "--upgrade", "pip")
    editable: list[str | Path] = []
    for pkg in packages():
        extra = test_extra(pkg)
        editable += ["-e", f"{pkg}[{extra}]" if extra else pkg]
    run(*pip, *editable)
    STAMP.write_text(fingerprint())


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in {"setup", "demo", "test", "bench"}:
        print(__doc__)
        sys.exit(2)
    command, rest = argv[0], argv[1:]
    setup()
    if command == "demo":
        run(BIN / "scrm", "demo", *rest)
    elif command == "test":
        run(BIN / "ruff", "check", ".")
        run(BIN / "ruff", "format", "--check", ".")
        run(BIN / "mypy", "scrm_core", *mypy_targets())
        run(BIN / "pytest", *rest)
    elif command == "bench":
        for script in sorted((ROOT / "bench").glob("bench_*.py")):
            run(BIN / "python", script, *rest)


def mypy_targets() -> list[Path]:
    """Each adapter's and plugin's import package (tests are checked by pytest, not mypy)."""
    targets = []
    for pkg in packages()[1:]:
        targets += [p for p in pkg.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    return targets


if __name__ == "__main__":
    main(sys.argv[1:])
