from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from scrm_core import Message, SocialProfile


def build_message(text: str, **fields: Any) -> Message:
    """A message with sensible defaults; author fields go in ``author={...}``."""
    author = SocialProfile(**{"network": "x", "account_id": "1", "handle": "someone", **fields.pop("author", {})})
    return Message(
        **{"network": "x", "id": "1", "author": author, "text": text, "created_at": datetime(2026, 1, 1, tzinfo=UTC)}
        | fields
    )


@pytest.fixture
def msg() -> Callable[..., Message]:
    return build_message
