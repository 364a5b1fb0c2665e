# ruff: noqa: RUF001  (Cyrillic and typographic letters here are meant)
"""How likely a post's words are in each language: word frequencies from ``wordfreq``.

fastText reads character n-grams, which is what makes it fast and what makes it unsure
on four-word posts: ``jammer`` and ``klopt`` look English and German to it, ``uff que
calor`` Portuguese. Whole words settle most of these. ``wordfreq`` (Apache-2.0 code, data
CC BY-SA 4.0, by Robyn Speer) ships, for 40+ languages, how often each of the ~30,000
commonest words is used, measured over Wikipedia, subtitles, news, books, web text,
**Twitter and Reddit**, so ``lol``, ``mdr``, ``kkkk``, ``jajaja`` and ``valeu`` are in it.

The score of a language is the log-likelihood of the post's words under that language's
unigram frequencies (naive Bayes); a word a language's list does not have gets a floor,
and a language without a list gets a lower floor, so "no evidence" never outranks
evidence. Only languages fastText already proposed are scored, a handful per post.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable, Sequence
from itertools import repeat

__all__ = ["WordModel", "words_of"]

#: A word no list has is scored as if used once in ten million words (below every
#: listed word: the "small" lists stop at one in a million). Scores are in centibels
#: (hundredths of a power of ten), wordfreq's own unit: a cost of 300 is 1 in 1,000.
UNLISTED = 700
#: For a language wordfreq has no list for, every word costs a power of ten more than an
#: unlisted word: such languages win only on fastText's strong word (e.g. Afrikaans).
NO_LIST = 800
#: The commonest words per language kept in memory (the lists hold ~30,000; 10,000 words
#: cover ~90 % of what people write and cost ~1 MB per language).
WORDS_PER_LANGUAGE = 10_000
#: Languages whose words are weighed: those written in Latin or Cyrillic letters, where
#: closely related languages share most letter sequences (Spanish/Portuguese/Galician,
#: Dutch/Afrikaans, Russian/Ukrainian). Other scripts are settled by the script or by fastText.
WORD_LANGUAGES = frozenset(
    [
        "en",
        "es",
        "pt",
        "fr",
        "de",
        "it",
        "nl",
        "ru",
        "tr",
        "pl",
        "id",
        "ms",
        "vi",
        "uk",
        "sv",
        "da",
        "no",
        "fi",
        "cs",
        "sk",
        "ro",
        "hu",
        "ca",
        "tl",
        "bg",
        "hr",
        "sr",
        "sl",
        "lt",
        "lv",
        "mk",
        "is",
    ]
)
_NATS_PER_CENTIBEL = math.log(10) / 100
#: The first words settle it; a long post is not read to the end.
MAX_WORDS = 24

# wordfreq's codes -> the codes scrm answers with.
_CODES = {"nb": ("no",), "fil": ("tl",), "sh": ("hr", "sr", "bs")}
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_APOSTROPHE = re.compile(r"['’]")
_REPEATS = re.compile(r"([^\W\d_])\1{2,}")


def words_of(cleaned: str) -> list[str]:
    """The words of an already cleaned, lower-cased post (apostrophes kept inside words)."""
    return _WORD.findall(cleaned)


class WordModel:
    """Per-language costs (centibels) of the commonest words, loaded once (~20 MB)."""

    def __init__(self, tables: dict[str, dict[str, int]]) -> None:
        self._tables = tables

    @classmethod
    def from_wordfreq(cls, languages: Iterable[str], size: int = WORDS_PER_LANGUAGE) -> WordModel:
        import wordfreq

        wanted = set(languages) & WORD_LANGUAGES
        tables: dict[str, dict[str, int]] = {}
        costs = list(range(UNLISTED + 1))  # one int object per cost, shared by every table
        for code in sorted(wordfreq.available_languages("small")):
            ours = [c for c in _CODES.get(code, (code,)) if c in wanted]
            if not ours:
                continue
            table: dict[str, int] = {}
            # Buckets by frequency, commonest first: bucket i holds words used 10^(-i/100) of the time.
            for cost, bucket in enumerate(wordfreq.get_frequency_list(code, "small")):
                for word in bucket:
                    table[sys.intern(word)] = costs[min(cost, UNLISTED)]
                if len(table) >= size:
                    break
            wordfreq.get_frequency_list.cache_clear()  # its cache would keep every full list alive
            for c in ours:
                tables[c] = table
        return cls(tables)

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self._tables)

    def log_likelihoods(self, languages: Iterable[str], words: Sequence[str]) -> dict[str, float]:
        """Natural-log likelihood of ``words`` in each of ``languages`` (unigram, independent)."""
        words = words[:MAX_WORDS]
        plain = [w for w in words if not _REPEATS.search(w) and "'" not in w and "’" not in w]
        other = [_forms(w) for w in words if w not in plain] if len(plain) < len(words) else []
        out: dict[str, float] = {}
        for language in languages:
            table = self._tables.get(language)
            if table is None:
                out[language] = -NO_LIST * len(words) * _NATS_PER_CENTIBEL
                continue
            cost = sum(map(table.get, plain, repeat(UNLISTED)))
            for forms in other:
                cost += _cost(table, forms)
            out[language] = -cost * _NATS_PER_CENTIBEL
        return out


def _forms(word: str) -> tuple[str, ...] | tuple[str, tuple[str, ...]]:
    """The forms a word is looked up as: itself, then ``sooo`` -> ``soo``/``so``; or
    ``j'attends`` -> (``j``, ``attends``), all of which must be listed."""
    forms: list[str] = [word]
    if _REPEATS.search(word):
        forms += [_REPEATS.sub(r"\1\1", word), _REPEATS.sub(r"\1", word)]
    if "'" in word or "’" in word:
        parts = tuple(part for part in _APOSTROPHE.split(word) if part)
        return (word, parts)
    return tuple(forms)


def _cost(table: dict[str, int], forms: tuple[str, ...] | tuple[str, tuple[str, ...]]) -> int:
    best = UNLISTED
    for form in forms:
        if isinstance(form, str):
            found = table.get(form)
            if found is not None and found < best:
                best = found
        else:  # the parts of an elided word: the rarest part, if all are listed
            parts = [table.get(part) for part in form]
            if all(p is not None for p in parts):
                best = min(best, max(p for p in parts if p is not None))
    return best
