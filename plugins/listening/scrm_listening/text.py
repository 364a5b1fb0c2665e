"""How text becomes tokens, for queries and messages alike (so both sides always agree).

A token is a run of Unicode word characters (``\\w``: letters, digits, ``_``), a single
emoji, a single Chinese or Japanese character (those scripts put no spaces between
words), or a tag: ``#hashtag``, ``$cashtag`` (a letter first, so ``$5`` is the word
``5``) or ``@mention`` (``@alice@mastodon.social`` and ``@alice.bsky.social`` whole). Text
is NFC-normalised and casefolded first, so ``STRASSE`` finds ``Straße``. Word boundaries
come free: ``bank`` is one token and ``banking`` another.

A :class:`Doc` is one message tokenized once; every query is evaluated against it.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

from .nodes import field_token

_EMOJI = "\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff"
# Chinese and Japanese are written without spaces: each character is a token, so the
# query 銀行 (a phrase of two tokens) finds it inside 私の銀行は.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD_CHAR = rf"[^\W{_CJK}]"
# Plain words first: most tokens are words, and the tag branches then fail on one char.
_TOKEN = re.compile(rf"{_WORD_CHAR}+|[{_CJK}{_EMOJI}]|#(?<!\w#)\w+|\$(?<!\w\$)[^\W\d]\w*|@(?<!\w@)\w+(?:[.@]\w+)*")
TAG_MARKS = "#@$"


def normalize(text: str) -> str:
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text.casefold()


def normalize_text(text: str) -> str:
    """:func:`normalize`, with the common all-ASCII case first (nothing to compose)."""
    return text.casefold() if text.isascii() else normalize(text)


def tokenize(text: str) -> list[str]:
    """The tokens of ``text`` in order, normalised."""
    return _tokens(normalize(text))


def _tokens(normalized: str, tags: list[str] | None = None, findall: Any = _TOKEN.findall) -> list[str]:
    """``_TOKEN.findall(normalized)``, faster: no token spans a space, and most words are plain.

    A plain ASCII word (letters and digits only) is its own token; only the others (with
    punctuation, tags, emoji, other scripts) go through the regular expression. The tags
    found are appended to ``tags`` if given.
    """
    tokens: list[str] = []
    add = tokens.append
    for word in normalized.split():
        if word.isalnum() and word.isascii():
            add(word)
        else:
            found = findall(word)
            tokens += found
            if tags is not None and ("#" in word or "@" in word or "$" in word):
                tags += [token for token in found if token[0] in TAG_MARKS]
    return tokens


def case_tokens(text: str) -> tuple[list[str], list[str]]:
    """The tokens of ``text`` as written (NFC only, case kept) and casefolded, one for one."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    tokens = _TOKEN.findall(text)
    return tokens, [token.casefold() for token in tokens]


def tag_words(tag: str) -> list[str]:
    """The tokens inside a tag: ``#refund`` -> ``refund``, so a plain word also finds the tag."""
    body = tag[1:]
    if body.isascii() and body.isalnum():
        return [body]  # the usual case, without the regular expression
    return _TOKEN.findall(body)


def normalize_handle(handle: str) -> str:
    return normalize(handle).lstrip("@")


def normalize_language(code: str) -> str:
    return code.casefold().replace("_", "-")


