"""Pure pieces: the entry point, reply fallbacks, hashtags, member events, the sync filter."""

from __future__ import annotations

import json
from importlib.metadata import entry_points

from scrm_matrix import MatrixAdapter, plugin
from scrm_matrix.mapping import body_text, hashtags_of, profile_change, relation_of, sync_filter

from scrm_core import NetworkAdapter


def test_the_entry_point_registers_the_adapter() -> None:
    registered: list[type[NetworkAdapter]] = []
    plugin.scrm_register_networks(registered.append)
    assert registered == [MatrixAdapter]
    assert any(ep.name == "matrix" and ep.value == "scrm_matrix.plugin" for ep in entry_points(group="scrm"))


def test_the_reply_fallback_is_stripped_only_from_replies() -> None:
    quoted = "> <@alice:example.com> my kettle broke\n> it is new\n\nsorry to hear that"
    assert body_text({"body": quoted}, reply=True) == "sorry to hear that"
    assert body_text({"body": quoted}, reply=False) == quoted
    assert body_text({"body": "> a quote, no blank line after"}, reply=True) == "> a quote, no blank line after"
    assert body_text({}, reply=False) == ""


def test_relations() -> None:
    thread = relation_of(
        {
            "m.relates_to": {
                "rel_type": "m.thread",
                "event_id": "$root",
                "is_falling_back": True,
                "m.in_reply_to": {"event_id": "$x"},
            }
        }
    )
    assert (thread.rel_type, thread.target, thread.reply_to, thread.falling_back) == ("m.thread", "$root", "$x", True)
    assert relation_of({"m.relates_to": "nonsense"}).rel_type is None


def test_hashtags_are_not_room_aliases() -> None:
    assert hashtags_of("love my #Kettle, see #support:example.com and #kettle again") == ["kettle"]


def test_member_events_that_are_news() -> None:
    join = {"event_id": "$1", "state_key": "@a:x", "content": {"membership": "join", "displayname": "A"}}
    rename = {**join, "unsigned": {"prev_content": {"membership": "join", "displayname": "Old"}}}
    same = {**join, "unsigned": {"prev_content": {"membership": "join", "displayname": "A"}}}
    leave = {**join, "content": {"membership": "leave"}}
    assert profile_change(join, "matrix") is not None
    assert profile_change(rename, "matrix") is not None
    assert profile_change(same, "matrix") is None
    assert profile_change(leave, "matrix") is None


def test_the_sync_filter_asks_only_for_our_rooms_and_types() -> None:
    data = json.loads(sync_filter(["!a", "!b"], 7))
    assert data["room"]["rooms"] == ["!a", "!b"]
    assert data["room"]["timeline"] == {"types": ["m.room.message", "m.room.redaction", "m.room.member"], "limit": 7}
    assert data["presence"] == {"types": []} and data["room"]["state"]["types"] == []
