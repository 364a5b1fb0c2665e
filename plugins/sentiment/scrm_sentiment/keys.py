"""Which texts the sentiment models cannot tell apart: one analysis for all of them.

Replies start with the handle they answer (``@ana@mastodon.social thanks!``), so a busy
account's stream holds the same few answers under thousands of names. The n-grams reduce a
handle's name to ``@`` (:mod:`scrm_sentiment.stacked`), but VADER reads the whole word, so
a name is replaced only where VADER reads both the word and its replacement as one neutral
word (:func:`scrm_sentiment.vader.neutral`): ``@sad`` and ``@LOVE`` keep their names.
"""

from __future__ import annotations

import re

from . import vader
from .stacked import READ_CHARS

__all__ = ["shared_key"]

# A handle at the start of a word, its name in ASCII letters, digits and underscores, and
# the rest of the word (a server, punctuation).
_HANDLE = re.compile(r"(?<!\S)@[A-Za-z0-9_]+(?!\w)(\S*)")
_ANY_NAME = "@u"


def shared_key(text: str) -> str:
    """``text`` with the names of its handles replaced by one name wherever neither model can
    tell the names apart (``@ana thanks!`` and ``@bo thanks!`` -> ``@u thanks!``); the same
    ``str`` when there is none. Both models score the key exactly as they score ``text``.

    Kept as they are: a word with a link in it (links are removed before the n-grams read
    the text) or with non-ASCII characters (lower-casing must not change its length, and
    emoji are words of their own to VADER), and any text longer than the n-grams read.
    Applying it to its own result changes nothing.
    """
    if "@" not in text or len(text) > READ_CHARS:
        return text
    return _HANDLE.sub(_unnamed, text)


def _unnamed(handle: re.Match[str]) -> str:
    word = handle.group()
    if not word.isascii() or "http" in (low := word.lower()) or "www." in low:
        return word
    unnamed = _ANY_NAME + handle.group(1)
    return unnamed if vader.neutral(word) and vader.neutral(unnamed) else word
