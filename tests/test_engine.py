"""The whole pipeline in-process: replay -> engine -> embedded CRM, with faults injected."""

from __future__ import annotations

import gc
import random
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx
import orjson
import pytest
from scrm.plugins import PluginHost
from scrm.store import open_store
from scrm_localcrm.adapter import LocalCrm
from scrm_replay.demo import generate_demo

from scrm_core import (
    Batch,
    CrmLimits,
    CrmOperation,
    FatalError,
    JsonCursor,
    Message,
    MessageCreated,
    NetworkCapability,
    OperationResult,
    PollingAdapter,
    PollingSettings,
    RetryableError,
    SocialProfile,
    hookimpl,
)
from tests.e2e import crm_state, expected_messages, expected_profiles, run_once, write_config


@pytest.fixture
def host() -> PluginHost:
    return PluginHost(env={}).load()


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("demo")
    generate_demo(folder, messages=900, seed=11)
    return sorted(folder.glob("*.ndjson"))


def assert_exactly_once(folder: Path, files: list[Path]) -> None:
    state = crm_state(folder / "crm.db")
    expected = expected_messages(files)
    assert state.message_rows == len(expected)
    assert state.messages == expected  # every message once, final text after edits, deletions redacted
    assert state.profile_rows == len(state.profiles) == len(expected_profiles(files))
    assert state.profiles == expected_profiles(files)


def test_demo_stream_lands_exactly_once(tmp_path: Path, host: PluginHost, demo_files: list[Path]) -> None:
    stats = run_once(write_config(tmp_path, demo_files), host)
    assert_exactly_once(tmp_path, demo_files)
    state = crm_state(tmp_path / "crm.db")
    assert state.cases > 0 and state.leads > 0 and state.contacts == state.profile_rows
    assert stats.ingest.edits > 0 and stats.ingest.deletions > 0
    assert stats.sink.dead_lettered == 0
    # batching: far fewer CRM calls than records written
    assert stats.sink.calls * 50 < stats.sink.applied


def test_crm_calls_leave_no_cyclic_garbage_behind(tmp_path: Path, host: PluginHost, demo_files: list[Path]) -> None:
    # `scrm run` makes the collector rare (tune_gc_for_throughput), so a reference cycle made
    # per CRM call stays in memory long after the call: the sink keeps one retry policy.
    gc.collect()
    gc.disable()
    try:
        stats = run_once(write_config(tmp_path, demo_files), host)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = [type(o).__name__ for o in gc.garbage if type(o).__module__.startswith("tenacity")]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert stats.sink.calls > 2
    assert left.count("AsyncRetrying") <= 1, (
        f"{left.count('AsyncRetrying')} retry policies for {stats.sink.calls} calls"
    )


def test_a_second_run_writes_nothing_even_if_the_source_replays_everything(
    tmp_path: Path, host: PluginHost, demo_files: list[Path]
) -> None:
    config = write_config(tmp_path, demo_files)
    run_once(config, host)
    before = crm_state(tmp_path / "crm.db")
    again = run_once(config, host)
    assert again.ingest.events == 0 and again.sink.calls == 0  # resumed from the saved cursor
    with sqlite3.connect(tmp_path / "state.db") as con:
        con.execute("DELETE FROM checkpoints")  # now the sources re-deliver every event
    replayed = run_once(config, host)
    assert replayed.ingest.events > 0 and replayed.ingest.duplicates == replayed.ingest.events
    assert replayed.sink.calls == 0
    assert crm_state(tmp_path / "crm.db") == before


def test_malformed_lines_go_to_the_dead_letter_queue_and_the_rest_syncs(tmp_path: Path, host: PluginHost) -> None:
    data = tmp_path / "data"
    stats = generate_demo(data, messages=300, seed=5, malformed=4)
    files = sorted(data.glob("*.ndjson"))
    run_once(write_config(tmp_path, files), host)
    store = open_store("sqlite:///state.db", tmp_path)
    try:
        letters = store.dead_letters(100)
    finally:
        store.close()
    assert len(letters) == 4 == stats.malformed
    for letter in letters:
        name, line = letter.locator.rsplit(":", 1)
        assert name.endswith(".ndjson") and int(line) > 0 and letter.reason and letter.op is None
    assert_exactly_once(tmp_path, files)


class _Flaky(LocalCrm):
    """Fails 20% of calls before writing and 10% after writing (a timeout whose request landed)."""

    name = "flaky"
    limits = CrmLimits(max_batch=25)  # many calls, so that many of them fail
    rng = random.Random(3)
    failures = 0

    async def apply(self, ops: Sequence[CrmOperation]) -> list[OperationResult]:
        roll = self.rng.random()
        if roll < 0.2:
            type(self).failures += 1
            raise RetryableError("HTTP 503 from the CRM", retry_after=0.001)
        results = await super().apply(ops)
        if roll < 0.3:
            type(self).failures += 1
            raise RetryableError("read timeout after the CRM committed")
        return results


