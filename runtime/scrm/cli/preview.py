"""``scrm run --dry-run`` (also ``scrm preview``): what a run would write, writing nothing.

The way to try scrm on a production CRM for the first time. The run is a real one (the
sources are read from their saved cursors, everything is understood, routed and mapped
as ``scrm run`` would), with two differences:

* it works on a **copy of the state store** (SQLite's online backup into a temporary
  file), so cursors, the outbox and everything else stay as they are;
* its CRM is the configured adapter wrapped so that a batch is **previewed, not applied**
  (:meth:`CrmAdapter.preview`: the CRM's metadata and the current records are read, the
  records are fitted exactly as a run would, nothing is written). Replies are not sent.

It prints, per CRM object type, how many records would be created, updated and
redacted, and a sample of each with the fields that would change (now -> after) and how
scrm fitted them (a text cut to the field's length, a picklist value replaced).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from scrm.plugins import PluginHost
from scrm_core.adapters import CheckProblem, CrmAdapter, PlannedWrite
from scrm_core.config import Config
from scrm_core.models import REDACTED_SUBJECT, CrmObject, CrmOperation, OperationResult
from scrm_core.ratelimit import RateBudget

from .common import ConfigOption, StrictOption, VerboseOption, config_or_exit, console, make_host, setup_logging

__all__ = ["DryRun", "PreviewCrm", "dry_run"]

SamplesOption = Annotated[int, typer.Option("--samples", help="Records shown per object type and action.")]


def _kind(op: CrmOperation, plan: PlannedWrite) -> str:
    if op.fields.get("deleted") is True or op.fields.get("subject") == REDACTED_SUBJECT:
        return "redact"
    return plan.action


@dataclass
class ObjectPreview:
    counts: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[PlannedWrite]] = field(default_factory=dict)
    fitted: int = 0  # records scrm changed to fit the CRM


@dataclass
class DryRun:
    objects: dict[CrmObject, ObjectPreview] = field(default_factory=dict)
    samples: int = 3

    def record(self, op: CrmOperation, plan: PlannedWrite) -> None:
        preview = self.objects.setdefault(op.object, ObjectPreview())
        kind = _kind(op, plan)
        preview.counts[kind] += 1
        preview.fitted += bool(plan.notes)
        shown = preview.samples.setdefault(kind, [])
        if len(shown) < self.samples:
            shown.append(plan)


class PreviewCrm(CrmAdapter):
    """The configured CRM adapter, with every write previewed instead of applied."""

    name = "preview"

    def __init__(self, real: CrmAdapter, report: DryRun) -> None:
        super().__init__(real.settings, real.context)
        self.real = real
        self.report = report
        self.limits = real.limits
        self.stored_on = real.stored_on

    @property
    def budget(self) -> RateBudget:
        return self.real.budget

    async def start(self) -> None:
        await self.real.start()

    async def close(self) -> None:
        await self.real.close()

    async def check(self) -> list[CheckProblem]:
        return await self.real.check()

    async def apply(self, ops: Sequence[CrmOperation]) -> list[OperationResult]:
        plans = await self.real.preview(ops)
        for op, plan in zip(ops, plans, strict=True):
            self.report.record(op, plan)
        return [
            OperationResult(external_key=op.external_key, ok=True, crm_id=f"dry-run:{op.external_key}") for op in ops
        ]


def dry_run(config: Config, host: PluginHost, samples: int = 3) -> DryRun:
    from scrm.engine import Engine, build_crm

    report = DryRun(samples=samples)
    with tempfile.TemporaryDirectory(prefix="scrm-dry-run-") as tmp:
        # A private copy of the state: the run dedups against it and throws it away.
        snapshot = host.stores.backend(config.state.url).snapshot(config.state.url, config.base_dir, Path(tmp))
        state = config.state.model_copy(update={"url": snapshot})
        replies = config.replies.model_copy(update={"enabled": False})
        copy = config.model_copy(update={"state": state, "replies": replies})
        crm = PreviewCrm(build_crm(copy, host), report)
        asyncio.run(Engine(copy, host, preflight=True, crm=crm).run(follow=False))
    return report


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 70 else text[:67] + "..."


def print_report(report: DryRun) -> None:
    table = Table(title="dry run: what `scrm run` would write")
    for column in ("object", "create", "update", "redact", "unknown", "fitted"):
        table.add_column(column, justify="right" if column != "object" else "left")
    for obj, preview in sorted(report.objects.items(), key=lambda kv: list(CrmObject).index(kv[0])):
        c = preview.counts
        table.add_row(
            obj.value, *(f"{c[k]:,}" for k in ("create", "update", "redact", "unknown")), f"{preview.fitted:,}"
        )
    console.print(table)
    for obj, preview in report.objects.items():
        for kind, plans in preview.samples.items():
            for plan in plans:
                where = f"{plan.crm_object} {plan.crm_id}" if plan.crm_id else plan.crm_object or obj.value
                console.print(f"[bold]{kind}[/] {obj.value} {plan.external_key} ({where})", highlight=False)
                for name, (before, after) in plan.changes.items():
                    console.print(f"    {name}: {_shown(before)} -> {_shown(after)}", highlight=False, markup=False)
                for note in plan.notes:
                    console.print(f"    fitted: {note}", highlight=False, markup=False)
    if not report.objects:
        console.print("nothing to write: the CRM is up to date with the sources")


def run_dry(config_path: Path, strict: bool, verbose: bool, samples: int) -> None:
    host = make_host(strict=strict)
    setup_logging(verbose)
    cfg = config_or_exit(config_path, host)
    print_report(dry_run(cfg, host, samples))
    console.print("the state store and the CRM are unchanged; `scrm run` writes this for real")


def register(app: typer.Typer) -> None:
    @app.command("preview")
    def preview_command(
        config: ConfigOption = Path("scrm.toml"),
        samples: SamplesOption = 3,
        strict: StrictOption = False,
        verbose: VerboseOption = False,
    ) -> None:
        """What `scrm run` would create, update and redact in the CRM, writing nothing (= `scrm run --dry-run`)."""
        run_dry(config, strict, verbose, samples)
