"""scrm-mastodon: the Mastodon network adapter (Mastodon.py over the client REST and streaming APIs)."""

from __future__ import annotations

from .adapter import MastodonAdapter
from .cursor import Cursor
from .settings import MastodonSettings
from .text import html_to_text

__version__ = "0.1.0"

__all__ = ["Cursor", "MastodonAdapter", "MastodonSettings", "html_to_text"]
