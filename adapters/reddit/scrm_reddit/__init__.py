"""scrm-reddit: a network adapter for Reddit (subreddit comments and posts, mentions, replies) on praw."""

from __future__ import annotations

from .adapter import RedditAdapter
from .cursor import RedditCursor
from .settings import USER_AGENT_FORMAT, RedditSettings

__version__ = "0.1.0"

__all__ = ["USER_AGENT_FORMAT", "RedditAdapter", "RedditCursor", "RedditSettings"]
