"""scrm-mastodon: the Mastodon network adapter (Mastodon.py over the client REST and streaming APIs)."""

from __future__ import annotations

from scrm_core import html_to_text  # kept here for code that imported it from this package

from .adapter import MastodonAdapter
from .cursor import Cursor
from .settings import MastodonSettings

__version__ = "0.1.0"

__all__ = ["Cursor", "MastodonAdapter", "MastodonSettings", "html_to_text"]
