"""scrm network adapter for Discourse forums."""

from .adapter import DiscourseAdapter
from .settings import DiscourseSettings

__all__ = ["DiscourseAdapter", "DiscourseSettings"]
