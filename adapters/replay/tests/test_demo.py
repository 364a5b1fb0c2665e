"""The demo generator: deterministic, exact, valid, consistent; and expected_state."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from scrm_replay import EVENT_ADAPTER, ReplayAdapter, ReplaySettings, expected_state, generate_demo
from scrm_replay.demo import DemoStats

from scrm_core import AdapterContext, MessageCreated, MessageDeleted, MessageEdited, ProfileUpdated


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoStats]:
    out = tmp_path_factory.mktemp("demo")
    return out, generate_demo(out, messages=3000, seed=11)


def read_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    a, b, c = (generate_demo(tmp_path / name, messages=500, seed=seed) for name, seed in (("a", 1), ("b", 1), ("c", 2)))
    for fa, fb, fc in zip(a.files, b.files, c.files, strict=True):
        assert fa.read_bytes() == fb.read_bytes()
        assert fa.read_bytes() != fc.read_bytes()
    assert a.per_intent == b.per_intent


def test_exact_message_count_and_stats(demo: tuple[Path, DemoStats]) -> None:
    _, stats = demo
    kinds: dict[str, int] = {}
    networks: dict[str, int] = {}
    for path in stats.files:
        for raw in read_lines(path):
            event = orjson.loads(raw)
            kinds[event["kind"]] = kinds.get(event["kind"], 0) + 1
            if event["kind"] == "message.created":
                net = event["message"]["network"]
                networks[net] = networks.get(net, 0) + 1
    assert kinds["message.created"] == stats.messages == 3000
    assert kinds["message.edited"] == stats.edits > 0
    assert kinds["message.deleted"] == stats.deletes > 0
    assert kinds["profile.updated"] == stats.profiles
    assert networks == stats.per_network and set(networks) == {"mastodon", "bluesky", "reddit"}
    assert sum(stats.per_intent.values()) == stats.messages
    assert {"complaint", "question", "praise", "purchase", "spam", "neutral", "support"} <= set(stats.per_intent)
    assert stats.threads > 0 and stats.outbound > 0 and stats.direct > 0
    assert [p.name for p in stats.files] == ["demo-bluesky.ndjson", "demo-mastodon.ndjson", "demo-reddit.ndjson"]


def test_every_line_is_an_event(demo: tuple[Path, DemoStats]) -> None:
    _, stats = demo
    for path in stats.files:
        for raw in read_lines(path):
            EVENT_ADAPTER.validate_json(raw)


def test_streams_are_consistent(demo: tuple[Path, DemoStats]) -> None:
    _, stats = demo
    for path in stats.files:
        created: dict[str, MessageCreated] = {}
        deleted: set[str] = set()
        last = None
        for raw in read_lines(path):
            event = EVENT_ADAPTER.validate_json(raw)
            when = None
            if isinstance(event, MessageCreated):
                m = event.message
                assert m.network in path.name
                if m.thread_root_id is None:
                    assert m.parent_id is None
                else:  # replies point back at messages earlier in the same file
                    assert m.thread_root_id in created and m.parent_id in created, m.key
                    assert created[m.thread_root_id].message.thread_root_id is None
                    assert created[m.parent_id].message.conversation_key == m.conversation_key
                    assert m.parent_id not in deleted
                assert (m.direction == "outbound") == (
                    m.author.handle in {"acmekettles@mastodon.social", "acmekettles.bsky.social", "AcmeKettles"}
                )
                assert m.id not in created
                created[m.id] = event
                when = m.created_at
            elif isinstance(event, MessageEdited):
                m = event.message
                assert m.id in created and m.id not in deleted
                assert m.edited_at is not None and m.edited_at > m.created_at
                assert m.created_at == created[m.id].message.created_at
                when = m.edited_at
            elif isinstance(event, MessageDeleted):
                assert event.message_id in created and event.message_id not in deleted
                deleted.add(event.message_id)
                when = event.deleted_at
            if when is not None:
                assert last is None or when >= last, "events must be in time order"
                last = when


def test_network_id_shapes(demo: tuple[Path, DemoStats]) -> None:
    out, _ = demo
    first = {
        name: EVENT_ADAPTER.validate_json(read_lines(out / f"demo-{name}.ndjson")[0])
        for name in ("mastodon", "bluesky", "reddit")
    }
    m = first["mastodon"]
    assert isinstance(m, MessageCreated) and m.message.id.isdigit() and m.message.author.account_id.isdigit()
    assert "@" in (m.message.author.handle or "")
    b = first["bluesky"]
    assert isinstance(b, MessageCreated) and b.message.id.startswith(
        f"at://{b.message.author.account_id}/app.bsky.feed.post/"
    )
    assert b.message.author.account_id.startswith("did:plc:") and (b.message.author.handle or "").endswith(
        ".bsky.social"
    )
    r = first["reddit"]
    assert (
        isinstance(r, MessageCreated)
        and r.message.id.startswith("t3_")
        and r.message.author.account_id.startswith("t2_")
    )


def test_handle_changes_keep_the_account_id(tmp_path: Path) -> None:
    stats = generate_demo(tmp_path, messages=5000, seed=3)
    assert stats.profiles > 0
    handles: dict[str, set[str]] = {}
    for path in stats.files:
        for raw in read_lines(path):
            event = EVENT_ADAPTER.validate_json(raw)
            if isinstance(event, ProfileUpdated):
                handles.setdefault(event.profile.key, set()).add(event.profile.handle or "")
            elif isinstance(event, MessageCreated):
                handles.setdefault(event.message.author.key, set()).add(event.message.author.handle or "")
    assert any(len(h) > 1 for h in handles.values()), "some account must appear under two handles"


def test_malformed_lines_are_counted_and_rejected(tmp_path: Path) -> None:
    clean = generate_demo(tmp_path / "clean", messages=400, seed=5)
    dirty = generate_demo(tmp_path / "dirty", messages=400, seed=5, malformed=9)
    assert dirty.malformed == 9 and dirty.messages == 400

    async def rejects(base: Path) -> int:
        adapter = ReplayAdapter(ReplaySettings(paths=["*.ndjson"]), AdapterContext(name="r", base_dir=base))
        return sum([len(page.rejects) async for page in adapter.listen(None, follow=False)])

    assert asyncio.run(rejects(tmp_path / "dirty")) == 9
    # The broken lines are extra: the valid events are the same.
    assert expected_state([tmp_path / "dirty"]) == expected_state(clean.files)


def test_expected_state_on_a_hand_built_file(tmp_path: Path) -> None:
    author = {"network": "t", "account_id": "1"}

    def msg(mid: str, text: str, **extra: object) -> dict[str, object]:
        return {
            "network": "t",
            "id": mid,
            "author": author,
            "text": text,
            "created_at": "2024-01-01T00:00:00Z",
            **extra,
        }

    events = [
        {"kind": "message.created", "message": msg("1", "first")},
        {"kind": "message.created", "message": msg("2", "second")},
        {"kind": "message.edited", "message": msg("1", "first, edited", edited_at="2024-01-01T00:05:00Z")},
        {"kind": "message.created", "message": msg("3", "third")},
        {"kind": "message.deleted", "network": "t", "message_id": "2"},
        {"kind": "message.edited", "message": msg("2", "edit after delete", edited_at="2024-01-01T00:09:00Z")},
        {"kind": "profile.updated", "profile": author, "version": "1"},
    ]
    path = tmp_path / "hand.ndjson"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events) + b"not json\n" + b'{"kind":"message.cre')
    assert expected_state([path]) == {"t:1": "first, edited", "t:2": None, "t:3": "third"}


def test_zero_messages(tmp_path: Path) -> None:
    stats = generate_demo(tmp_path, messages=0)
    assert stats.messages == 0 and all(p.read_bytes() == b"" for p in stats.files)
    with pytest.raises(ValueError, match=">= 0"):
        generate_demo(tmp_path, messages=-1)
