"""The listening filter of a firehose source: through the whole engine, replay -> state store -> localcrm.

What no query matches and is not addressed to the company is dropped before the state
store: no seen key, message, profile or conversation row, nothing in the CRM, and it is
counted. Edits and deletions of messages never stored break nothing.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from scrm.engine.ingest import Ingestor
from scrm.plugins import PluginHost
from scrm_replay import dump_event

from scrm_core.models import (
    Direction,
    Message,
    MessageCreated,
    MessageDeleted,
    MessageEdited,
    ProfileUpdated,
    SocialProfile,
    Visibility,
)
from tests.e2e import crm_state, load, run_once, write_config

T0 = datetime(2026, 1, 1, tzinfo=UTC)
US = SocialProfile(network="x", account_id="7", handle="AcmeHelp")

FILTER = """
[company]
accounts = { x = ["acmehelp"] }

[[listening.queries]]
name = "brand"
query = 'acme OR "acme corp"'

[[routing.rules]]
name = "everything"
actions = [{ kind = "log" }]
"""


def person(n: int) -> SocialProfile:
    return SocialProfile(network="x", account_id=str(100 + n), handle=f"user{n}")


def msg(mid: str, text: str, who: SocialProfile | None = None, minute: int = 0, **fields: Any) -> Message:
    return Message(
        network="x",
        id=mid,
        author=who or person(int(mid[1:])),
        text=text,
        created_at=T0 + timedelta(minutes=minute),
        **fields,
    )


def created(*args: Any, **fields: Any) -> bytes:
    return dump_event(MessageCreated(message=msg(*args, **fields)))


def edited(mid: str, text: str, minute: int) -> bytes:
    return dump_event(MessageEdited(message=msg(mid, text, minute=0, edited_at=T0 + timedelta(minutes=minute))))


def deleted(mid: str) -> bytes:
    return dump_event(MessageDeleted(network="x", message_id=mid, deleted_at=T0 + timedelta(hours=1)))


FIREHOSE = [
    created("m1", "my Acme kettle broke"),  # matches a query
    created("m2", "lovely weather today"),  # dropped
    created("m3", "@AcmeHelp where is my order?"),  # mentions the company
    created("m4", "can you call me back", visibility=Visibility.direct),  # a direct message
    created("m5", "we are on it", who=US, direction=Direction.outbound),  # the company's own message
    created("m6", "thanks, still waiting", parent_id="m5"),  # replies to the company
    created("m7", "the cat sat on the mat"),  # dropped, then edited to match
    edited("m7", "the cat sat on the acme mat", 5),
    created("m8", "nothing here"),  # dropped, edited, still nothing
    edited("m8", "still nothing here", 6),
    deleted("m8"),  # deletion of a message never stored
    deleted("m9"),  # deletion of a message never seen at all
    created("m10", "acme again, to be deleted"),
    deleted("m10"),  # deletion of a kept message: redacted in the CRM
    dump_event(ProfileUpdated(profile=person(2).model_copy(update={"display_name": "Two"}), version="v2")),
    dump_event(ProfileUpdated(profile=person(1).model_copy(update={"display_name": "One"}), version="v2")),
]
KEPT = {"m1", "m3", "m4", "m5", "m6", "m7", "m10"}


@pytest.fixture(scope="module")
def host() -> PluginHost:
    return PluginHost(env={}).load()


def source_with_filter(config: Path) -> None:
    """Turn the listening filter on for the config's sources."""
    text = config.read_text().replace("page_size = 200 }", "page_size = 200 }\nlistening_filter = true")
    config.write_text(text)


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_filtered_firehose_stores_only_what_the_company_listens_for(tmp_path: Path, host: PluginHost) -> None:
    data = tmp_path / "firehose.ndjson"
    data.write_bytes(b"".join(FIREHOSE))
    config = write_config(tmp_path, [data], extra=FILTER)
    source_with_filter(config)

    stats = run_once(config, host)

    state = crm_state(tmp_path / "crm.db")
    assert set(state.messages) == {f"scrm:x:{m}" for m in KEPT}
    assert state.messages["scrm:x:m10"][1], "the kept message's deletion reached the CRM"
    assert state.messages["scrm:x:m7"] == ("the cat sat on the acme mat", False), "first kept as its matching edit"
    assert "scrm:x:102" not in state.profiles and "scrm:x:108" not in state.profiles
    store = tmp_path / "state.db"
    stored = {k for (k,) in rows(store, "SELECT key FROM messages")}
    assert stored == {f"x:{m}" for m in KEPT}, "no row for dropped messages, nor a tombstone for m8/m9"
    # Seen-event keys: seen_events, and the creations kept in the message index rows.
    seen_sql = "SELECT key FROM seen_events UNION ALL SELECT 'c:' || key FROM messages WHERE created"
    seen = [k for (k,) in rows(store, seen_sql)]
    assert not any(key.endswith((":m2", ":x:m8", ":x:m9", ":x:102:v2")) or ":m8:" in key for key in seen), seen
    assert "c:x:m1" in seen and "d:x:m10" in seen
    assert {k for (k,) in rows(store, "SELECT key FROM profiles")} == {
        "x:101",
        "x:103",
        "x:104",
        "x:7",
        "x:106",
        "x:107",
        "x:110",
    }
    # m2; m7's creation (its edit matched, and is kept as the message); m8 created, edited and
    # deleted; m9's deletion; user2's profile update
    assert stats.ingest.filtered == 7
    assert stats.ingest.events == len(FIREHOSE)
    assert stats.ingest.deletions == 1 and stats.sink.dead_lettered == 0


