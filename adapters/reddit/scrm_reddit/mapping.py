"""Reddit things (JSON ``data`` of kinds t1 and t3) -> scrm messages.

Field meanings follow https://github.com/reddit-archive/reddit/wiki/JSON: ``name`` is the
fullname (``t1_`` comment, ``t3_`` link, ``t2_`` account), ``link_id`` the submission a
comment belongs to, ``parent_id`` its direct parent (t1 or t3), ``created_utc`` a Unix
time, ``edited`` ``false`` or the Unix time of the last edit, ``author_fullname`` the
author's stable ``t2_`` id. Deleted and removed content reads ``[deleted]`` /
``[removed]`` (body or selftext) with author ``[deleted]``; submissions also carry
``removed_by_category`` (``deleted``, ``moderator``, ...; from memory of real payloads).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from scrm_core import Direction, Message, SocialProfile

__all__ = ["GONE_MARKERS", "edited_at", "is_gone", "link_of", "thing_data", "to_message"]

GONE_MARKERS = frozenset({"[deleted]", "[removed]"})
_MENTION = re.compile(r"(?<![\w/])/?u/([A-Za-z0-9_-]{3,20})")
_CONTEXT_LINK = re.compile(r"/comments/([0-9a-z]+)/")


def thing_data(obj: Any) -> dict[str, Any]:
    """The JSON ``data`` of a praw Comment/Submission (praw turns ``author`` and
    ``subreddit`` into objects and keeps the rest as Reddit sent it)."""
    if isinstance(obj, dict):
        return obj
    data = {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    author = data.get("author")
    data["author"] = "[deleted]" if author is None else str(getattr(author, "name", author))
    if "subreddit" in data:
        data["subreddit"] = str(getattr(data["subreddit"], "display_name", data["subreddit"]))
    data.pop("replies", None)
    return data


def is_gone(data: dict[str, Any]) -> bool:
    """Deleted by its author, removed by a moderator, or its author's account is gone."""
    text = data.get("body") if str(data.get("name", "")).startswith("t1_") else data.get("selftext")
    return (
        text in GONE_MARKERS
        or data.get("author") in (None, "[deleted]")
        or data.get("removed_by_category") not in (None, "")
    )


def edited_at(data: dict[str, Any]) -> datetime | None:
    edited = data.get("edited")
    if isinstance(edited, bool) or not isinstance(edited, int | float) or edited <= 0:
        return None
    return datetime.fromtimestamp(float(edited), UTC)


def link_of(data: dict[str, Any]) -> str | None:
    """The submission a comment belongs to; inbox items carry ``context`` instead of ``link_id``."""
    if data.get("link_id"):
        return str(data["link_id"])
    match = _CONTEXT_LINK.search(str(data.get("context", "")))
    return f"t3_{match.group(1)}" if match else None


def to_message(data: dict[str, Any], *, network: str, me: str | None, reddit_url: str) -> Message:
    """A Message from a thing's data; ``me`` is the configured account's ``t2_`` fullname."""
    name = str(data["name"])
    author = str(data.get("author") or "[deleted]")
    account_id = str(data.get("author_fullname") or "[deleted]")
    profile = SocialProfile(
        network=network,
        account_id=account_id,
        handle=author,
        url=None if author == "[deleted]" else f"{reddit_url}/user/{author}",
    )
    if name.startswith("t3_"):
        title, body = str(data.get("title", "")), str(data.get("selftext") or "")
        text = f"{title}\n\n{body}" if body else title
        root, parent = None, None
    else:
        text = str(data.get("body", ""))
        root, parent = link_of(data), data.get("parent_id")
        if root is None or parent is None:
            raise ValueError(f"{name}: comment without link_id/context or parent_id")
    permalink = data.get("permalink") or data.get("context")
    return Message(
        network=network,
        id=name,
        author=profile,
        text=text,
        created_at=datetime.fromtimestamp(float(data["created_utc"]), UTC),
        thread_root_id=root,
        parent_id=str(parent) if parent else None,
        direction=Direction.outbound if me is not None and account_id == me else Direction.inbound,
        mentions=list(dict.fromkeys(_MENTION.findall(text))),
        url=f"{reddit_url}{str(permalink).split('?', 1)[0]}" if permalink else None,
    )
