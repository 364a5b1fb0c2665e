"""Settings of one Discourse source."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from scrm_core import HttpSettings, PollingSettings

__all__ = ["DiscourseSettings"]


class DiscourseSettings(HttpSettings, PollingSettings):
    """How to reach one forum, as whom, and what to listen to."""

    renamed = {"recheck_posts": "recheck_recent"}

    base_url: str = Field(description="The forum's address, e.g. https://forum.example.com (no trailing path).")
    api_key: SecretStr = Field(
        description="An Admin > API key (global, or scoped to read topics/posts and write posts)."
    )
    api_username: str = Field(
        min_length=1,
        description="Sent as Api-Username: the account scrm reads as and replies as. Its posts are outbound.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="The webhook's Secret in Discourse; needed to receive webhooks."
    )
    categories: list[int] = Field(default_factory=list, description="Category ids to keep; empty: every category.")
    tags: list[str] = Field(default_factory=list, description="Keep only topics with one of these tags; empty: all.")
    page_size: int = Field(default=50, ge=1, le=1000, description="Most posts (with their edit/delete) per page.")
    recheck_recent: int = Field(
        default=100,
        ge=0,
        le=500,
        description="How many of the most recent posts already delivered are checked again for edits "
        "and deletions on every poll (0: never; webhooks still report them).",
    )
    backfill_posts: int | None = Field(
        default=None, ge=1, description="On a fresh start, go back at most this many posts; None: the whole forum."
    )

    @field_validator("tags")
    @classmethod
    def _lower_tags(cls, value: list[str]) -> list[str]:
        return [t.strip().lower() for t in value if t.strip()]
