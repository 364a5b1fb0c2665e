"""``scrm new network NAME``: a new adapter package whose own conformance run passes as generated.

The files come from ``templates/network`` beside this module (``string.Template``
placeholders: ``$name``, ``$pkg``, ``$dist``, ``$Class``, ``$Title``); the folder ``package``
becomes the import package ``scrm_<name>``. The generated package has an adapter on the
kit (PollingAdapter, JsonCursor, HttpApi), a stateful fake of its API, and the conformance
suite wired to both: ``pip install -e '.[test]' && pytest`` passes before a line is changed.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template
from typing import Annotated

import typer

from .common import console

__all__ = ["register", "render_network"]

TEMPLATES = Path(__file__).with_name("templates")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def render_network(name: str) -> dict[Path, str]:
    """The files of a new network adapter package, by path relative to its folder ``scrm-<name>``."""
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a network name: use lower-case letters, digits and _, starting with a letter"
        )
    words = name.split("_")
    values = {
        "name": name,
        "pkg": f"scrm_{name}",
        "dist": f"scrm-{name.replace('_', '-')}",
        "Class": "".join(w.capitalize() for w in words),
        "Title": " ".join(w.capitalize() for w in words),
    }
    root = TEMPLATES / "network"
    files: dict[Path, str] = {}
    for template in sorted(root.rglob("*.tmpl")):
        relative = template.relative_to(root).with_suffix("")  # drop .tmpl
        parts = [values["pkg"] if part == "package" else part for part in relative.parts]
        files[Path(*parts)] = Template(template.read_text(encoding="utf-8")).substitute(values)
    return files


def register(app: typer.Typer) -> None:
    new_app = typer.Typer(help="Start a new plugin package from a template.", no_args_is_help=True)
    app.add_typer(new_app, name="new")

    @new_app.command("network")
    def network(
        name: Annotated[str, typer.Argument(help="The network's name: lower case, e.g. 'telegram'.")],
        directory: Annotated[
            Path, typer.Option("--dir", "-d", help="Where to create the scrm-<name> folder.")
        ] = Path(),
    ) -> None:
        """Create scrm-NAME: a network adapter, a fake of its API and its conformance tests, passing as generated."""
        try:
            files = render_network(name)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        target = directory / f"scrm-{name.replace('_', '-')}"
        if target.exists():
            raise typer.BadParameter(f"{target} exists already; choose another --dir or remove it")
        for relative, text in files.items():
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        console.print(f"created {target} ({len(files)} files). Next:", highlight=False)
        console.print(f"  cd {target} && pip install -e '.[test]' && pytest", highlight=False, markup=False)
