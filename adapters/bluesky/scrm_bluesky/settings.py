"""Settings of a Bluesky source."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from scrm_core import HttpSettings, PollingSettings

__all__ = ["BlueskySettings"]


class BlueskySettings(HttpSettings, PollingSettings):
    """One Bluesky account, listened to by polling or through Jetstream."""

    renamed = {"service_url": "base_url"}

    identifier: str = Field(min_length=1, description="Handle (brand.bsky.social) or DID of the account.")
    app_password: SecretStr = Field(description="An app password (Settings > Privacy and security > App passwords).")
    base_url: str = Field(default="https://bsky.social", description="The account's PDS (XRPC base URL).")
    appview_url: str | None = Field(
        default=None,
        description="Public AppView for unauthenticated reads (getPosts, getPostThread, getProfiles), e.g. "
        "https://public.api.bsky.app; None: every call goes through the PDS, which proxies app.bsky.* to the AppView.",
    )
    mode: Literal["poll", "jetstream"] = Field(default="poll", description="How to listen.")
    search_queries: list[str] = Field(
        default_factory=list,
        description="app.bsky.feed.searchPosts queries (poll mode); terms a post must contain (Jetstream mode).",
    )
    notifications: bool = Field(default=True, description="Collect replies, mentions and quotes of the account.")
    page_size: int = Field(default=50, ge=1, le=100, description="Items per API request and events per page.")
    session_file: str | None = Field(
        default=None,
        description="Where the session (access/refresh JWT) is kept between runs, mode 0600; "
        "None: .bluesky-<source name>.session beside the config file.",
    )
    poll_seconds: float = Field(default=60.0, gt=0, description="Seconds between polls with follow.")
    overlap_seconds: float = Field(
        default=120.0,
        ge=0,
        description="Poll mode: re-read this far behind the last post seen, for posts the AppView indexes late.",
    )
    recheck_recent: int = Field(
        default=100,
        ge=0,
        le=1000,
        description="Poll mode: how many of the latest posts are "
        "re-checked with getPosts on every poll to notice deletions.",
    )
    max_pages: int = Field(default=40, ge=1, description="Poll mode: most API pages per source and poll.")
    jetstream_url: str = Field(default="wss://jetstream2.us-east.bsky.network", description="Jetstream instance.")
    wanted_dids: list[str] = Field(
        default_factory=list,
        description="Jetstream wantedDids: accounts whose every post is collected (max 10,000). Empty: the whole "
        "network, filtered here to posts mentioning or answering the account or matching search_queries.",
    )
    rewind_seconds: float = Field(default=5.0, ge=0, description="Jetstream: resume this far before the saved cursor.")
    backfill_seconds: float = Field(
        default=0.0, ge=0, description="Jetstream: with no saved cursor, start this far back (0: live tail)."
    )
    idle_seconds: float = Field(
        default=2.0, gt=0, description="Jetstream without follow: caught up after this much silence."
    )

    @field_validator("jetstream_url", "appview_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value
