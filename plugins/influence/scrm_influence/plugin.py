"""The scrm hook: an ``influence:*`` label on each inbound message.

Bands are read once at start-up from ``SCRM_INFLUENCE_HIGH`` / ``SCRM_INFLUENCE_MEDIUM``
(plugins have no settings channel). Outbound messages are the company's own: not labelled.
"""

from __future__ import annotations

import os

from scrm_core import Direction, Message, hookimpl

from .score import Thresholds, influence_label

THRESHOLDS = Thresholds.from_env(os.environ)

# Label by follower count, unverified [0] and verified [1]: a log10 per message otherwise,
# and a stream's authors share few distinct counts. Emptied when full.
_LABELS: tuple[dict[int, str], dict[int, str]] = ({}, {})
_LABELS_MAX = 65536


@hookimpl
def scrm_classify_message(message: Message) -> list[str] | None:
    if message.direction is not Direction.inbound:
        return None
    author = message.author
    followers = author.followers
    if followers is None:
        return None  # unknown is not "low" (influence_label)
    labels = _LABELS[author.verified]
    label = labels.get(followers)
    if label is None:
        label = influence_label(followers, author.verified, THRESHOLDS)
        assert label is not None  # followers is known
        if len(labels) >= _LABELS_MAX:
            labels.clear()
        labels[followers] = label
    return [label]