class _FlakyPlugin:
    @staticmethod
    @hookimpl
    def scrm_register_crms(register: object) -> None:
        register(_Flaky)  # type: ignore[operator]


def test_transient_crm_faults_change_nothing_in_the_result(
    tmp_path: Path, host: PluginHost, demo_files: list[Path]
) -> None:
    host.register(_FlakyPlugin(), "flaky")
    stats = run_once(write_config(tmp_path, demo_files, crm="flaky"), host)
    assert _Flaky.failures > 5 and stats.sink.retried_calls >= _Flaky.failures
    assert stats.sink.dead_lettered == 0
    assert_exactly_once(tmp_path, demo_files)


class _Picky(LocalCrm):
    """Refuses, for good, any message whose text contains REJECTME (like a CRM validation rule)."""

    name = "picky"

    async def apply(self, ops: Sequence[CrmOperation]) -> list[OperationResult]:
        keep = [op for op in ops if "REJECTME" not in str(op.fields.get("text", ""))]
        applied = iter(await super().apply(keep)) if keep else iter(())
        return [
            next(applied)
            if "REJECTME" not in str(op.fields.get("text", ""))
            else OperationResult(external_key=op.external_key, ok=False, error="text violates rule NO_SHOUTING")
            for op in ops
        ]


def _event(n: int, text: str) -> bytes:
    author = {"network": "t", "account_id": f"a{n % 3}", "handle": f"h{n % 3}"}
    message = {
        "network": "t",
        "id": str(n),
        "author": author,
        "text": text,
        "created_at": datetime.now(UTC).isoformat(),
    }
    return orjson.dumps({"kind": "message.created", "message": message}) + b"\n"


def test_refused_records_are_dead_lettered_then_requeued(tmp_path: Path, host: PluginHost) -> None:
    class Plugin:
        @staticmethod
        @hookimpl
        def scrm_register_crms(register: object) -> None:
            register(_Picky)  # type: ignore[operator]

    host.register(Plugin(), "picky")
    data = tmp_path / "posts.ndjson"
    data.write_bytes(b"".join(_event(n, "REJECTME please" if n in (3, 7) else f"hello {n}") for n in range(10)))
    stats = run_once(write_config(tmp_path, [data], crm="picky"), host)
    assert stats.sink.dead_lettered == 2
    assert len(crm_state(tmp_path / "crm.db").messages) == 8
    store = open_store("sqlite:///state.db", tmp_path)
    try:
        reasons = {d.locator: d.reason for d in store.dead_letters()}
        assert reasons == {"scrm:t:3": "text violates rule NO_SHOUTING", "scrm:t:7": "text violates rule NO_SHOUTING"}
        assert store.requeue_dead_letters() == 2
    finally:
        store.close()
    # The operator fixed the CRM rule: the same config on the permissive CRM sends the two.
    run_once(write_config(tmp_path, [data], crm="localcrm"), host)
    assert len(crm_state(tmp_path / "crm.db").messages) == 10


def test_a_plugin_that_raises_does_not_stop_the_run(tmp_path: Path, host: PluginHost, demo_files: list[Path]) -> None:
    class Broken:
        @staticmethod
        @hookimpl
        def scrm_classify_message(message: object) -> list[str]:
            raise ValueError("bug in a third-party plugin")

    host.register(Broken(), "broken-classifier")
    stats = run_once(write_config(tmp_path, demo_files), host)
    assert stats.plugin_failures["broken-classifier"] == stats.ingest.messages + stats.ingest.edits
    assert_exactly_once(tmp_path, demo_files)


def test_spam_is_not_copied_and_its_later_deletion_writes_nothing(tmp_path: Path, host: PluginHost) -> None:
    data = tmp_path / "posts.ndjson"
    deletion = orjson.dumps({"kind": "message.deleted", "network": "t", "message_id": "1"}) + b"\n"
    early_deletion = orjson.dumps({"kind": "message.deleted", "network": "t", "message_id": "9"}) + b"\n"
    data.write_bytes(
        _event(0, "hello")
        + _event(1, "crypto giveaway click here")
        + deletion
        + early_deletion
        + _event(9, "deleted before we saw it")
    )
    config = write_config(tmp_path, [data], extra="")  # the built-in default rules: spam is ignored
    stats = run_once(config, host)
    assert set(crm_state(tmp_path / "crm.db").messages) == {"scrm:t:0"}
    assert stats.ingest.ignored == 1 and stats.sink.dead_lettered == 0
    store = open_store("sqlite:///state.db", tmp_path)
    try:
        actions = {(entry.action, entry.subject) for _, entry in store.audit_log()}
    finally:
        store.close()
    assert ("message.deleted", "t:9") in actions and ("message.redacted", "t:1") in actions


