"""Payment card numbers: the written shapes people use, confirmed by the Luhn checksum.

Three shapes, the ones card issuers print and people retype: 13-19 digits in one run,
groups of four with one kind of separator (``4111 1111 1111 1111``,
``4111-1111-1111-1111``, last group 1-7 digits), and American Express's 4-6-5. A
candidate counts only if its length is 13-19, it starts with 2-6 (every major network:
Mastercard 2/5, Amex/Diners/JCB 3, Visa 4, Discover/UnionPay/Maestro 6) and it passes
Luhn. That keeps out order numbers (1 in 10 random numbers passes Luhn; the prefix and
the shape cut that further), dates, prices and phone numbers.
"""

from __future__ import annotations

import re

_CARD_SHAPES = re.compile(
    r"(?<![\w/.-])"  # not the tail of an id, a path or a decimal (ORD-4111..., 0.4111...)
    r"(?:\d{4}(?P<sep>[ -])\d{4}(?P=sep)\d{4}(?P=sep)\d{1,7}"
    r"|\d{4}(?P<amex>[ -])\d{6}(?P=amex)\d{5}"
    r"|\d{13,19})"
    r"(?![\w/]|[.,-]\d)"  # nor the head of a longer number (4111...,25 or 4111...-2)
)
_NETWORK_FIRST_DIGITS = frozenset("23456")


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) checksum every payment card number carries in its last digit."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def find_cards(text: str) -> list[tuple[int, int]]:
    """Spans (start, end) of the card numbers in ``text``."""
    spans = []
    for match in _CARD_SHAPES.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and digits[0] in _NETWORK_FIRST_DIGITS and luhn_valid(digits):
            spans.append(match.span())
    return spans
