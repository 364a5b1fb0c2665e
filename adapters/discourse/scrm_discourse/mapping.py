"""Discourse post JSON -> scrm models.

Field names are ``PostSerializer``'s (discourse/discourse ``app/serializers/post_serializer.rb``
and ``basic_post_serializer.rb``): ``id``, ``topic_id``, ``post_number``,
``reply_to_post_number``, ``raw`` (with ``add_raw``), ``cooked``, ``created_at``,
``updated_at``, ``version``, ``deleted_at``, ``user_deleted``, ``user_id``, ``username``,
``name``, ``avatar_template``, ``topic_slug``; webhooks add ``topic_archetype`` and
``category_slug`` (``web_hook_post_serializer.rb``).
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import Any

from scrm_core import Direction, Message, SocialProfile, Visibility

__all__ = ["is_deleted", "parse_time", "post_text", "profile_from", "to_message"]

_TAGS = re.compile(r"<[^>]+>")
# Discourse usernames: letters, digits, ``_``, ``.``, ``-`` (``UsernameValidator``, from memory).
_MENTION = re.compile(r"(?<![\w@/])@([A-Za-z0-9_][A-Za-z0-9_.-]*[A-Za-z0-9_]|[A-Za-z0-9_])")
_HASHTAG = re.compile(r"(?<![\w&#/])#([A-Za-z][\w-]*)")


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def post_text(post: dict[str, Any]) -> str:
    """The markdown source when the answer carries it, else the cooked HTML as plain text."""
    raw = post.get("raw")
    if isinstance(raw, str):
        return raw
    return html.unescape(_TAGS.sub("", str(post.get("cooked") or ""))).strip()


def is_deleted(post: dict[str, Any]) -> bool:
    """Deleted by staff (``deleted_at``) or withdrawn by its author (``user_deleted``)."""
    return bool(post.get("deleted_at")) or bool(post.get("user_deleted"))


def avatar_url(base_url: str, template: Any) -> str | None:
    if not isinstance(template, str) or not template:
        return None
    url = template.replace("{size}", "240")
    return url if url.startswith(("http://", "https://")) else f"{base_url}{url}"


def profile_from(network: str, base_url: str, data: dict[str, Any], user_id: Any = None) -> SocialProfile:
    """A profile from a post (``user_id``, ``username``, ``name``) or a user (``id``, ...)."""
    account = user_id if user_id is not None else data.get("user_id", data.get("id"))
    username = data.get("username")
    return SocialProfile(
        network=network,
        account_id=str(account),
        handle=username,
        display_name=data.get("name") or None,
        url=f"{base_url}/u/{username}" if username else None,
        avatar_url=avatar_url(base_url, data.get("avatar_template")),
    )


def to_message(
    post: dict[str, Any],
    *,
    network: str,
    base_url: str,
    outbound_username: str,
    root_id: int | None,
    parent_id: int | None,
    private: bool = False,
    edited: bool = False,
) -> Message:
    """One post as a Message; ``edited`` sets ``edited_at`` from ``updated_at`` (the edit's version)."""
    text = post_text(post)
    created = parse_time(post.get("created_at"))
    if created is None:
        raise ValueError(f"post {post.get('id')} has no created_at")
    username = str(post.get("username") or "")
    topic = post.get("topic_id")
    slug = post.get("topic_slug") or "-"
    return Message(
        network=network,
        id=str(post["id"]),
        author=profile_from(network, base_url, post),
        text=text,
        created_at=created,
        edited_at=(parse_time(post.get("updated_at")) or created) if edited else None,
        thread_root_id=str(root_id) if root_id is not None else None,
        parent_id=str(parent_id) if parent_id is not None else None,
        visibility=Visibility.direct if private else Visibility.public,
        direction=Direction.outbound if username.lower() == outbound_username.lower() else Direction.inbound,
        mentions=sorted(set(_MENTION.findall(text))),
        hashtags=sorted({t.lower() for t in _HASHTAG.findall(text)}),
        url=f"{base_url}/t/{slug}/{topic}/{post.get('post_number')}" if topic is not None else None,
    )