def test_without_the_filter_everything_is_stored(tmp_path: Path, host: PluginHost) -> None:
    data = tmp_path / "firehose.ndjson"
    data.write_bytes(b"".join(FIREHOSE))
    stats = run_once(write_config(tmp_path, [data], extra=FILTER), host)
    assert stats.ingest.filtered == 0
    assert len(crm_state(tmp_path / "crm.db").messages) == 9  # m1..m8 and m10 (m9 was never created)


def test_a_reply_to_a_message_stored_by_an_earlier_run_is_kept(tmp_path: Path, host: PluginHost) -> None:
    first, second = tmp_path / "a.ndjson", tmp_path / "b.ndjson"
    first.write_bytes(created("m5", "we are on it", who=US, direction=Direction.outbound))
    config = write_config(tmp_path, [first], extra=FILTER)
    source_with_filter(config)
    run_once(config, host)
    second.write_bytes(created("m6", "thanks, still waiting", parent_id="m5") + created("m2", "lovely weather"))
    config = write_config(tmp_path, [first, second], extra=FILTER)  # b.ndjson is a new source: src-1
    source_with_filter(config)
    stats = run_once(config, host)
    assert stats.ingest.filtered == 1
    assert "scrm:x:m6" in crm_state(tmp_path / "crm.db").messages


def test_the_run_summary_shows_what_the_filter_dropped(tmp_path: Path, host: PluginHost) -> None:
    from scrm.cli.run import describe

    data = tmp_path / "firehose.ndjson"
    data.write_bytes(b"".join(FIREHOSE))
    config = write_config(tmp_path, [data], extra=FILTER)
    source_with_filter(config)
    assert "dropped by the listening filter 7" in describe(run_once(config, host))


def test_a_filter_with_nothing_to_keep_is_refused(tmp_path: Path, host: PluginHost) -> None:
    from scrm_core.errors import ConfigError

    data = tmp_path / "firehose.ndjson"
    data.write_bytes(b"")
    config = write_config(tmp_path, [data], extra="")
    source_with_filter(config)
    with pytest.raises(ConfigError) as raised:
        load(config, host)
    assert any(
        p.startswith("sources[0].listening_filter: with no [[listening.queries]]") for p in raised.value.problems
    )


def test_a_filter_without_a_matcher_stops_with_a_clear_error(tmp_path: Path) -> None:
    import asyncio

    from scrm_core.errors import FatalError

    data = tmp_path / "firehose.ndjson"
    data.write_bytes(created("m1", "acme"))
    config = write_config(tmp_path, [data], extra=FILTER)
    source_with_filter(config)
    bare = PluginHost(env={"SCRM_DISABLE_PLUGINS": "listening"}).load()
    ingestor = Ingestor(None, bare.hooks_for(load(config, bare)), load(config, bare))  # type: ignore[arg-type]
    from scrm_core.models import EventPage

    page = EventPage(events=[MessageCreated(message=msg("m1", "acme"))], cursor="1")
    with pytest.raises(FatalError, match="listening_filter = true but no plugin matches listening queries"):
        asyncio.run(ingestor.process("src-0", page))


def test_the_filter_covers_a_webhook_sources_stored_payloads_too(tmp_path: Path, host: PluginHost) -> None:
    from scrm.engine.inbox import inbox_checkpoint

    data = tmp_path / "firehose.ndjson"
    data.write_bytes(b"")
    config = write_config(tmp_path, [data], extra=FILTER)
    source_with_filter(config)
    ingestor = Ingestor(None, host.hooks_for(load(config, host)), load(config, host))  # type: ignore[arg-type]
    assert ingestor.filter.applies("src-0") and ingestor.filter.applies(inbox_checkpoint("src-0"))
    assert not ingestor.filter.applies("replies")