class _Down(LocalCrm):
    """A CRM that is down: every call fails as a transient error."""

    name = "down"
    calls = 0

    async def apply(self, ops: Sequence[CrmOperation]) -> list[OperationResult]:
        type(self).calls += 1
        raise RetryableError("HTTP 503 Service Unavailable", retry_after=0.001)


def test_a_crm_outage_keeps_the_outbox_and_the_next_run_sends_it_first(
    tmp_path: Path, host: PluginHost, demo_files: list[Path]
) -> None:
    class Plugin:
        @staticmethod
        @hookimpl
        def scrm_register_crms(register: object) -> None:
            register(_Down)  # type: ignore[operator]

    host.register(Plugin(), "down")
    engine = "max_attempts = 3\noutbox_high_water = 100\n"  # small: ingest must stop at the high-water mark
    with pytest.raises(FatalError, match=r"the CRM kept failing .*HTTP 503.* stay in the outbox"):
        run_once(write_config(tmp_path, demo_files, crm="down", engine=engine), host)
    assert _Down.calls == 3  # gave up after max_attempts, no busy loop
    store = open_store("sqlite:///state.db", tmp_path)
    try:
        backlog = store.outbox_depth()
    finally:
        store.close()
    assert backlog > 0
    # The CRM is back: the backlog and the rest of the stream go out, each record once.
    stats = run_once(write_config(tmp_path, demo_files, engine=engine), host)
    assert stats.sink.applied >= backlog
    assert_exactly_once(tmp_path, demo_files)


def test_an_edit_seen_before_its_creation_wins(tmp_path: Path, host: PluginHost) -> None:
    created = orjson.loads(_event(5, "first version"))
    edited = {"kind": "message.edited", "message": {**created["message"], "text": "second version"}}
    edited["message"]["edited_at"] = datetime.now(UTC).isoformat()
    data = tmp_path / "posts.ndjson"
    data.write_bytes(orjson.dumps(edited) + b"\n" + orjson.dumps(created) + b"\n")
    stats = run_once(write_config(tmp_path, [data]), host)
    assert crm_state(tmp_path / "crm.db").messages == {"scrm:t:5": ("second version", False)}
    assert stats.ingest.messages == 1


class _Acking(PollingAdapter[PollingSettings, JsonCursor]):
    """Three pages of one message each; records what the engine hands it and acknowledges."""

    name = "acking"
    Settings = PollingSettings
    capabilities = frozenset({NetworkCapability.poll})
    seen: ClassVar[dict[str, Any]] = {}

    class cursor_type(JsonCursor):
        prefix = "ack1:"
        n: int = 0

    async def start(self) -> None:
        self.seen["http"] = self.context.http
        self.seen["committed"] = []

    async def fetch(self, cursor: Any) -> Batch[Any]:
        n = cursor.n + 1
        return Batch([n] if n <= 3 else [], type(cursor)(n=min(n, 3)), more=n < 3)

    def item_id(self, item: int) -> str:
        return str(item)

    def to_events(self, item: int) -> list[MessageCreated]:
        who = SocialProfile(network="acking", account_id="u1")
        at = datetime(2026, 1, 1, tzinfo=UTC)
        return [MessageCreated(message=Message(network="acking", id=str(item), author=who, text="hi", created_at=at))]

    async def committed(self, cursor: str) -> None:
        self.seen["committed"].append(cursor)


def test_the_engine_shares_one_http_client_and_acknowledges_each_commit_in_order(
    tmp_path: Path, host: PluginHost
) -> None:
    class Plugin:
        @staticmethod
        @hookimpl
        def scrm_register_networks(register: object) -> None:
            register(_Acking)  # type: ignore[operator]

    host.register(Plugin(), "acking")
    config = write_config(tmp_path, [])
    config.write_text(config.read_text() + '\n[[sources]]\nname = "ack"\nadapter = "acking"\nsettings = {}\n')
    run_once(config, host)
    assert isinstance(_Acking.seen["http"], httpx.AsyncClient)  # the host's shared client
    assert _Acking.seen["committed"] == ['ack1:{"n":1}', 'ack1:{"n":2}', 'ack1:{"n":3}']
    with sqlite3.connect(tmp_path / "crm.db") as con:
        assert con.execute("SELECT count(*) FROM messages").fetchone()[0] == 3
