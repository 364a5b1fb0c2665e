"""scrm network adapter for Facebook Pages and Instagram professional accounts (Meta Graph API)."""

from .adapter import MetaAdapter
from .settings import MetaSettings

__all__ = ["MetaAdapter", "MetaSettings"]
