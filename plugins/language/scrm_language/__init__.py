"""Offline language detection for scrm: ``scrm_detect_language``, None when unsure."""

from .detector import DEFAULT_MIN_CONFIDENCE, LANGUAGES, LanguageDetector, detector_from_env

__version__ = "0.3.0"
__all__ = ["DEFAULT_MIN_CONFIDENCE", "LANGUAGES", "LanguageDetector", "detector_from_env"]
