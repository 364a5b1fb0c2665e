"""The feedback loop: agents' corrections come back from the CRM, are kept as examples, train a model."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scrm.cli import app
from scrm.compare import compare
from scrm.engine import Engine
from scrm.engine.learning import CRM_LABELS, CorrectionCollector, load_models, understood
from scrm.engine.understand import Understander
from scrm.plugins import PluginHost
from scrm.store import (
    AsyncStore,
    NewLabelExample,
    SqliteStore,
    StateStore,
)
from scrm_localcrm import add_label_correction
from typer.testing import CliRunner

from scrm_core import CrmCapability, LabelCorrection, Message, MessageCreated, hookimpl
from scrm_core.learning import LabelledMessage, TrainableClassifier, normalise_label
from tests import testnet
from tests.e2e import load, toml_inline

# ---------------------------------------------------------------- a classifier that learns (no scikit-learn)


class Memory:
    """A 'model' that labels a post like the known post it shares most words with."""

    def __init__(self, known: dict[str, str], default: str = "intent:none") -> None:
        self.known = known
        self.default = default

    def predict(self, messages: Sequence[Message]) -> list[str]:
        out = []
        for m in messages:
            words = set(m.text.lower().split())
            best = max(self.known.items(), key=lambda kv: len(words & set(kv[0].split())), default=None)
            hit = best is not None and words & set(best[0].split())
            out.append(best[1] if best and hit else self.default)
        return out

    def to_bytes(self) -> bytes:
        return json.dumps(self.known).encode()


class MemoryClassifier(TrainableClassifier):
    name = "memory"
    namespace = "intent"

    def __init__(self) -> None:
        self.shipped_model = Memory({"refund": "intent:complaint", "buy": "intent:purchase"})
        self.in_use: Memory | None = None
        self.trained = 0

    @property
    def labels(self) -> tuple[str, ...]:
        return ("intent:complaint", "intent:purchase", "intent:cancel", "intent:none")

    def current(self) -> Memory:
        return self.in_use or self.shipped_model

    def shipped(self) -> Memory:
        return self.shipped_model

    def train(self, examples: Sequence[LabelledMessage]) -> Memory:
        self.trained += 1
        known = dict(self.shipped_model.known)
        known.update({ex.message.text.lower(): ex.label for ex in examples})
        return Memory(known)

    def load(self, data: bytes) -> Memory:
        try:
            return Memory(json.loads(data))
        except ValueError as exc:
            raise ValueError(f"not a memory model: {exc}") from exc

    def use(self, model: object | None) -> None:
        assert model is None or isinstance(model, Memory)
        self.in_use = model

    @hookimpl
    def scrm_classify_message(self, message: Message) -> dict[str, float] | None:
        (label,) = self.current().predict([message])
        return None if label.endswith(":none") else {label: 0.9}

    @hookimpl
    def scrm_register_classifiers(self, register: object) -> None:
        register(self)  # type: ignore[operator]


CANCEL = [
    "please cancel my plan today",
    "I want to cancel my contract",
    "how do I cancel my plan",
    "cancel the subscription now please",
    "cancel everything on my account",
    "time to cancel my membership",
]
OTHER = [
    ("where do I buy the x200", "intent:purchase"),
    ("want to buy two more", "intent:purchase"),
    ("still no refund after weeks", "intent:complaint"),
    ("my refund never came", "intent:complaint"),
    ("lovely weather", "intent:none"),
    ("see you at the game", "intent:none"),
]


# ---------------------------------------------------------------- store (its own tests: scrm_core.testing.store)


def example(key: str, label: str, text: str = "text", source: str = "localcrm") -> NewLabelExample:
    return NewLabelExample(key, label.partition(":")[0], label, text, source)


# ---------------------------------------------------------------- understanding and registration


class Confident:
    @hookimpl
    def scrm_classify_message(self, message: Message) -> dict[str, float]:
        return {"intent:complaint": 0.4, "topic:billing": 0.8}


class AlsoConfident:
    @hookimpl
    def scrm_classify_message(self, message: Message) -> object:
        return {"intent:complaint": 0.7}


class Plain:
    @hookimpl
    def scrm_classify_message(self, message: Message) -> list[str]:
        return ["vip"]


def test_labels_keep_the_highest_confidence_any_plugin_gave() -> None:
    host = PluginHost(env={})
    for plugin, name in ((Confident(), "a"), (AlsoConfident(), "b"), (Plain(), "c")):
        host.register(plugin, name)
    m = testnet.customer_message("1", "charged twice")
    asyncio.run(Understander(host.hooks, {}).understand(m))
    assert sorted(m.labels) == ["intent:complaint", "topic:billing", "vip"]
    assert m.label_confidence == {"intent:complaint": 0.7, "topic:billing": 0.8}


class NotTrainable:
    @hookimpl
    def scrm_register_classifiers(self, register: object) -> None:
        register(object())  # type: ignore[operator]


def test_registering_something_that_cannot_train_is_the_plugins_error() -> None:
    host = PluginHost(env={})
    host.register(NotTrainable(), "broken")
    assert host.classifiers == {}
    assert "is not a TrainableClassifier" in (host.plugins["broken"].error or "")


def test_labels_agents_type_are_normalised() -> None:
    assert normalise_label(" Complaint ") == "intent:complaint"
    assert normalise_label("topic:Billing") == "topic:billing"


# ---------------------------------------------------------------- cross-validation


def labelled(rows: Sequence[tuple[str, str]]) -> list[LabelledMessage]:
    return [LabelledMessage(testnet.customer_message(str(i), text), label) for i, (text, label) in enumerate(rows)]


def test_compare_scores_every_example_with_a_model_that_never_saw_it() -> None:
    clf = MemoryClassifier()
    rows = [(t, "intent:cancel") for t in CANCEL] + OTHER
    result = compare(clf, labelled(rows), [True] * len(rows), folds=3)
    assert clf.trained == result.folds == 2, "no more folds than the rarest label has examples"
    assert result.shipped_f1 < result.candidate_f1, "learning the company's own 'cancel' label must help"
    assert result.per_label["intent:cancel"]["shipped"] == 0.0 < result.per_label["intent:cancel"]["candidate"]
    assert result.better and result.compared_on == len(rows)
    # A model that saw every example is compared only where it has not seen them: nowhere.
    assert not compare(clf, labelled(rows), [False] * len(rows), folds=3).better


# ---------------------------------------------------------------- the loop, end to end with localcrm


@pytest.fixture
def net() -> testnet.Network:
    name = uuid.uuid4().hex
    network = testnet.NETWORKS[name] = testnet.Network()
    texts = [*CANCEL, *(t for t, _ in OTHER)]
    network.events = [MessageCreated(message=testnet.customer_message(str(i + 1), t)) for i, t in enumerate(texts)]
    return network


def write(folder: Path, net: testnet.Network) -> Path:
    settings = toml_inline({"network_id": next(k for k, v in testnet.NETWORKS.items() if v is net)})
    path = folder / "scrm.toml"
    path.write_text(
        '[state]\nurl = "sqlite:///state.db"\n[crm]\nadapter = "localcrm"\nsettings = { path = "crm.db" }\n'
        f'[[sources]]\nname = "loop"\nadapter = "testnet"\nsettings = {settings}\n'
        "[engine]\nbatch_window_ms = 0\nretry_max_seconds = 0.01\n"
    )
    return path


def corrections(folder: Path) -> None:
    """An agent corrects every message in the CRM."""
    for i, text in enumerate([*CANCEL, *(t for t, _ in OTHER)], 1):
        label = "cancel" if text in CANCEL else dict(OTHER)[text].removeprefix("intent:")
        add_label_correction(folder / "crm.db", f"scrm:testnet:{i}", label, by="agent-7")


def test_corrections_come_back_once_and_train_a_model_the_next_run_uses(
    tmp_path: Path, net: testnet.Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    clf = MemoryClassifier()
    host = PluginHost(env={})
    host.register(testnet, "testnet")
    host.load(entry_points=False)
    host.register(clf, "memory")
    from scrm_localcrm import plugin as localcrm_plugin

    host.register(localcrm_plugin, "localcrm")
    path = write(tmp_path, net)
    asyncio.run(Engine(load(path, host), host).run(follow=False, handle_signals=False))
    corrections(tmp_path)

    # The next run reads them back, with the cursor, in the same transaction.
    stats = asyncio.run(Engine(load(path, host), host).run(follow=False, handle_signals=False))
    assert stats.corrections.collected == len(CANCEL) + len(OTHER)
    state = SqliteStore(tmp_path / "state.db")
    kept = state.label_examples()
    assert {e.message_key: e.label for e in kept}["testnet:1"] == "intent:cancel"
    assert kept[0].text == CANCEL[0] and kept[0].source == "localcrm"
    assert state.checkpoint(CRM_LABELS) == str(len(CANCEL) + len(OTHER))
    again = asyncio.run(Engine(load(path, host), host).run(follow=False, handle_signals=False))
    assert again.corrections.collected == 0, "a correction before the cursor is not read twice"

    # scrm intent train: cross-validated, better than the shipped model, stored.
    monkeypatch.chdir(tmp_path)
    import scrm.cli.common as common

    monkeypatch.setattr(common, "_host", host)
    result = CliRunner().invoke(app, ["intent", "train", "-c", str(path), "--folds", "3", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["comparison"]["candidate_f1"] > report["comparison"]["shipped_f1"]
    assert report["model"] and "replaces the shipped model" in report["outcome"]
    stored = state.model("memory")
    assert stored is not None and stored.trained_until == max(e.seq for e in kept)
    state.close()

    # Nothing new since: nothing to do.
    result = CliRunner().invoke(app, ["intent", "train", "-c", str(path), "--json"])
    assert "nothing to do" in json.loads(result.stdout)["outcome"]

    # The next start hands the stored model to the classifier.
    clf.use(None)
    asyncio.run(Engine(load(path, host), host).run(follow=False, handle_signals=False))
    assert clf.in_use is not None and clf.in_use.known.get(CANCEL[0].lower()) == "intent:cancel"

    # scrm understand -c uses it too.
    clf.use(None)
    sample = tmp_path / "sample.jsonl"
    sample.write_text(json.dumps({"text": "please cancel my plan today"}) + "\n")
    out = CliRunner().invoke(app, ["understand", "-c", str(path), str(sample)])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout.splitlines()[0])["labels"] == {"intent:cancel": 0.9}

    # Back to the shipped model.
    out = CliRunner().invoke(app, ["intent", "reset", "-c", str(path)])
    assert "back to the shipped model" in out.stdout
    assert asyncio.run(load_models(AsyncStore(lambda: SqliteStore(tmp_path / "state.db")), {"memory": clf})) == {
        "memory": None
    }


def test_a_new_state_reads_corrections_from_its_next_run_and_misses_none(tmp_path: Path, net: testnet.Network) -> None:
    """A state with no checkpoint has written nothing, so its first run spends no CRM call on
    corrections; corrections already in the CRM (a state started again beside an old CRM) come
    with the next run, since the cursor did not move."""
    host = PluginHost(env={})
    host.register(testnet, "testnet")
    host.load(entry_points=False)
    host.register(MemoryClassifier(), "memory")
    from scrm_localcrm import plugin as localcrm_plugin

    host.register(localcrm_plugin, "localcrm")
    path = write(tmp_path, net)
    asyncio.run(Engine(load(path, host), host).run(follow=False, handle_signals=False))
    corrections(tmp_path)
    for leftover in tmp_path.glob("state.db*"):  # the same CRM, a new state
        leftover.unlink()

    first = asyncio.run(Engine(load(path, host), host).run(follow=False, handle_signals=False))
    assert first.corrections.collected == 0
    state = SqliteStore(tmp_path / "state.db")
    assert state.checkpoint(CRM_LABELS) is None and state.label_examples() == []
    state.close()
    second = asyncio.run(Engine(load(path, host), host).run(follow=False, handle_signals=False))
    assert second.corrections.collected == len(CANCEL) + len(OTHER)


class PagedCrm:
    """Hands out corrections a page at a time; fails on the page after ``fail_after``."""

    name = "paged"
    capabilities = frozenset({CrmCapability.label_corrections})

    def __init__(self, corrections: list[LabelCorrection], fail_after: int | None = None) -> None:
        self.corrections = corrections
        self.fail_after = fail_after
        self.calls: list[str | None] = []

    async def label_corrections(self, cursor: str | None) -> tuple[list[LabelCorrection], str | None]:
        self.calls.append(cursor)
        start = int(cursor or 0)
        if self.fail_after is not None and start >= self.fail_after:
            raise RuntimeError("the CRM went away")
        page = self.corrections[start : start + 2]
        return page, str(start + len(page)) if page else cursor


def test_a_failure_mid_way_keeps_the_pages_before_it_and_resumes_after_them(tmp_path: Path) -> None:
    items = [
        LabelCorrection(crm_id=str(i), message_key=f"x:{i}", label="complaint", text="" if i == 3 else f"post {i}")
        for i in range(5)
    ]

    async def scenario() -> None:
        store = AsyncStore(lambda: SqliteStore(tmp_path / "s.db"))
        await store.call(StateStore.migrate)
        crm = PagedCrm(items, fail_after=4)
        collector = CorrectionCollector(store, crm)  # type: ignore[arg-type]
        with pytest.raises(RuntimeError):
            await collector.collect()
        assert await store.call(StateStore.checkpoint, CRM_LABELS) == "4"
        assert [e.message_key for e in await store.call(StateStore.label_examples)] == [
            "x:0",
            "x:1",
            "x:2",
        ]  # x:3 has no text
        assert collector.counts.skipped == 1
        crm.fail_after = None
        assert await collector.collect() == 1
        assert crm.calls[-2:] == ["4", "5"]
        await store.close()

    asyncio.run(scenario())


def test_examples_are_understood_as_the_pipeline_would(tmp_path: Path) -> None:
    class Detector:
        @hookimpl
        def scrm_detect_language(self, text: str) -> str:
            return "fr"

    host = PluginHost(env={})
    host.register(Detector(), "lang")
    store = SqliteStore(tmp_path / "s.db")
    store.migrate()
    store.save_label_examples(
        [
            example("x:1", "intent:complaint", "c'est nul"),
            NewLabelExample("y:2", "intent", "intent:praise", "top", "crm", language="de"),
        ]
    )
    got = asyncio.run(understood(store.label_examples(), Understander(host.hooks, {})))
    assert [(g.message.language, g.label) for g in got] == [("fr", "intent:complaint"), ("de", "intent:praise")]
    assert got[0].message.key == "x:1" and got[0].message.created_at <= datetime.now(UTC)


@pytest.mark.slow
def test_the_shipped_intent_classifier_learns_a_label_of_the_companys_own(tmp_path: Path) -> None:
    """scrm-intent itself (scikit-learn training): corrections for a label it never shipped
    with raise cross-validated macro-F1 on the held-out folds above the shipped model's."""
    pytest.importorskip("sklearn")
    from scrm_intent.classifier import IntentClassifier

    clf = IntentClassifier()
    cancel = [
        *CANCEL,
        "cancel my phone contract asap",
        "I'd like to end my subscription",
        "stop renewing my plan please",
        "close my account, I'm leaving",
    ]
    rows = [(t, "intent:cancellation") for t in cancel] + [
        ("my refund never came, 3 weeks now", "intent:complaint"),
        ("charged twice for the same order", "intent:complaint"),
        ("package arrived broken", "intent:complaint"),
        ("where can I buy the x200?", "intent:purchase"),
        ("want to order two more today", "intent:purchase"),
        ("how much is the annual plan? ready to buy", "intent:purchase"),
    ]
    result = compare(clf, labelled(rows), [True] * len(rows), folds=3)
    assert result.per_label["intent:cancellation"]["shipped"] == 0.0
    assert result.per_label["intent:cancellation"]["candidate"] > 0.5
    assert result.candidate_f1 > result.shipped_f1 and result.better
    model = clf.train(labelled(rows))
    assert "cancellation" in model.model.classes
    clf.use(clf.load(model.to_bytes()))
    try:
        assert clf.classify(testnet.customer_message("1", "please cancel my contract now")) is not None
        (label,) = clf.current().predict([testnet.customer_message("2", "cancel my subscription please")])
        assert label == "intent:cancellation"
    finally:
        clf.use(None)


def test_scrm_understand_prints_one_json_line_per_message_and_names_bad_lines(tmp_path: Path) -> None:
    sample = tmp_path / "sample.jsonl"
    sample.write_text(
        json.dumps({"text": "charged twice for one order and nobody answers"})
        + "\n\nnot json\n"
        + json.dumps({"text": "Wo finde ich meine Rechnung?", "network": "mastodon", "language": "de", "id": "m9"})
        + "\n"
        + json.dumps({"txt": "typo in the field name"})
        + "\n"
    )
    result = CliRunner().invoke(app, ["understand", str(sample)])
    assert result.exit_code == 1, "bad lines are reported and make the exit code 1"
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [x["id"] for x in lines] == ["1", "m9"]
    assert lines[1]["language"] == "de" and lines[1]["language_from"] == "network"
    assert set(lines[0]) == {"id", "network", "language", "language_from", "sentiment", "labels", "matched_queries"}
    assert all(v is None or 0.0 <= v <= 1.0 for x in lines for v in x["labels"].values())
    assert f"{sample}:3: skipped" in result.stderr and "unknown field(s) txt" in result.stderr
    missing = CliRunner().invoke(app, ["understand", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2
