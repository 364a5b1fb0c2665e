"""``scrm intent train | examples | reset``: a deployment's own classifier, learnt from its agents' corrections."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from scrm.compare import Comparison, compare
from scrm.plugins import PluginHost
from scrm.store import AsyncStore, StateStore, open_store
from scrm_core.config import Config
from scrm_core.learning import TrainableClassifier

from .common import ConfigOption, console, console_err, load_for_command, make_host, state_store

#: Fewer corrections than this cannot be cross-validated meaningfully.
MIN_EXAMPLES = 10

ClassifierOption = Annotated[
    str | None, typer.Option("--classifier", help="Which trainable classifier (default: the only one installed).")
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    console_err.print(f"[bold red]error:[/] {message}", highlight=False, markup=False)
    return typer.Exit(code)


def _classifier(host: PluginHost, name: str | None) -> TrainableClassifier:
    found = host.classifiers
    if not found:
        raise _fail(
            "no installed plugin offers a trainable classifier (scrm_register_classifiers); "
            "install scrm-intent: pip install 'scrm-intent[train]'"
        )
    if name is None:
        if len(found) > 1:
            raise _fail(f"several trainable classifiers are installed ({', '.join(sorted(found))}): pass --classifier")
        return next(iter(found.values()))
    if name not in found:
        raise _fail(f"no trainable classifier named {name!r}; installed: {', '.join(sorted(found))}")
    return found[name]


async def _train(
    config: Config,
    host: PluginHost,
    classifier: TrainableClassifier,
    *,
    folds: int,
    collect: bool,
    dry_run: bool,
    force: bool,
) -> dict[str, Any]:
    from scrm.engine.learning import CorrectionCollector, load_models, understood
    from scrm.engine.runner import build_crm
    from scrm.engine.understand import Understander

    store = AsyncStore(lambda: open_store(config.state.url, config.base_dir, host.stores))
    try:
        await store.call(StateStore.migrate)
        collected = 0
        if collect:
            crm = build_crm(config, host)
            await crm.start()
            try:
                collected = await CorrectionCollector(store, crm).collect()
            finally:
                await crm.close()
        await load_models(store, {classifier.name: classifier})
        examples = await store.call(StateStore.label_examples, classifier.namespace)
        result: dict[str, Any] = {"classifier": classifier.name, "collected": collected, "examples": len(examples)}
        labels = sorted({e.label for e in examples})
        if len(examples) < MIN_EXAMPLES or len(labels) < 2:
            result["outcome"] = (
                f"not enough corrections to train: {len(examples)} of {len(labels)} label(s); "
                f"at least {MIN_EXAMPLES} of 2 labels are needed"
            )
            return result
        stored = await store.call(StateStore.model, classifier.name)
        trained_until = stored.trained_until if stored is not None else 0
        unseen = [e.seq > trained_until for e in examples]
        result["current_model"] = stored.id if stored is not None else "shipped"
        if not any(unseen) and not force:
            result["outcome"] = f"no corrections since model #{stored.id if stored else '?'} was trained: nothing to do"
            return result
        labelled = await understood(
            examples, Understander(host.hooks_for(config), {q.name: q.query for q in config.listening.queries})
        )
        with console_err.status(f"cross-validating on {len(labelled)} corrections…"):
            comparison: Comparison = await asyncio.to_thread(compare, classifier, labelled, unseen, folds=folds)
        result["comparison"] = comparison.__dict__
        if dry_run:
            result["outcome"] = "dry run: nothing replaced"
            return result
        if not (comparison.better or force):
            result["outcome"] = (
                f"the current model stays: the retrained one scores macro-F1 {comparison.candidate_f1_on_compared} "
                f"against its {comparison.current_f1} on the {comparison.compared_on} new corrections "
                "(--force replaces it anyway)"
            )
            return result
        with console_err.status("training on every correction…"):
            model = await asyncio.to_thread(classifier.train, labelled)
        report = {
            "cross_validated_macro_f1": comparison.candidate_f1,
            "previous_macro_f1_on_new": comparison.current_f1,
            "shipped_macro_f1": comparison.shipped_f1,
            "examples": len(labelled),
            "forced": force and not comparison.better,
        }
        saved = await store.call(
            StateStore.save_model, classifier.name, model.to_bytes(), report, max(e.seq for e in examples)
        )
        classifier.use(model)
        result["model"] = saved.id
        result["outcome"] = (
            f"model #{saved.id} replaces the {'shipped model' if stored is None else f'model #{stored.id}'}; "
            f"`scrm run` uses it from its next start (a following run within learning.poll_seconds)"
        )
        return result
    finally:
        await store.close()


def _print(result: dict[str, Any]) -> None:
    console.print(
        f"classifier [bold]{result['classifier']}[/]: {result['collected']} new correction(s) collected, "
        f"{result['examples']} in the state store",
        highlight=False,
    )
    comparison = result.get("comparison")
    if comparison:
        table = Table(title=f"macro-F1, {comparison['folds']}-fold cross-validation", title_justify="left")
        table.add_column("model")
        table.add_column("macro-F1", justify="right")
        table.add_column("on")
        table.add_row(
            "retrained (held-out folds)", f"{comparison['candidate_f1']:.3f}", f"all {comparison['examples']}"
        )
        table.add_row(
            "retrained (held-out folds)",
            f"{comparison['candidate_f1_on_compared']:.3f}",
            f"{comparison['compared_on']} new since the current model",
        )
        table.add_row(
            f"current ({result.get('current_model')})", f"{comparison['current_f1']:.3f}", "the same new ones"
        )
        table.add_row("shipped", f"{comparison['shipped_f1']:.3f}", f"all {comparison['examples']}")
        console.print(table)
        per = Table(title="F1 per label", title_justify="left")
        per.add_column("label")
        per.add_column("retrained", justify="right")
        per.add_column("shipped", justify="right")
        for label, values in sorted(comparison["per_label"].items()):
            per.add_row(label, f"{values['candidate']:.3f}", f"{values['shipped']:.3f}")
        console.print(per)
    console.print(result["outcome"], highlight=False)


def register(app: typer.Typer) -> None:
    intent = typer.Typer(help="Teach the intent classifier with your agents' corrections.", no_args_is_help=True)
    app.add_typer(intent, name="intent")

    @intent.command()
    def train(
        config: ConfigOption = Path("scrm.toml"),
        classifier: ClassifierOption = None,
        folds: Annotated[int, typer.Option(min=2, max=20, help="Cross-validation folds.")] = 5,
        collect: Annotated[bool, typer.Option(help="Read new corrections from the CRM first.")] = True,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Report the F1 figures; replace nothing.")] = False,
        force: Annotated[
            bool, typer.Option("--force", help="Replace the model even if it does not score better.")
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    ) -> None:
        """Retrain from the corrections (shipped data as the prior); replace the model only if it scores better."""
        cfg = load_for_command(config)
        host = make_host()
        chosen = _classifier(host, classifier)
        result = asyncio.run(_train(cfg, host, chosen, folds=folds, collect=collect, dry_run=dry_run, force=force))
        if as_json:
            console.print_json(json.dumps(result, default=str))
        else:
            _print(result)

    @intent.command()
    def examples(
        config: ConfigOption = Path("scrm.toml"),
        limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Rows to print.")] = 50,
    ) -> None:
        """The corrections kept as labelled examples, newest first."""
        cfg = load_for_command(config)
        with state_store(cfg) as store:
            rows = store.label_examples()
        table = Table(title=f"{len(rows)} labelled example(s)", title_justify="left")
        for column in ("seq", "label", "message", "from", "text"):
            table.add_column(column, overflow="fold")
        for ex in reversed(rows[-limit:]):
            text = ex.text if len(ex.text) <= 80 else ex.text[:79] + "…"
            table.add_row(str(ex.seq), ex.label, ex.message_key, ex.source, text)
        console.print(table)

    @intent.command()
    def reset(config: ConfigOption = Path("scrm.toml"), classifier: ClassifierOption = None) -> None:
        """Go back to the shipped model (the corrections and trained models are kept)."""
        cfg = load_for_command(config)
        chosen = _classifier(make_host(), classifier)
        with state_store(cfg) as store:
            n = store.drop_models(chosen.name)
        console.print(
            f"classifier {chosen.name}: back to the shipped model"
            if n
            else f"classifier {chosen.name} already uses the shipped model",
            highlight=False,
        )
