"""Settings of the X adapter: where the API is, which credentials, what to listen to."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, SecretStr, model_validator

from scrm_core import HttpSettings, PollingSettings

__all__ = ["AccessTier", "XSettings"]

_OAUTH1 = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")


class AccessTier(StrEnum):
    """How the X developer account is billed; self-serve tiers may only reply when invited."""

    self_serve = "self_serve"  # Free, Basic, Pro, Pay-Per-Use
    enterprise = "enterprise"  # Enterprise and Public Utility apps


class XSettings(HttpSettings, PollingSettings):
    renamed = {"deletion_window": "recheck_recent"}

    base_url: str = Field(
        default="https://api.x.com",
        description="Root of the X API v2 (tweepy calls https://api.twitter.com; both names serve it). "
        "Tests point it at the fake.",
    )
    bearer_token: SecretStr | None = Field(
        default=None, description="OAuth 2.0 app-only bearer token, used for recent search and lookups."
    )
    user_access_token: SecretStr | None = Field(
        default=None,
        description="OAuth 2.0 user-context access token of the brand account (scopes tweet.read, "
        "tweet.write, users.read); used for mentions, the account's own posts and replies.",
    )
    consumer_key: SecretStr | None = Field(
        default=None, description="OAuth 1.0a API key (instead of user_access_token)."
    )
    consumer_secret: SecretStr | None = Field(default=None, description="OAuth 1.0a API key secret.")
    access_token: SecretStr | None = Field(default=None, description="OAuth 1.0a access token of the brand account.")
    access_token_secret: SecretStr | None = Field(default=None, description="OAuth 1.0a access token secret.")
    mentions: bool = Field(default=True, description="Listen to the account's mentions timeline.")
    query: str | None = Field(
        default=None,
        max_length=4096,
        description="Recent-search query to listen to (X query syntax; 512 characters on self-serve access). "
        "None: no search.",
    )
    access_tier: AccessTier = Field(
        default=AccessTier.self_serve,
        description="self_serve (Free/Basic/Pro/Pay-Per-Use): replies only to posts that mention or quote "
        "the account, checked before posting. enterprise: no such check.",
    )
    max_results: int = Field(default=100, ge=10, le=100, description="Posts per API request (X allows 10-100).")
    page_size: int = Field(default=100, ge=1, le=1000, description="Most posts per EventPage handed to the engine.")
    recheck_recent: int = Field(
        default=100,
        ge=0,
        le=100,
        description="How many of the most recent messages are looked up again after each poll to detect "
        "deletions (one GET /2/tweets call, at most 100 ids). 0 disables deletion detection.",
    )
    poll_seconds: float = Field(default=60.0, gt=0, le=3600, description="Seconds between polls in follow mode.")

    @model_validator(mode="after")
    def _credentials(self) -> XSettings:
        given = [name for name in _OAUTH1 if getattr(self, name) is not None]
        if given and len(given) != len(_OAUTH1):
            missing = [name for name in _OAUTH1 if name not in given]
            raise ValueError(f"OAuth 1.0a needs all four keys; missing {', '.join(missing)}")
        if not self.has_user_context and self.bearer_token is None:
            raise ValueError("give user_access_token (or the four OAuth 1.0a keys), bearer_token, or both")
        if not self.mentions and not self.query:
            raise ValueError("nothing to listen to: set mentions = true or a query")
        if self.mentions and not self.has_user_context:
            raise ValueError("mentions need the account's user context: set user_access_token or the OAuth 1.0a keys")
        return self

    @property
    def has_user_context(self) -> bool:
        return self.user_access_token is not None or self.access_token is not None

    @property
    def user_credential_names(self) -> str:
        """The settings that hold the user-context credentials, for error messages."""
        return (
            "user_access_token"
            if self.user_access_token is not None
            else "consumer_key/consumer_secret/access_token/access_token_secret"
        )
