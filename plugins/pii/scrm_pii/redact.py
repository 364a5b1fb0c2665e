"""The redactor: cards first, then email addresses, then phone numbers.

Order matters: a card number is also a long run of digits a phone matcher might claim,
so it is masked (as a card) before phones are looked for.

Phone numbers are found by ``phonenumbers`` (Google's libphonenumber metadata):
``PhoneNumberMatcher`` at ``Leniency.VALID`` accepts only numbers whose length and
prefixes are valid for a real numbering plan, and already refuses dates, times and
prices. International numbers (``+44 20 7946 0958``) are found whatever the region;
national ones (``(415) 555-2671``, ``06 12 34 56 78``) need their country in
``SCRM_PII_PHONE_REGIONS``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import phonenumbers

from .cards import find_cards

MASKS = {"card": "[card]", "email": "[email]", "phone": "[phone]"}
DEFAULT_PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT")

# Not after "@" or a word character: "@alice@mastodon.social" is a public fediverse
# handle, not an email address someone let slip.
_EMAIL = re.compile(r"(?<![\w.+@-])[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# No phone number anywhere has fewer than 7 digits; skipping the matcher below that
# keeps the ~0.2 ms per region it costs off most messages.
_MIN_PHONE_DIGITS = 7
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class Settings:
    """``SCRM_PII_PHONE_REGIONS=US,GB`` lists the countries whose national phone formats
    are recognised (the plugin itself is turned on with ``SCRM_ENABLE_PLUGINS=pii``)."""

    phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        regions = tuple(r.strip().upper() for r in env.get("SCRM_PII_PHONE_REGIONS", "").split(",") if r.strip())
        return cls(phone_regions=regions or DEFAULT_PHONE_REGIONS)


@dataclass
class Redaction:
    text: str
    found: Counter[str] = field(default_factory=Counter)  # kind -> how many were masked


class Redactor:
    def __init__(self, phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS) -> None:
        self.phone_regions = phone_regions or ("ZZ",)  # "ZZ": unknown region, international numbers only

    def redact(self, text: str) -> Redaction:
        result = Redaction(text)
        self._mask(result, "card", find_cards(result.text))
        self._mask(result, "email", [m.span() for m in _EMAIL.finditer(result.text)])
        if len(_DIGIT.findall(result.text)) >= _MIN_PHONE_DIGITS:
            self._mask(result, "phone", self._phones(result.text))
        return result

    def _phones(self, text: str) -> list[tuple[int, int]]:
        spans = set()
        for region in self.phone_regions:
            for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
                spans.add((match.start, match.end))
        return _without_overlaps(sorted(spans))

    @staticmethod
    def _mask(result: Redaction, kind: str, spans: list[tuple[int, int]]) -> None:
        if not spans:
            return
        text, mask = result.text, MASKS[kind]
        for start, end in reversed(spans):  # from the end, so earlier offsets stay valid
            text = text[:start] + mask + text[end:]
        result.text = text
        result.found[kind] += len(spans)


def _without_overlaps(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted spans merged where two regions matched overlapping parts of one number."""
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
