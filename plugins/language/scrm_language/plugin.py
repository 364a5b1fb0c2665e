"""The scrm hook: ``scrm_detect_language`` (script rules, fastText lid.176, CLD2).

Not called when the network stated the language (``message.language`` set by the
adapter). Configured once at start-up from the environment (plugins have no settings
channel): ``SCRM_LANGUAGE_MIN_CONFIDENCE`` (default 0.15) and ``SCRM_LANGUAGE_CANDIDATES``
(default: the ~80 languages of :data:`scrm_language.LANGUAGES`).
"""

from __future__ import annotations

import os

from scrm_core import hookimpl

from .detector import detector_from_env

# Built at import: loading the model takes ~0.05 s, once per process, never per message.
DETECTOR = detector_from_env(os.environ)


@hookimpl
def scrm_detect_language(text: str) -> str | None:
    return DETECTOR.detect(text)
