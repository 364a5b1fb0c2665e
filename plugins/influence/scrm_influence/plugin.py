"""The scrm hook: an ``influence:*`` label on each inbound message.

Bands are read once at start-up from ``SCRM_INFLUENCE_HIGH`` / ``SCRM_INFLUENCE_MEDIUM``
(plugins have no settings channel). Outbound messages are the company's own: not labelled.
"""

from __future__ import annotations

import os

from scrm_core import Direction, Message, hookimpl

from .score import Thresholds, influence_label

THRESHOLDS = Thresholds.from_env(os.environ)


@hookimpl
def scrm_classify_message(message: Message) -> list[str] | None:
    if message.direction is not Direction.inbound:
        return None
    author = message.author
    label = influence_label(author.followers, author.verified, THRESHOLDS)
    return [label] if label else None
