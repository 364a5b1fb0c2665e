"""Rule-based intent labels for English social posts (the default; replace it with a model later).

The first category whose pattern matches wins, in this order: spam (it often *looks*
like purchase intent), purchase, complaint, question, praise.
"""

from __future__ import annotations

import re

from scrm_core import Message, hookimpl

__version__ = "0.1.0"

_RULES: list[tuple[str, re.Pattern[str]]] = [
    (
        "intent:spam",
        re.compile(
            r"giveaway|crypto|airdrop|free followers|click here|dm me for|earn \$|\bnft\b|(https?://\S+.*){3,}", re.I
        ),
    ),
    (
        "intent:purchase",
        re.compile(
            r"where (can|do) i buy|want to buy|looking to buy|thinking (of|about) (getting|buying)|how much (is|does)"
            r"|price of|in stock|pre-?order|discount code|shipping to|take my money",
            re.I,
        ),
    ),
    (
        "intent:complaint",
        re.compile(
            r"broke|broken|stopped working|doesn'?t work|not working|refund|still waiting|worst|terrible|awful"
            r"|disappointed|leak(s|ing)?|never again|unacceptable|rip-?off|faulty|defect|no reply|no response",
            re.I,
        ),
    ),
    (
        "intent:question",
        re.compile(r"\?\s*$|^(how|does|do|can|is|are|what|which|why|when|where)\b|\bany(one|body) know\b", re.I | re.M),
    ),
    (
        "intent:praise",
        re.compile(r"love|great|awesome|amazing|best .* ever|thank(s| you)|recommend|perfect|brilliant", re.I),
    ),
]


def classify(text: str) -> str | None:
    for label, pattern in _RULES:
        if pattern.search(text):
            return label
    return None


@hookimpl
def scrm_classify_message(message: Message) -> list[str] | None:
    label = classify(message.text)
    return [label] if label else None
