"""Graph API JSON (Facebook posts and comments, Instagram media and comments) as scrm messages.

Field names follow the Graph reference:
https://developers.facebook.com/docs/graph-api/reference/pagepost (``id``, ``message``,
``created_time``, ``updated_time``, ``from``, ``permalink_url``),
https://developers.facebook.com/docs/graph-api/reference/comment (``parent``, ``from``,
``message``, ``message_tags``),
https://developers.facebook.com/docs/instagram-api/reference/ig-media (``caption``,
``timestamp``, ``username``, ``permalink``) and
https://developers.facebook.com/docs/instagram-api/reference/ig-comment (``text``,
``timestamp``, ``from{id,username}``, ``parent_id``, ``media``).

Facebook shows a Page the *name* of the people who comment (no handle), Instagram the
``username`` (the handle, which can change) and an Instagram-scoped id: ``account_id`` is
always the id.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from scrm_core import Direction, Message, SocialProfile

__all__ = [
    "FB_COMMENT_FIELDS",
    "FB_POST_FIELDS",
    "IG_COMMENT_FIELDS",
    "IG_MEDIA_FIELDS",
    "fb_comment",
    "fb_post",
    "ig_comment",
    "ig_media",
    "parse_time",
]

FB_POST_FIELDS = "id,message,created_time,updated_time,from,permalink_url,message_tags"
FB_COMMENT_FIELDS = "id,message,created_time,from,parent{id},permalink_url,message_tags"
IG_MEDIA_FIELDS = "id,caption,timestamp,username,permalink"
IG_COMMENT_FIELDS = "id,text,timestamp,username,from{id,username},parent_id,media{id}"

_HASHTAG = re.compile(r"(?<![\w&])#(\w+)")
_MENTION = re.compile(r"(?<![\w.])@([A-Za-z0-9_.]+)")


def parse_time(value: Any) -> datetime:
    """Graph times: ``2024-05-01T09:01:00+0000`` (ISO 8601) or Unix seconds in webhooks."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        if value.isdigit():
            return datetime.fromtimestamp(int(value), UTC)
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)
    raise ValueError(f"not a Graph time: {value!r}")


def _hashtags(text: str) -> list[str]:
    return [tag.lower() for tag in _HASHTAG.findall(text)]


def _fb_author(node: dict[str, Any], network: str) -> SocialProfile:
    who = node.get("from") or {}
    if not who.get("id"):
        # Graph omits `from` for people who have not authorised the app in some contexts.
        raise ValueError(f"{node.get('id')}: no `from` (author) in the Graph answer")
    return SocialProfile(network=network, account_id=str(who["id"]), display_name=who.get("name"))


def _fb_mentions(node: dict[str, Any]) -> list[str]:
    return [str(tag["name"]) for tag in node.get("message_tags") or [] if isinstance(tag, dict) and tag.get("name")]


def fb_post(node: dict[str, Any], *, network: str, page_id: str) -> Message:
    text = str(node.get("message") or "")
    author = _fb_author(node, network)
    return Message(
        network=network,
        id=str(node["id"]),
        author=author,
        text=text,
        created_at=parse_time(node["created_time"]),
        direction=Direction.outbound if author.account_id == page_id else Direction.inbound,
        url=node.get("permalink_url"),
        mentions=_fb_mentions(node),
        hashtags=_hashtags(text),
    )


def fb_comment(node: dict[str, Any], *, network: str, page_id: str, post_id: str) -> Message:
    """A comment on ``post_id``; its parent is the comment named by ``parent`` or else the post."""
    text = str(node.get("message") or "")
    author = _fb_author(node, network)
    parent = (node.get("parent") or {}).get("id")
    return Message(
        network=network,
        id=str(node["id"]),
        author=author,
        text=text,
        created_at=parse_time(node["created_time"]),
        thread_root_id=post_id,
        parent_id=str(parent) if parent else post_id,
        direction=Direction.outbound if author.account_id == page_id else Direction.inbound,
        url=node.get("permalink_url"),
        mentions=_fb_mentions(node),
        hashtags=_hashtags(text),
    )


def ig_media(node: dict[str, Any], *, network: str, ig_user_id: str) -> Message:
    """The account's own media: the root of each Instagram thread, always outbound."""
    text = str(node.get("caption") or "")
    return Message(
        network=network,
        id=str(node["id"]),
        author=SocialProfile(network=network, account_id=ig_user_id, handle=node.get("username")),
        text=text,
        created_at=parse_time(node["timestamp"]),
        direction=Direction.outbound,
        url=node.get("permalink"),
        mentions=_MENTION.findall(text),
        hashtags=_hashtags(text),
    )


def ig_comment(node: dict[str, Any], *, network: str, ig_user_id: str, media_id: str) -> Message:
    text = str(node.get("text") or "")
    who = node.get("from") or {}
    account = str(who.get("id") or "")
    if not account:
        raise ValueError(f"{node.get('id')}: no `from` (author) in the Graph answer")
    parent = node.get("parent_id")
    return Message(
        network=network,
        id=str(node["id"]),
        author=SocialProfile(network=network, account_id=account, handle=who.get("username") or node.get("username")),
        text=text,
        created_at=parse_time(node["timestamp"]),
        thread_root_id=media_id,
        parent_id=str(parent) if parent else media_id,
        direction=Direction.outbound if account == ig_user_id else Direction.inbound,
        mentions=_MENTION.findall(text),
        hashtags=_hashtags(text),
    )
