"""The keyword rules scrm-intent used before its model (0.1), kept as a baseline for bench/.

Not used by the plugin. On realistic posts written independently of them they reach a
macro-F1 of 0.27 (issue 13): most complaints have no keyword, sarcasm reads as praise.

The first category that matches wins, in this order: spam (it often *looks* like purchase
intent), purchase, complaint, question, praise. Matching is plain substring search on
the lower-cased text (C speed, ~3 µs a message) rather than regular expressions, which
cost ten times as much on the hot path.
"""

from __future__ import annotations

_PHRASES: list[tuple[str, tuple[str, ...]]] = [
    ("intent:spam", ("giveaway", "crypto", "airdrop", "free followers", "click here", "dm me for", "earn $", " nft")),
    (
        "intent:purchase",
        (
            "where can i buy",
            "where do i buy",
            "want to buy",
            "looking to buy",
            "thinking of getting",
            "thinking about getting",
            "thinking of buying",
            "thinking about buying",
            "how much is",
            "how much does",
            "price of",
            "in stock",
            "preorder",
            "pre-order",
            "discount code",
            "shipping to",
            "take my money",
        ),
    ),
    (
        "intent:complaint",
        (
            "broke",
            "stopped working",
            "doesn't work",
            "doesnt work",
            "not working",
            "refund",
            "still waiting",
            "worst",
            "terrible",
            "awful",
            "disappointed",
            "leak",
            "never again",
            "unacceptable",
            "rip-off",
            "ripoff",
            "faulty",
            "defect",
            "no reply",
            "no response",
        ),
    ),
]
_QUESTION_STARTS = ("how ", "does ", "do ", "can ", "is ", "are ", "what ", "which ", "why ", "when ", "where ")
_PRAISE = ("love", "great", "awesome", "amazing", "thank", "recommend", "perfect", "brilliant")


def classify(text: str) -> str | None:
    lower = text.lower()
    if lower.count("http") >= 3:
        return "intent:spam"  # link farms
    for label, phrases in _PHRASES:
        if any(p in lower for p in phrases):
            return label
    stripped = lower.strip()
    if stripped.endswith("?") or stripped.startswith(_QUESTION_STARTS) or "anyone know" in lower:
        return "intent:question"
    if any(p in lower for p in _PRAISE):
        return "intent:praise"
    return None
