"""Text helpers of the adapter kit: HTML to plain text, and a bounded LRU cache.

Both come from well-kept libraries (Beautiful Soup with the standard library's parser,
cachetools), so no adapter carries a regex "parser" or a hand-rolled cache.

>>> html_to_text('<p>Hello <a href="https://x.example/@a">@<span>alice</span></a></p><p>two<br>lines &amp; more</p>')
'Hello @alice\\n\\ntwo\\nlines & more'
>>> cache: LRUCache[str, int] = LRUCache(maxsize=2)
>>> cache["a"], cache["b"], cache["c"] = 1, 2, 3
>>> sorted(cache)
['b', 'c']
"""

from __future__ import annotations

from cachetools import LRUCache

__all__ = ["LRUCache", "html_to_text"]

#: Elements after which a paragraph ends (a blank line in the text).
_BLOCKS = ("p", "div", "blockquote", "pre", "li", "h1", "h2", "h3", "h4", "h5", "h6", "aside")


def html_to_text(content: str) -> str:
    """The text of an HTML fragment as a person reads it: paragraphs separated by a blank line,
    ``<br>`` as a line break, entities decoded, every text node kept (so a link's URL split
    into spans, a mention's ``@`` and ``#tag`` come back whole)."""
    if "<" not in content and "&" not in content:
        return content.strip()
    from bs4 import BeautifulSoup  # here, not at the top: 0.1 s of CPU that only HTML networks need

    soup = BeautifulSoup(content, "html.parser")
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for block in soup.find_all(_BLOCKS):
        block.insert_after("\n\n")
    lines = soup.get_text().split("\n")
    text = "\n".join(line.rstrip() for line in lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip()
