"""Fitting a value to a CRM field: text cut at a character boundary, with a visible marker.

CRM adapters read each field's limits from the CRM's own metadata (Salesforce describe,
HubSpot properties) and use these helpers, so that a long post is stored shortened
rather than refused. A cut text ends with a marker that says so and records the full
length: ``"…[scrm: cut, 66,000 characters in all]"``. Lengths are counted as the CRMs
count them: UTF-16 code units (both run on the JVM, whose ``String.length()`` counts an
emoji outside the Basic Multilingual Plane as two). The cut never splits a character,
never separates a base character from the combining marks, variation selectors or
zero-width joiner that follow it, and never splits an HTML entity when the field holds
escaped text (a HubSpot note body).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

__all__ = ["CUT_MARKER", "cut_text", "fits", "is_cut", "utf16_len"]

#: Appended to a cut text; ``{total}`` is the full length in characters.
CUT_MARKER = "…[scrm: cut, {total:,} characters in all]"
_SHORT_MARKER = "…"
_MARKER_RE = re.compile(r"…\[scrm: cut, ([\d,]+) characters in all\]$")
# Characters that belong to the one before them: a cut must not fall just before one.
_JOINERS = frozenset({"\u200d", "\ufe0e", "\ufe0f"})


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: what Salesforce and HubSpot count."""
    n = len(text)
    if text.isascii():
        return n
    return n + sum(1 for ch in text if ord(ch) > 0xFFFF)


def fits(text: str, limit: int) -> bool:
    return utf16_len(text) <= limit


def _boundary(text: str, end: int) -> int:
    """The largest index <= ``end`` where ``text`` may be cut without splitting a character cluster."""
    while 0 < end < len(text) and (
        unicodedata.combining(text[end]) or text[end] in _JOINERS or text[end - 1] == "\u200d"
    ):
        end -= 1
    return end


def _prefix_within(text: str, budget: int, render: Callable[[str], str]) -> str:
    """The longest clean prefix of ``text`` whose rendering fits ``budget`` code units."""
    if budget <= 0:
        return ""
    lo, hi = 0, len(text)  # render(text[:lo]) fits; find the largest such lo
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if utf16_len(render(text[:mid])) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return text[: _boundary(text, lo)]


def cut_text(text: str, limit: int, *, render: Callable[[str], str] | None = None) -> str:
    """``text`` (rendered by ``render``, e.g. ``html.escape``) fitted to ``limit`` code units.

    Unchanged if it fits. Otherwise the longest prefix that fits with the marker after it;
    for fields too short for the full marker (under 160 units) just ``…``.
    """
    show = render or (lambda s: s)
    rendered = show(text)
    if utf16_len(rendered) <= limit:
        return rendered
    marker = CUT_MARKER.format(total=len(text))
    if limit < 160:
        marker = _SHORT_MARKER
    if limit < len(marker):
        return show(_prefix_within(text, limit, show))
    return show(_prefix_within(text, limit - utf16_len(marker), show)) + marker


def is_cut(stored: str) -> int | None:
    """The full length a cut text had (from its marker), or None if ``stored`` was not cut."""
    match = _MARKER_RE.search(stored)
    return int(match.group(1).replace(",", "")) if match else None
