"""Mastodon's status HTML to plain text.

Mastodon sends ``content`` as HTML (https://docs.joinmastodon.org/entities/Status/#content):
paragraphs in ``<p>``, line breaks as ``<br>``, links whose long URLs are split into
``invisible``/``ellipsis`` spans, mentions and hashtags as links. Joining every text node
gives the full URL back, ``@name`` and ``#tag``.
"""

from __future__ import annotations

from html.parser import HTMLParser

__all__ = ["html_to_text"]


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.paragraphs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "p":
            if self.paragraphs:
                self.parts.append("\n\n")
            self.paragraphs += 1

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(content: str) -> str:
    parser = _Text()
    parser.feed(content)
    parser.close()
    return "".join(parser.parts).strip()
