"""Bluesky JSON -> scrm models. One code path for AppView views and Jetstream records.

A post is identified by its ``at://<did>/app.bsky.feed.post/<rkey>`` URI and its author by
DID (handles change; https://atproto.com/specs/handle). A reply's record carries
``reply.root`` and ``reply.parent`` strong refs (``{uri, cid}``): the thread's root URI is
the conversation, the parent URI the direct parent (lexicon ``app.bsky.feed.post``).
Mentions are rich-text facets ``app.bsky.richtext.facet#mention`` (by DID), hashtags are
``#tag`` facets plus the record's ``tags``, the language is the first of ``langs``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from scrm_core.models import Direction, Message, SocialProfile

__all__ = [
    "POST",
    "message_from_record",
    "message_from_view",
    "parse_time",
    "post_uri",
    "profile_from_view",
    "split_uri",
    "time_from_us",
    "us_from_time",
]

POST = "app.bsky.feed.post"
NETWORK = "bluesky"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def post_uri(did: str, rkey: str) -> str:
    return f"at://{did}/{POST}/{rkey}"


def split_uri(uri: str) -> tuple[str, str, str]:
    """(did, collection, rkey) of an ``at://`` URI; ValueError if it is not one."""
    if not uri.startswith("at://"):
        raise ValueError(f"not an at:// URI: {uri!r}")
    parts = uri.removeprefix("at://").split("/")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"not an at:// record URI: {uri!r}")
    return parts[0], parts[1], parts[2]


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def time_from_us(time_us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=time_us)


def us_from_time(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(microseconds=1)


def profile_from_view(view: dict[str, Any], network: str = NETWORK) -> SocialProfile:
    """An ``app.bsky.actor.defs#profileView*`` (basic, plain or detailed)."""
    did = str(view["did"])
    handle = view.get("handle")
    return SocialProfile(
        network=network,
        account_id=did,
        handle=handle if handle and handle != "handle.invalid" else None,
        display_name=view.get("displayName") or None,
        bio=view.get("description") or None,
        url=f"https://bsky.app/profile/{did}",
        avatar_url=view.get("avatar") or None,
        followers=view.get("followersCount"),
    )


def _facet_values(record: dict[str, Any], kind: str, key: str) -> list[str]:
    values: list[str] = []
    for facet in record.get("facets") or []:
        for feature in facet.get("features") or []:
            if feature.get("$type") == f"app.bsky.richtext.facet#{kind}" and feature.get(key):
                values.append(str(feature[key]))
    return values


def message_from_record(
    uri: str,
    record: dict[str, Any],
    author: SocialProfile,
    *,
    me: str,
    fallback_time: datetime,
    edited_at: datetime | None = None,
    network: str = NETWORK,
) -> Message:
    """A post record (``app.bsky.feed.post``) as a :class:`Message`."""
    reply = record.get("reply") or {}
    root = (reply.get("root") or {}).get("uri")
    parent = (reply.get("parent") or {}).get("uri")
    _, _, rkey = split_uri(uri)
    hashtags = list(dict.fromkeys([*_facet_values(record, "tag", "tag"), *(record.get("tags") or [])]))
    langs = record.get("langs") or []
    return Message(
        network=network,
        id=uri,
        author=author,
        text=str(record.get("text") or ""),
        created_at=parse_time(record.get("createdAt")) or fallback_time,
        edited_at=edited_at,
        thread_root_id=str(root) if root and root != uri else None,
        parent_id=str(parent) if root and parent else None,
        direction=Direction.outbound if author.account_id == me else Direction.inbound,
        mentions=list(dict.fromkeys(_facet_values(record, "mention", "did"))),
        hashtags=hashtags,
        url=f"https://bsky.app/profile/{author.account_id}/post/{rkey}",
        language=str(langs[0]) if langs else None,
    )


def message_from_view(view: dict[str, Any], *, me: str, network: str = NETWORK) -> Message:
    """An ``app.bsky.feed.defs#postView`` (or a notification, which has the same fields)."""
    indexed = parse_time(view.get("indexedAt")) or datetime.now(UTC)
    return message_from_record(
        str(view["uri"]),
        dict(view.get("record") or {}),
        profile_from_view(view["author"], network),
        me=me,
        fallback_time=indexed,
        network=network,
    )
