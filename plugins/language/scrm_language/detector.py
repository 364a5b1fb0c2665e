"""py3langid with the abstentions a CRM needs: no label beats a wrong one.

py3langid (BSD-3, a maintained fork of langid.py) is a naive Bayes model over byte
n-grams that ships inside the wheel: nothing is downloaded, ever, and the same text
always gets the same answer. With ``norm_probs`` its scores are probabilities
calibrated across text lengths, so a confidence threshold means the same thing for a
tweet and for a forum post.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from py3langid.langid import MODEL_FILE, LanguageIdentifier  # type: ignore[import-untyped]

#: Below this probability of the best language the detector abstains. Chosen on short
#: posts: "Merci beaucoup !" scores 0.56 (kept), "is it in stock?" 0.34 against Frisian
#: 0.32 (dropped), "thanks!" 0.10 (dropped).
DEFAULT_MIN_CONFIDENCE = 0.4
#: Fewer letters than this (after removing links, @mentions and #tags) is too little
#: to tell "ok" in English from "ok" in a dozen other languages.
DEFAULT_MIN_LETTERS = 8

# Handles, links and tags are names, not language; they would pull every post to "en".
_NOT_LANGUAGE = re.compile(r"https?://\S+|www\.\S+|[@#]\w[\w.@-]*")
_LETTER = re.compile(r"[^\W\d_]")
# A thousand characters settle the language; the model's cost grows with every byte.
_MAX_CHARS = 1000
# Labels the model can give that are not languages.
_NOT_A_LANGUAGE = frozenset({"zxx", "und"})


class LanguageDetector:
    """Best language as a BCP-47 primary subtag (``en``, ``pt``, ``pcm``), or None."""

    def __init__(
        self,
        *,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        min_letters: int = DEFAULT_MIN_LETTERS,
        candidates: list[str] | None = None,
    ) -> None:
        self.min_confidence = min_confidence
        self.min_letters = min_letters
        self._model = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        if candidates:
            # Fewer candidates, fewer confusions (Frisian for English, Galician for Portuguese).
            self._model.set_languages(candidates)

    def detect(self, text: str) -> str | None:
        cleaned = _NOT_LANGUAGE.sub(" ", text[:_MAX_CHARS])
        if len(_LETTER.findall(cleaned)) < self.min_letters:
            return None
        language, confidence = self._model.classify(cleaned)
        if confidence < self.min_confidence or language in _NOT_A_LANGUAGE:
            return None
        # py3langid gives ISO 639-1 codes where one exists, else ISO 639-3: exactly
        # BCP-47's rule for primary language subtags.
        return str(language)


def detector_from_env(env: Mapping[str, str]) -> LanguageDetector:
    """The detector configured by ``SCRM_LANGUAGE_MIN_CONFIDENCE``, ``SCRM_LANGUAGE_MIN_LETTERS``
    and ``SCRM_LANGUAGE_CANDIDATES`` (comma-separated codes, e.g. ``en,fr,de``)."""
    candidates = [c.strip() for c in env.get("SCRM_LANGUAGE_CANDIDATES", "").split(",") if c.strip()]
    return LanguageDetector(
        min_confidence=float(env.get("SCRM_LANGUAGE_MIN_CONFIDENCE", DEFAULT_MIN_CONFIDENCE)),
        min_letters=int(env.get("SCRM_LANGUAGE_MIN_LETTERS", DEFAULT_MIN_LETTERS)),
        candidates=candidates or None,
    )