class Doc:
    """One message, tokenized once.

    ``tokens`` holds the words, the tags, the words inside tags and one pseudo-token per
    field value (``network:reddit``, ``lang:en``, ``is:reply``...), so words and exact
    fields are both a set lookup. Positions (for phrases and NEAR) are built only when a
    query that needs them is evaluated.

    The matcher builds it in two steps, because most messages of a firehose wake no query:
    :meth:`scan` only tokenizes (``tokens`` then holds the text's tokens and the tags the
    network gave, nothing else), and :meth:`complete` adds the rest for the few messages
    that are candidates of some query. ``Doc(message)`` does both.
    """

    __slots__ = (
        "_cased",
        "_joined",
        "_positions",
        "complete_",
        "followers",
        "message",
        "sequence",
        "tags",
        "text",
        "tokens",
    )

    def __init__(self, message: Any) -> None:
        self._scan(message)
        self.complete()

    @classmethod
    def scan(cls, message: Any, normalized: str | None = None) -> Doc:
        """Only the tokens of the text and the network's tags: enough to find candidate queries.

        :param normalized: ``normalize_text(message.text)``, when the caller has it already.
        """
        doc = cls.__new__(cls)
        doc._scan(message, normalized)
        return doc

    def _scan(self, message: Any, normalized: str | None = None) -> None:
        # The hot path of every message: only what finding candidates needs. The caches
        # below (positions, joined, cased) are set when first used.
        text: str = message.text
        tags: list[str] = []
        sequence = _tokens(normalize_text(text) if normalized is None else normalized, tags)
        tokens = set(sequence)
        if message.hashtags or message.mentions:
            tags += ["#" + normalize(tag).lstrip("#") for tag in message.hashtags]
            tags += ["@" + normalize_handle(handle) for handle in message.mentions]
            tokens.update(tags)
        self.tags: list[str] = tags  # the text's and the network's hashtags, mentions and cashtags
        self.message = message
        self.text = text
        self.sequence: list[str] = sequence
        self.tokens: set[str] = tokens
        self.complete_ = False

    def complete(self, fields: frozenset[str] | None = None) -> None:
        """Add the words inside tags and the fields' pseudo-tokens (once).

        :param fields: the fields some query tests (the matcher knows); None: all of them.
        """
        if self.complete_:
            return
        self.complete_ = True
        tokens = self.tokens
        for tag in self.tags:
            tokens.update(tag_words(tag))
        if fields is None or fields:
            tokens |= self.field_tokens(fields)
        self.followers: int = self.message.author.followers or 0

    def field_tokens(self, kinds: frozenset[str] | None = None) -> set[str]:
        """Pseudo-tokens of the fields in ``kinds`` (``network``, ``lang``, ``author``, ``is``, ``has``; None: all)."""
        message, text, author = self.message, self.text, self.message.author
        found: set[str] = set()
        if kinds is None or "network" in kinds:
            found.add(_NETWORK_TOKENS.get(message.network) or _network_token(message.network))
        if (kinds is None or "lang" in kinds) and message.language:
            found.update(_language_tokens(message.language))
        if (kinds is None or "author" in kinds) and author.handle:
            found.add(_author(author.handle))
        if kinds is None or "is" in kinds:
            if message.parent_id is not None:
                found.add(_IS_REPLY)
            if author.verified:
                found.add(_IS_VERIFIED)
            if message.visibility == "direct":
                found.add(_IS_DIRECT)
        if kinds is None or "has" in kinds:
            if "://" in text or "www." in text:
                found.add(_HAS_LINKS)
            marks = {tag[0] for tag in self.tags}
            if "#" in marks:
                found.add(_HAS_HASHTAGS)
            if "@" in marks:
                found.add(_HAS_MENTIONS)
        return found

    def positions(self) -> dict[str, list[int]]:
        """Token -> its positions in the text; a tag's inner words share the tag's position."""
        if getattr(self, "_positions", None) is None:
            positions: dict[str, list[int]] = {}
            for i, token in enumerate(self.sequence):
                positions.setdefault(token, []).append(i)
                if token[0] in TAG_MARKS:
                    for word in tag_words(token):
                        positions.setdefault(word, []).append(i)
            self._positions = positions
        return self._positions

    def nfc_text(self) -> str:
        text = self.text
        return text if text.isascii() or unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)

    def cased_positions(self) -> dict[str, list[int]]:
        """Token as written (case kept) -> its positions in :attr:`sequence` (for ``{ACME}``)."""
        if getattr(self, "_cased", None) is None:
            raw, _ = case_tokens(self.text)
            if len(raw) == len(self.sequence):
                places: list[int] = list(range(len(raw)))
            else:  # casefolding changed a word boundary (rare: e.g. a dotted capital I)
                places, at = [], 0
                for token in raw:
                    places.append(at)
                    at += max(1, len(_TOKEN.findall(token.casefold())))
            cased: dict[str, list[int]] = {}
            for token, i in zip(raw, places, strict=True):
                cased.setdefault(token, []).append(i)
                if token[0] in TAG_MARKS:
                    for word in _TOKEN.findall(token[1:]):
                        cased.setdefault(word, []).append(i)
            self._cased = cased
        return self._cased

    def joined(self) -> str:
        """Every token, each after a newline: ``"\\n" + prefix in doc.joined()`` finds a prefix in C."""
        if getattr(self, "_joined", None) is None:
            self._joined = "\n" + "\n".join(self.tokens)
        return self._joined

    def has_prefix(self, prefix: str) -> bool:
        return any(token.startswith(prefix) for token in self.tokens)


_IS_REPLY = field_token("is", "reply")
_IS_VERIFIED = field_token("is", "verified")
_IS_DIRECT = field_token("is", "direct")
_HAS_LINKS = field_token("has", "links")
_HAS_HASHTAGS = field_token("has", "hashtags")
_HAS_MENTIONS = field_token("has", "mentions")


_NETWORK_TOKENS: dict[str, str] = {}


def _network_token(network: str) -> str:
    token = _NETWORK_TOKENS[network] = field_token("network", network.casefold())
    return token


def _author(handle: str) -> str:
    handle = handle.casefold() if handle.isascii() else normalize(handle)  # authors are too many to cache
    return field_token("author", handle.lstrip("@"))


@lru_cache(maxsize=1024)
def _language_tokens(code: str) -> tuple[str, ...]:
    """``pt-BR`` -> ``lang:pt-br`` and ``lang:pt``: ``lang:pt`` matches every Portuguese."""
    code = normalize_language(code)
    return (field_token("lang", code), field_token("lang", code.split("-", 1)[0]))
