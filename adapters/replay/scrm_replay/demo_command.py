"""``scrm demo``: generate a replayed social stream and sync it into the embedded CRM.

A command of this plugin (``scrm_register_commands``), written with the core's command kit
(:mod:`scrm.cli`); it needs ``scrm-localcrm`` too (installed by the README's set-up).
Everything lands in one folder (``scrm-demo/`` by default) with the config it used, so
``scrm status -c scrm-demo/scrm.toml`` and friends work on it after.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer
from scrm.cli import (
    StrictOption,
    VerboseOption,
    config_or_exit,
    console,
    make_host,
    setup_logging,
    state_store,
    summary_table,
    sync,
)

from scrm_core import AdapterContext

from .demo import generate_demo

CONFIG_TEMPLATE = """\
# Written by `scrm demo`: a replayed social stream into the embedded CRM.
[state]
url = "sqlite:///state.db"

[crm]
adapter = "localcrm"
settings = {{ path = "crm.db" }}
{sources}
"""

SOURCE_TEMPLATE = """
[[sources]]
name = "{name}"
adapter = "replay"
settings = {{ paths = ["data/{file}"] }}
"""


def _generate(folder: Path, messages: int, seed: int) -> list[Path]:
    data = folder / "data"
    if not any(data.glob("*.ndjson")):
        with console.status(f"generating {messages:,} demo messages"):
            generate_demo(data, messages=messages, seed=seed)
    return sorted(data.glob("*.ndjson"))


def _write_config(folder: Path, files: list[Path]) -> Path:
    sources = "".join(SOURCE_TEMPLATE.format(name=f.stem, file=f.name) for f in files)
    path = folder / "scrm.toml"
    path.write_text(CONFIG_TEMPLATE.format(sources=sources), encoding="utf-8")
    return path


def _count_lines(files: list[Path]) -> int:
    total = 0
    for f in files:
        with f.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                total += chunk.count(b"\n")
    return total


async def _crm_counts(config: Any) -> dict[str, int]:
    """The configured CRM's record counts."""
    cls = make_host().crms[config.crm.adapter]
    crm = cls(cls.Settings.model_validate(config.crm.settings), AdapterContext(name="crm", base_dir=config.base_dir))
    await crm.start()
    try:
        return await crm.counts()
    finally:
        await crm.close()


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_command(
        folder: Annotated[Path, typer.Option("--dir", help="Where the demo's data, state and CRM go.")] = Path(
            "scrm-demo"
        ),
        messages: Annotated[int, typer.Option(help="Messages to generate.", min=1)] = 6000,
        seed: Annotated[int, typer.Option(help="Seed of the deterministic generator.")] = 7,
        fresh: Annotated[bool, typer.Option("--fresh", help="Delete the folder first.")] = False,
        strict: StrictOption = False,
        verbose: VerboseOption = False,
    ) -> None:
        """Generate a demo stream and sync it into the embedded CRM, then print a summary.

        Run it twice: the second run finds nothing new and writes nothing.
        """
        host = make_host(strict=strict)
        setup_logging(verbose)
        if fresh and folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        files = _generate(folder, messages, seed)
        config = config_or_exit(_write_config(folder, files), host)
        stats = sync(config, host, follow=False, total=_count_lines(files))
        with state_store(config) as store:
            state = store.counts()
        crm = asyncio.run(_crm_counts(config))
        counts = {"conversations": state.get("conversations", 0), **crm, "dead letters": state.get("dead_letters", 0)}
        console.print(summary_table(counts, f"scrm demo: {folder}/ synced in {stats.seconds:.1f}s"))
        console.print(
            f"Look inside: scrm localcrm show -c {folder}/scrm.toml    Progress: scrm status -c {folder}/scrm.toml"
        )
