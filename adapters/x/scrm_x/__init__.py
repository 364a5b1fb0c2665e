"""scrm-x: the X (Twitter) network adapter, through the API v2 and tweepy's ``Client``."""

from __future__ import annotations

from .adapter import XAdapter
from .settings import XSettings

__version__ = "0.1.0"

__all__ = ["XAdapter", "XSettings"]
