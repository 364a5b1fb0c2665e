"""Every example in the adapter author's docs, and every docstring example of the core, is run.

* A block in docs/writing-adapters.md whose first line names a file of the generated
  package (``# scrm_mynetwork/adapter.py``) must be that file as ``scrm new network
  mynetwork`` writes it; tests/test_new.py runs the generated package's conformance suite.
* Every other Python block of docs/writing-adapters.md and of the network adapters' pages
  (docs/adapters/) runs, in order, in one namespace per page, in a scratch folder.
* Every docstring example (``>>>``) of a scrm_core or scrm (runtime) module runs as a doctest.
"""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import scrm
from scrm.cli.new import render_network

import scrm_core

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
NETWORK_PAGES = ["mastodon", "bluesky", "reddit", "x", "matrix", "discourse", "meta", "replay"]
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(page: Path, language: str) -> list[str]:
    return [body for lang, body in _BLOCK.findall(page.read_text()) if lang == language]


def test_the_guides_package_files_are_what_the_template_generates() -> None:
    generated = {str(path): text for path, text in render_network("mynetwork").items()}
    page = DOCS / "writing-adapters.md"
    shown = 0
    for body in blocks(page, "python") + blocks(page, "toml"):
        first, _, rest = body.partition("\n")
        name = first.removeprefix("# ").strip()
        if name in generated:
            assert rest == generated[name], f"docs/writing-adapters.md shows an old {name}: update it from the template"
            shown += 1
    assert shown >= 4, "the guide should show the generated adapter, plugin, pyproject and conformance test"


@pytest.mark.parametrize("page", ["writing-adapters.md", *(f"adapters/{n}.md" for n in NETWORK_PAGES)])
def test_every_python_example_of_the_page_runs(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generated = {str(path) for path in render_network("mynetwork")}
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": f"docs_{Path(page).stem}"}
    for body in blocks(DOCS / page, "python"):
        if body.partition("\n")[0].removeprefix("# ").strip() in generated:
            continue  # checked against the template above, run by tests/test_new.py
        exec(compile(body, f"{page} example", "exec"), namespace)


def _modules() -> list[ModuleType]:
    found = []
    infos = [*pkgutil.walk_packages(scrm_core.__path__, "scrm_core."), *pkgutil.walk_packages(scrm.__path__, "scrm.")]
    for info in infos:
        if ".cli" in info.name or info.name.endswith("__main__"):
            continue  # command modules import typer apps; their docs are docs/cli.md
        found.append(importlib.import_module(info.name))
    return found


@pytest.mark.parametrize("module", _modules(), ids=lambda m: m.__name__)
def test_docstring_examples_run(module: ModuleType) -> None:
    os.environ.setdefault("SCRM_DOCTEST", "1")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {module.__name__} failed"


def test_the_documented_default_scenario_is_the_suites() -> None:
    from scrm_core.testing import network

    scenario = network.default_scenario()
    for text in ((DOCS / "writing-adapters.md").read_text(), network.__doc__ or ""):
        described = re.search(r"default_scenario[^)]*\)`?\)?`? is (\d+)\s+events", text)
        assert described is not None and int(described.group(1)) == len(scenario)
        ids = re.findall(r"\b1(?:0[1-9]|1[01])\b", text[described.start() :])
        assert {f"{i}" for i in ids} >= {e.message.id for e in scenario if hasattr(e, "message")}


def test_the_guides_example_adapter_keeps_the_100_line_promise() -> None:
    """docs/writing-adapters.md points to examples/telegram as an adapter written from the guide alone."""
    lines = (ROOT / "examples" / "telegram" / "scrm_telegram" / "adapter.py").read_text().count("\n")
    assert lines < 120
    assert f"({lines} lines" in (DOCS / "writing-adapters.md").read_text()
