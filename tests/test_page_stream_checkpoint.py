"""A source with ``stream = true`` outside a fleet (SQLite, one process) is read and ingested
as any other, and a checkpoint a streamed run left (sequence + cursor) is resumed from its
cursor: switching a source in and out of the fleet's stream loses and repeats nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from scrm.plugins import PluginHost
from scrm.store import PageCommit, open_store
from scrm_replay.demo import generate_demo

from scrm_core.streams import split_checkpoint, stream_checkpoint
from tests.e2e import crm_state, expected_messages, run_once, write_config


@pytest.fixture
def host() -> PluginHost:
    return PluginHost(env={}).load()


def test_a_streamed_sources_checkpoint_is_resumed_by_a_single_process(tmp_path: Path, host: PluginHost) -> None:
    generate_demo(tmp_path / "full", messages=200, seed=4)
    (full,) = sorted((tmp_path / "full").glob("*.ndjson"))[:1]
    lines = full.read_bytes().splitlines(keepends=True)
    data = tmp_path / "data.ndjson"
    data.write_bytes(b"".join(lines[: len(lines) // 2]))
    config = write_config(tmp_path, [data])
    config.write_text(config.read_text().replace('adapter = "replay"\n', 'adapter = "replay"\nstream = true\n'))
    assert run_once(config, host).ingest.events > 0
    # What a fleet's streamed run leaves: the sequence of its last page beside the cursor.
    store = open_store("sqlite:///state.db", tmp_path, host.stores)
    cursor = store.checkpoint("src-0")
    assert cursor is not None and split_checkpoint(cursor) == (None, cursor)
    store.claim_writer()
    store.commit_page(PageCommit("src-0", stream_checkpoint(12, cursor)))
    store.close()
    with data.open("ab") as out:
        out.write(b"".join(lines[len(lines) // 2 :]))
    second = run_once(config, host)
    assert second.ingest.duplicates == 0  # resumed from the cursor inside the stream checkpoint
    expected = expected_messages([full])
    crm = crm_state(tmp_path / "crm.db")
    assert crm.messages == expected and crm.message_rows == len(expected)
