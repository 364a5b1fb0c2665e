"""Matrix JSON -> the pieces of scrm models: pure functions, no I/O.

Event shapes, from the client-server spec (v1.15):

* ``m.room.message`` content ``body`` / ``msgtype``
  (https://spec.matrix.org/v1.15/client-server-api/#mroommessage);
* ``m.relates_to``: ``{"m.in_reply_to": {"event_id": ...}}`` for a rich reply
  (https://spec.matrix.org/v1.15/client-server-api/#rich-replies), ``rel_type: "m.thread"``
  with the thread root's ``event_id`` (plus ``m.in_reply_to`` and ``is_falling_back``)
  for a thread (https://spec.matrix.org/v1.15/client-server-api/#threading),
  ``rel_type: "m.replace"`` with ``m.new_content`` for an edit
  (https://spec.matrix.org/v1.15/client-server-api/#event-replacements);
* ``m.mentions.user_ids`` (https://spec.matrix.org/v1.15/client-server-api/#user-and-room-mentions);
* ``m.room.redaction``: ``redacts`` in the content since room version 11, at the top
  level before (https://spec.matrix.org/v1.15/client-server-api/#mroomredaction);
* ``m.room.member``: ``membership``, ``displayname``, ``avatar_url``, the user id in
  ``state_key``, the previous content in ``unsigned.prev_content``
  (https://spec.matrix.org/v1.15/client-server-api/#mroommember).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scrm_core.models import SocialProfile

__all__ = [
    "TIMELINE_TYPES",
    "Relation",
    "body_text",
    "hashtags_of",
    "is_redacted",
    "mentions_of",
    "permalink",
    "profile_change",
    "redacted_id",
    "relation_of",
    "sync_filter",
    "timestamp",
]

MESSAGE, REDACTION, MEMBER = "m.room.message", "m.room.redaction", "m.room.member"
TIMELINE_TYPES = [MESSAGE, REDACTION, MEMBER]
THREAD, REPLACE = "m.thread", "m.replace"

_HASHTAG = re.compile(r"(?<![\w#])#(\w[\w-]*)(?![\w:])")


def sync_filter(room_ids: list[str], limit: int) -> str:
    """An inline ``/sync`` filter: only our rooms' timelines, only the three event types we
    map, nothing else (no state, presence, receipts or account data). A filter passed as
    JSON must start with ``{`` (https://spec.matrix.org/v1.15/client-server-api/#filtering)."""
    nothing: dict[str, list[str]] = {"types": []}
    return json.dumps(
        {
            "presence": nothing,
            "account_data": nothing,
            "room": {
                "rooms": room_ids,
                "timeline": {"types": TIMELINE_TYPES, "limit": limit},
                "state": {"types": [], "lazy_load_members": True},
                "ephemeral": nothing,
                "account_data": nothing,
            },
        },
        separators=(",", ":"),
    )


@dataclass(frozen=True)
class Relation:
    """What ``m.relates_to`` says: a thread (``rel_type`` m.thread, ``target`` the root), an
    edit (m.replace, ``target`` the original), and/or a reply (``reply_to``)."""

    rel_type: str | None = None
    target: str | None = None
    reply_to: str | None = None
    falling_back: bool = False


def relation_of(content: dict[str, Any]) -> Relation:
    rel = content.get("m.relates_to")
    if not isinstance(rel, dict):
        return Relation()
    reply = rel.get("m.in_reply_to")
    reply_to = reply.get("event_id") if isinstance(reply, dict) else None
    rel_type, target = rel.get("rel_type"), rel.get("event_id")
    return Relation(
        rel_type=rel_type if isinstance(rel_type, str) else None,
        target=target if isinstance(target, str) else None,
        reply_to=reply_to if isinstance(reply_to, str) else None,
        falling_back=rel.get("is_falling_back") is True,
    )


def timestamp(ms: Any) -> datetime:
    """``origin_server_ts`` (milliseconds since the epoch) as an aware datetime."""
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def is_redacted(event: dict[str, Any]) -> bool:
    """Redacted events keep their type but lose their content; ``unsigned.redacted_because`` says so."""
    unsigned = event.get("unsigned")
    return isinstance(unsigned, dict) and "redacted_because" in unsigned


def redacted_id(event: dict[str, Any]) -> str | None:
    redacts = (event.get("content") or {}).get("redacts") or event.get("redacts")
    return redacts if isinstance(redacts, str) else None


def body_text(content: dict[str, Any], *, reply: bool) -> str:
    """The message text; for a reply without the legacy quoted fallback (lines starting with
    ``> `` and the blank line after them), which clients are told to strip
    (https://spec.matrix.org/v1.15/client-server-api/#fallbacks-for-rich-replies)."""
    body = content.get("body")
    text = body if isinstance(body, str) else ""
    if reply and text.startswith("> "):
        lines = text.split("\n")
        i = 0
        while i < len(lines) and lines[i].startswith(">"):
            i += 1
        if i < len(lines) and lines[i] == "":
            text = "\n".join(lines[i + 1 :])
    return text


def mentions_of(content: dict[str, Any]) -> list[str]:
    mentions = content.get("m.mentions")
    users = mentions.get("user_ids") if isinstance(mentions, dict) else None
    return [u for u in users if isinstance(u, str)] if isinstance(users, list) else []


def hashtags_of(text: str) -> list[str]:
    """``#word`` in the text (Matrix has no hashtags of its own; ``#room:server`` aliases are not tags)."""
    seen: dict[str, None] = {}
    for tag in _HASHTAG.findall(text):
        seen.setdefault(tag.lower(), None)
    return list(seen)


def permalink(room_id: str, event_id: str | None = None) -> str:
    """A matrix.to link (https://spec.matrix.org/v1.15/appendices/#matrixto-navigation)."""
    from urllib.parse import quote

    path = quote(room_id, safe="!:@")
    if event_id:
        path += "/" + quote(event_id, safe="$")
    return f"https://matrix.to/#/{path}"


def profile_change(event: dict[str, Any], network: str) -> SocialProfile | None:
    """The profile an ``m.room.member`` event shows, if it is news: a join, or a joined
    member's new ``displayname`` / ``avatar_url``. Invites, leaves and bans are not."""
    content = event.get("content") or {}
    user_id = event.get("state_key")
    if content.get("membership") != "join" or not isinstance(user_id, str) or not user_id:
        return None
    unsigned = event.get("unsigned") or {}
    before = unsigned.get("prev_content") if isinstance(unsigned, dict) else None
    before = before if isinstance(before, dict) else {}
    if before.get("membership") == "join" and all(
        before.get(k) == content.get(k) for k in ("displayname", "avatar_url")
    ):
        return None
    return member_profile(user_id, content, network)


def member_profile(user_id: str, content: dict[str, Any], network: str) -> SocialProfile:
    name, avatar = content.get("displayname"), content.get("avatar_url")
    return SocialProfile(
        network=network,
        account_id=user_id,
        handle=user_id,
        display_name=name if isinstance(name, str) and name else None,
        avatar_url=avatar if isinstance(avatar, str) and avatar else None,
        url=permalink(user_id),
    )
