"""Docs match the code: every hook documented, the reference up to date, CLI commands described."""

from __future__ import annotations

import re
from pathlib import Path

from scrm import hookdocs

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_every_hook_is_in_the_reference() -> None:
    text = (DOCS / "hooks.md").read_text()
    documented = set(re.findall(r"^### `(scrm_\w+)\(", text, re.M))
    assert documented == set(hookdocs.hook_names())


def test_the_reference_is_generated_from_the_current_specs() -> None:
    assert (DOCS / "hooks.md").read_text() == hookdocs.render(), "run: python -m scrm.hookdocs > docs/hooks.md"


def test_every_hook_docstring_has_params_returns_and_an_example() -> None:
    from scrm_core import hookspecs

    for name in hookdocs.hook_names():
        doc = getattr(hookspecs, name).__doc__ or ""
        assert ":returns:" in doc and "Example::" in doc and ":param" in doc, name


def test_every_cli_command_is_in_the_user_guide() -> None:
    guide = (DOCS / "cli.md").read_text()
    for command in (
        "scrm demo",
        "scrm run",
        "scrm check",
        "scrm preview",
        "scrm serve",
        "scrm reply",
        "scrm replies list",
        "scrm replies approve",
        "scrm replies cancel",
        "scrm status",
        "scrm dlq list",
        "scrm dlq retry",
        "scrm plugins",
        "scrm config check",
        "scrm rules test",
        "scrm identity scan",
        "scrm identity suggestions",
        "scrm identity link",
        "scrm identity unlink",
        "scrm customer show",
        "scrm erase",
        "scrm localcrm show",
        "scrm localcrm reply",
        "scrm localcrm label",
        "scrm understand",
        "scrm intent train",
        "scrm intent examples",
        "scrm intent reset",
        "scrm replay generate",
        "scrm new network",
    ):
        assert f"`{command}" in guide, command


def test_the_readme_config_example_is_valid() -> None:
    import tempfile

    from scrm.config import load_config
    from scrm.plugins import PluginHost

    readme = (ROOT / "README.md").read_text()
    (example,) = re.findall(r"```toml\n(\[state\].*?)```", readme, re.S)
    host = PluginHost(env={}).load()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scrm.toml"
        path.write_text(example)
        config = load_config(path, env={}, networks=host.networks, crms=host.crms)
    assert [r.name for r in config.routing.rules or []] == ["angry-customers", "buyers"]


def test_every_config_setting_is_in_the_config_guide() -> None:
    """docs/config.md has a table row for every key of every section the code accepts."""
    from pydantic import BaseModel

    from scrm_core import config

    guide = (DOCS / "config.md").read_text()
    sections = {
        "[state]": config.StateConfig,
        "[[sources]]": config.SourceConfig,
        "[crm]": config.CrmConfig,
        "[[listening.queries]]": config.ListeningQuery,
        "[identity]": config.IdentityConfig,
        "[[routing.rules]]": config.RoutingRule,
        "[routing.business_hours]": config.BusinessHours,
        "[engine]": config.EngineConfig,
        "[replies]": config.RepliesConfig,
        "[serve]": config.ServeConfig,
    }
    for heading, model in sections.items():
        assert issubclass(model, BaseModel)
        part = guide.split(f"## `{heading}`", 1)[1].split("\n## ", 1)[0]
        rows = set(re.findall(r"^\| `([a-z_]+)`", part, re.M)) | {
            k for row in re.findall(r"^\| `([a-z_]+)`, `([a-z_]+)`", part, re.M) for k in row
        }
        keys = {field.alias or name for name, field in model.model_fields.items()}
        assert keys <= rows, f"{heading}: not documented: {sorted(keys - rows)}"
