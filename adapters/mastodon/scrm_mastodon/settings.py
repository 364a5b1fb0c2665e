"""Settings of one Mastodon source: which instance, which token, what to listen to."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from scrm_core import HttpSettings, PollingSettings

__all__ = ["NOTIFICATION_TYPES", "MastodonSettings"]

#: Notification types that carry a status (https://docs.joinmastodon.org/entities/Notification/#type).
NOTIFICATION_TYPES = ("mention", "status", "update")


class MastodonSettings(HttpSettings, PollingSettings):
    base_url: str = Field(
        description="The instance the brand account lives on, e.g. https://mastodon.social (tests: the fake's URL)."
    )
    access_token: SecretStr = Field(
        description="OAuth access token of the brand account, scopes read:statuses read:notifications "
        "read:accounts write:statuses."
    )
    notification_types: list[Literal["mention", "status", "update"]] = Field(
        default=["mention", "status", "update"],
        min_length=1,
        description="Notification types to ingest: mention (someone mentions the brand), status (a post by an "
        "account the brand enabled notifications for), update (a post the brand boosted was edited).",
    )
    own_statuses: bool = Field(
        default=True,
        description="Also ingest the brand account's own posts (replies written in Mastodon's own apps).",
    )
    page_size: int = Field(default=40, ge=1, le=40, description="Items asked per request (Mastodon caps at 40/80).")
    recheck_recent: int = Field(
        default=20,
        ge=0,
        le=200,
        description="How many of the most recent statuses seen are re-checked for edits and deletions at the end "
        "of every polling pass (one GET each; 0 turns it off).",
    )
    follow_mode: Literal["stream", "poll"] = Field(
        default="stream", description="stream: the user streaming API (SSE); poll: poll every poll_seconds."
    )
    poll_seconds: float = Field(
        default=60.0, gt=0, description="Seconds between polls (poll mode) or between stream liveness checks."
    )
