"""The scrm hook: ``scrm_detect_language`` backed by py3langid.

Configured once at start-up from the environment (plugins have no settings channel):
``SCRM_LANGUAGE_MIN_CONFIDENCE`` (default 0.4), ``SCRM_LANGUAGE_MIN_LETTERS`` (default 8)
and ``SCRM_LANGUAGE_CANDIDATES`` (default: all ~100 languages of the model).
"""

from __future__ import annotations

import os

from scrm_core import hookimpl

from .detector import detector_from_env

# Built at import: loading the model takes ~0.1 s, once per process, never per message.
DETECTOR = detector_from_env(os.environ)


@hookimpl
def scrm_detect_language(text: str) -> str | None:
    return DETECTOR.detect(text)
