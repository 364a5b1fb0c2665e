"""Settings of a Reddit source; secrets are ``SecretStr`` and only revealed to praw."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator, model_validator

from scrm_core import HttpSettings, PollingSettings

__all__ = ["USER_AGENT_FORMAT", "RedditSettings"]

#: Reddit's API rules: "<platform>:<app ID>:<version string> (by /u/<reddit username>)",
#: e.g. "android:com.example.myredditapp:v1.2.3 (by /u/kemitche)".
#: https://github.com/reddit-archive/reddit/wiki/API ("Rules")
USER_AGENT_FORMAT = "<platform>:<app ID>:<version string> (by /u/<reddit username>)"
_USER_AGENT = re.compile(r"[^:\s]+:[^:\s]+:[^:\s]+ \(by /u/[A-Za-z0-9_-]{3,20}\)")
#: Usernames are 3 to 20 letters, digits, "_" or "-" (reddit's registration form; from memory).
_USERNAME = re.compile(r"[A-Za-z0-9_-]{3,20}")
_SUBREDDIT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]{1,20}")


class RedditSettings(HttpSettings, PollingSettings):
    renamed = {"oauth_url": "base_url", "recheck_window": "recheck_recent"}

    client_id: str = Field(min_length=1, description="The app's client id (reddit.com/prefs/apps).")
    client_secret: SecretStr | None = Field(
        default=None, description="The app's secret; required for script and web apps, None for installed apps."
    )
    username: str = Field(description="The account scrm reads as and replies as (without u/).")
    password: SecretStr | None = Field(default=None, description="That account's password (script app).")
    refresh_token: SecretStr | None = Field(default=None, description="An OAuth refresh token (web/installed app).")
    user_agent: str = Field(description=f"Required by Reddit's API rules: {USER_AGENT_FORMAT}.")
    subreddits: list[str] = Field(default_factory=list, description="Subreddits to read, without r/.")
    comments: bool = Field(default=True, description="Read /r/{sub}/comments of each subreddit.")
    submissions: bool = Field(default=True, description="Read /r/{sub}/new of each subreddit.")
    mentions: bool = Field(default=True, description="Read /message/mentions (u/username in comments anywhere).")
    page_size: int = Field(default=100, ge=1, le=100, description="Items per listing request and events per page.")
    backfill: int = Field(
        default=100, ge=1, le=1000, description="On a listing's first read, how many of its newest items to take."
    )
    recheck_recent: int = Field(
        default=100,
        ge=0,
        le=1000,
        description="How many of the most recently read items are re-checked for edits and deletions after "
        "every pass (100 per /api/info call); 0 turns the re-check off.",
    )
    poll_seconds: float = Field(default=30.0, gt=0, le=3600, description="Seconds between passes in follow mode.")
    timeout_seconds: float = Field(default=16.0, gt=0, le=300, description="Seconds to wait for one HTTP answer.")
    base_url: str = Field(default="https://oauth.reddit.com", description="Base URL of API calls (praw oauth_url).")
    reddit_url: str = Field(
        default="https://www.reddit.com", description="Base URL of the token endpoint and permalinks (praw reddit_url)."
    )

    @field_validator("user_agent")
    @classmethod
    def _user_agent_format(cls, value: str) -> str:
        if not _USER_AGENT.fullmatch(value.strip()):
            raise ValueError(
                f"user_agent {value!r} does not follow Reddit's required format {USER_AGENT_FORMAT!r}, e.g. "
                "'python:com.acme.scrm:v1.0.0 (by /u/acme_support)'. Reddit blocks or throttles other "
                "user agents (https://github.com/reddit-archive/reddit/wiki/API, 'Rules')"
            )
        return value.strip()

    @field_validator("username")
    @classmethod
    def _username_format(cls, value: str) -> str:
        value = value.strip().removeprefix("/").removeprefix("u/")
        if not _USERNAME.fullmatch(value):
            raise ValueError(f"username {value!r} is not a Reddit username (3-20 letters, digits, _ or -)")
        return value

    @field_validator("subreddits")
    @classmethod
    def _subreddit_names(cls, value: list[str]) -> list[str]:
        names = [v.strip().removeprefix("/").removeprefix("r/") for v in value]
        bad = [n for n in names if not _SUBREDDIT.fullmatch(n)]
        if bad:
            raise ValueError(f"subreddits: {bad!r} are not subreddit names")
        return list(dict.fromkeys(names))

    @field_validator("reddit_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_grant(self) -> RedditSettings:
        if (self.password is None) == (self.refresh_token is None):
            raise ValueError("set exactly one of password (script app) or refresh_token")
        if self.password is not None and self.client_secret is None:
            raise ValueError("password (script app) needs client_secret as well")
        if not ((self.subreddits and (self.comments or self.submissions)) or self.mentions):
            raise ValueError("nothing to read: list subreddits (with comments or submissions) or keep mentions")
        return self
