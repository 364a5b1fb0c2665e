"""The layers hold: the core imports neither the runtime (``scrm``) nor any adapter or plugin,
and adapters and plugins use only the core's public API (docs/public-api.md). The contracts are import-linter's, in
pyproject.toml; they see imports inside functions too."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINTER = Path(sys.executable).parent / "lint-imports"


def _settings() -> dict[str, object]:
    settings: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return settings


def test_the_import_contracts_hold() -> None:
    pytest.importorskip("importlinter", reason="import-linter is a dev dependency: python3 scripts/dev.py setup")
    done = subprocess.run([str(LINTER), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 3 kept, 0 broken." in done.stdout


def test_every_adapter_plugin_and_back_end_of_the_workspace_is_under_the_contracts() -> None:
    packages = {
        p.name for pattern in ("adapters/*/scrm_*", "plugins/*/scrm_*", "examples/*/scrm_*") for p in ROOT.glob(pattern)
    }
    backends = {p.name for p in ROOT.glob("backends/*/scrm_*")}
    settings = _settings()
    assert set(settings["root_packages"]) == {"scrm_core", "scrm", *packages, *backends}  # type: ignore[call-overload]
    core, public, stores = settings["contracts"]  # type: ignore[misc]
    assert set(core["forbidden_modules"]) == {"scrm"} | packages | backends
    assert set(public["source_modules"]) == packages
    assert set(stores["source_modules"]) == backends


def test_the_command_kit_example_of_the_page_runs(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from tests.e2e import write_config
    from tests.test_docs_examples import blocks

    (example,) = blocks(ROOT / "docs" / "public-api.md", "python")
    namespace: dict[str, object] = {}
    exec(compile(example, "docs/public-api.md", "exec"), namespace)
    app = typer.Typer()
    namespace["scrm_register_commands"](app)  # type: ignore[operator]
    data = [tmp_path / "a.ndjson", tmp_path / "b.ndjson"]
    for path in data:
        path.write_bytes(b"")
    config = write_config(tmp_path, data)
    result = CliRunner().invoke(app, ["-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "2 source(s)" in result.output
    refused = CliRunner().invoke(app, ["-c", str(tmp_path / "missing.toml")])
    assert refused.exit_code == 2


def test_the_core_stays_small() -> None:
    """scrm_core is the contract and the adapter kit (ARCHITECTURE.md, docs/public-api.md):
    the engine, the command, the SQLite store and the plugin host are the runtime's
    (``runtime/scrm``), each vendor's code is under ``adapters/<vendor>``."""
    lines = sum(len(p.read_text(encoding="utf-8").splitlines()) for p in (ROOT / "scrm_core").rglob("*.py"))
    assert lines < 8000, f"scrm_core has {lines} lines; move what only the runtime uses to runtime/scrm"
    vendors = ("salesforce", "hubspot", "mastodon", "bluesky", "reddit", "matrix", "discourse", "telegram")
    named = [p.name for p in (ROOT / "scrm_core").rglob("*.py") if any(v in p.name for v in vendors)]
    assert named == [], named
