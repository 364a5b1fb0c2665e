"""The scrm hook: ``scrm_detect_language`` (script rules, fastText lid.176, word frequencies).

Not called when the network stated the language (``message.language`` set by the
adapter). Configured once at start-up from the environment (plugins have no settings
channel in the config file): ``SCRM_LANGUAGE_CANDIDATES`` (the languages your audience
posts in, e.g. ``en,fr,de``; default: the ~70 of :data:`scrm_language.LANGUAGES`) and
``SCRM_LANGUAGE_MIN_CONFIDENCE`` (default 0: every post with letters gets a language).
"""

from __future__ import annotations

import functools
import os

from scrm_core import hookimpl

from .detector import LanguageDetector, settings_from_env

# Checked when the plugin loads, so a bad value is reported then, naming the variable.
_SETTINGS = settings_from_env(os.environ)


@functools.cache
def detector() -> LanguageDetector:
    """The process's detector, built at the first post (loading fastText takes ~0.05 s, the
    word lists ~0.5 s more at the first post fastText is unsure of), not when the plugin
    loads: ``scrm status`` and ``scrm --help`` never pay for it."""
    return LanguageDetector(**_SETTINGS)


@hookimpl
def scrm_detect_language(text: str) -> str | None:
    return detector().detect(text)
