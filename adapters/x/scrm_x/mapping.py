"""X API v2 JSON -> scrm models.

Field names are those of the v2 post and user objects
(https://docs.x.com/x-api/fundamentals/data-dictionary, from memory where not re-checked):
a post's thread is ``conversation_id`` (the id of the post that started it), its parent
the ``referenced_tweets`` entry of type ``replied_to``, its edit chain
``edit_history_tweet_ids`` (oldest first, https://docs.x.com/x-api/fundamentals/edit-posts).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from scrm_core import Direction, Message, SocialProfile

__all__ = [
    "EXPANSIONS",
    "TWEET_FIELDS",
    "USER_FIELDS",
    "message",
    "original_id",
    "parent_id",
    "profile",
    "same_text",
]

TWEET_FIELDS = [
    "conversation_id",
    "in_reply_to_user_id",
    "referenced_tweets",
    "created_at",
    "author_id",
    "lang",
    "entities",
    "edit_history_tweet_ids",
]
EXPANSIONS = ["author_id", "referenced_tweets.id"]
USER_FIELDS = ["username", "name", "public_metrics", "verified", "url", "description", "profile_image_url"]

#: ``lang`` values that name no language: undetermined, no text, media or hashtags only.
_NO_LANGUAGE = frozenset({"und", "zxx", "qme", "qht", "qam", "qct", "qst"})


def profile(user: Mapping[str, Any], network: str) -> SocialProfile:
    metrics = user.get("public_metrics") or {}
    return SocialProfile(
        network=network,
        account_id=str(user["id"]),
        handle=user.get("username"),
        display_name=user.get("name"),
        bio=user.get("description") or None,
        url=f"https://x.com/{user['username']}" if user.get("username") else None,
        avatar_url=user.get("profile_image_url"),
        followers=metrics.get("followers_count"),
        verified=bool(user.get("verified", False)),
    )


def original_id(tweet: Mapping[str, Any]) -> str:
    """The id scrm keeps for a post: the first of its edit chain (its own id if never edited)."""
    history = tweet.get("edit_history_tweet_ids") or [tweet["id"]]
    return str(history[0])


def parent_id(tweet: Mapping[str, Any]) -> str | None:
    for ref in tweet.get("referenced_tweets") or []:
        if ref.get("type") == "replied_to":
            return str(ref["id"])
    return None


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def message(
    tweet: Mapping[str, Any],
    users: Mapping[str, Mapping[str, Any]],
    *,
    network: str,
    me: str | None,
    created_at: str | None = None,
    edited: bool = False,
) -> Message:
    """The scrm message of one post version, under its original id.

    ``edited``: the version is an edit; ``edited_at`` is its ``created_at`` and
    ``created_at`` the original's (``created_at`` argument) when known.
    """
    mid = original_id(tweet)
    author_id = str(tweet["author_id"])
    user = users.get(author_id)
    author = profile(user, network) if user else SocialProfile(network=network, account_id=author_id)
    conversation = str(tweet.get("conversation_id") or mid)
    entities = tweet.get("entities") or {}
    lang = tweet.get("lang")
    handle = author.handle or "i/web"
    version_time = _time(tweet["created_at"])
    return Message(
        network=network,
        id=mid,
        author=author,
        text=tweet["text"],
        created_at=_time(created_at) if created_at else version_time,
        edited_at=version_time if edited else None,
        thread_root_id=None if conversation == mid else conversation,
        parent_id=parent_id(tweet),
        direction=Direction.outbound if me is not None and author_id == me else Direction.inbound,
        mentions=[m["username"] for m in entities.get("mentions", []) if m.get("username")],
        hashtags=[h["tag"] for h in entities.get("hashtags", []) if h.get("tag")],
        url=f"https://x.com/{handle}/status/{mid}",
        language=lang if lang and lang not in _NO_LANGUAGE else None,
    )


def _without_leading_mentions(text: str) -> str:
    words = text.split()
    while words and words[0].startswith("@"):
        words.pop(0)
    return " ".join(words)


def same_text(posted: str, wanted: str) -> bool:
    """Whether a post's text is ``wanted``, ignoring the ``@handles`` X may put before a reply."""
    return _without_leading_mentions(posted) == _without_leading_mentions(wanted)


def engages(tweet: Mapping[str, Any], quoted: Mapping[str, Mapping[str, Any]], me: str, username: str) -> bool:
    """Whether ``tweet`` mentions, replies to or quotes the account (X's self-serve reply rule).

    A reply to the account counts: X starts a reply with the ``@handle`` of the person
    replied to. ``quoted``: the ``includes.tweets`` of the lookup, by id.
    """
    for mention in (tweet.get("entities") or {}).get("mentions", []):
        if str(mention.get("id")) == me or str(mention.get("username", "")).lower() == username.lower():
            return True
    if str(tweet.get("in_reply_to_user_id")) == me:
        return True
    for ref in tweet.get("referenced_tweets") or []:
        if ref.get("type") == "quoted" and str(quoted.get(str(ref["id"]), {}).get("author_id")) == me:
            return True
    return False
