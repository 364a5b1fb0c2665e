"""One regular expression that finds, in C, whether a text can hold any query's anchor at all.

Every anchor token of every query (``acme``, ``#acmefail``, ``refund`` for ``refund*``) is
a substring of the normalised text of any message that holds it: a tag's words are
inside the tag, a wildcard's prefix inside the word. So a text in which none of them
occurs as a substring wakes no query, and its tokenization can be skipped altogether.
The anchors are compiled as a trie (``acme|acmex`` -> ``acme(?:x)?``), so the search
tries a handful of branches per character, not one per anchor.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .text import TAG_MARKS

_Trie = dict[str, "_Trie"]
_END = ""


def compile_prefilter(anchors: Iterable[str]) -> re.Pattern[str] | None:
    """A pattern whose ``search`` finds any of ``anchors`` (tag marks dropped); None for none."""
    bodies = {anchor.lstrip(TAG_MARKS) or anchor for anchor in anchors}
    if not bodies:
        return None
    trie: _Trie = {}
    for body in bodies:
        node = trie
        for char in body:
            node = node.setdefault(char, {})
        node[_END] = {}
    return re.compile(_pattern(trie))


def _pattern(node: _Trie) -> str:
    branches = [re.escape(char) + _pattern(child) for char, child in sorted(node.items()) if char != _END]
    if _END in node:  # a whole anchor ends here: what follows is optional, and need not be searched
        return ""
    if len(branches) == 1:
        return branches[0]
    return "(?:" + "|".join(branches) + ")"
