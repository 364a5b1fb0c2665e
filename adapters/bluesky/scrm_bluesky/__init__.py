"""scrm network adapter for Bluesky (AT Protocol)."""

from .adapter import BlueskyAdapter
from .settings import BlueskySettings

__all__ = ["BlueskyAdapter", "BlueskySettings"]
