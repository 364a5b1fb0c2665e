"""Mastodon JSON (as Mastodon.py returns it) to scrm models.

Field names follow https://docs.joinmastodon.org/entities/Status/ and
https://docs.joinmastodon.org/entities/Account/. Mastodon.py turns ids into int-like
objects and datetimes into local-time ``datetime``; both are normalised here (ids back to
strings, datetimes to UTC).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from scrm_core import Direction, Message, SocialProfile, Visibility, html_to_text

__all__ = ["edited_version", "message_from_status", "profile_from_account", "utc"]

NETWORK = "mastodon"


def utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def edited_version(status: Mapping[str, Any]) -> int:
    """``edited_at`` as whole Unix seconds (0: never edited): the version kept in the cursor."""
    edited = status.get("edited_at")
    return int(utc(edited).timestamp()) if edited else 0


def profile_from_account(account: Mapping[str, Any], network: str = NETWORK) -> SocialProfile:
    """``id`` is stable; ``acct`` (the handle) can change. Profile ``fields`` (name/value pairs,
    ``verified_at`` set when the server confirmed a rel=me link) are kept in the bio as
    ``name: value`` lines: they are the identity evidence (a website, a shop page)."""
    lines = []
    note = html_to_text(str(account.get("note") or ""))
    if account.get("bot"):
        lines.append("[automated account]")
    if note:
        lines.append(note)
    verified = False
    for item in account.get("fields") or []:
        value = html_to_text(str(item.get("value") or ""))
        mark = " (verified link)" if item.get("verified_at") else ""
        verified = verified or bool(item.get("verified_at"))
        lines.append(f"{item.get('name')}: {value}{mark}")
    return SocialProfile(
        network=network,
        account_id=str(account["id"]),
        handle=str(account.get("acct") or account.get("username") or "") or None,
        display_name=account.get("display_name") or None,
        bio="\n".join(lines) or None,
        url=account.get("url") or None,
        avatar_url=account.get("avatar") or None,
        followers=account.get("followers_count"),
        verified=verified,
    )


def message_from_status(
    status: Mapping[str, Any], *, self_id: str, root_id: str | None, network: str = NETWORK
) -> Message:
    """One status. ``root_id`` is the thread's top ancestor (None for a root), found by the
    caller through ``/context``. ``private`` (followers-only) and ``unlisted`` map to
    public: scrm knows only public and direct."""
    account = status["account"]
    author = profile_from_account(account, network)
    parent = status.get("in_reply_to_id")
    return Message(
        network=network,
        id=str(status["id"]),
        author=author,
        text=html_to_text(str(status.get("content") or "")),
        created_at=utc(status["created_at"]),
        edited_at=utc(status["edited_at"]) if status.get("edited_at") else None,
        thread_root_id=root_id if parent is not None else None,
        parent_id=str(parent) if parent is not None else None,
        visibility=Visibility.direct if status.get("visibility") == "direct" else Visibility.public,
        direction=Direction.outbound if author.account_id == self_id else Direction.inbound,
        mentions=[str(m.get("acct")) for m in status.get("mentions") or []],
        hashtags=[str(t.get("name")) for t in status.get("tags") or []],
        url=status.get("url") or status.get("uri") or None,
        language=status.get("language") or None,
    )
