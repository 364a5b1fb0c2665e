"""The scrm hook: mask card numbers, phone numbers and emails before anything reads the text.

An optional plugin (entry point group ``scrm.optional``): installed, it stays off until
``SCRM_ENABLE_PLUGINS=pii``. It implements ``scrm_redact_text``, which the core calls
first for every new and edited message, so language, sentiment, listening, classifiers,
the case subject and the CRM all see the masked text only. It also labels the message
``pii:card`` / ``pii:phone`` / ``pii:email`` so a routing rule can react (e.g. tell a
customer not to post card numbers in public).
"""

from __future__ import annotations

import os

from scrm_core import Message, hookimpl

from .redact import Redactor, Settings

SETTINGS = Settings.from_env(os.environ)
REDACTOR = Redactor(SETTINGS.phone_regions)


@hookimpl
def scrm_redact_text(text: str, message: Message) -> str | None:
    redaction = REDACTOR.redact(text)
    if not redaction.found:
        return None
    message.labels += [label for kind in sorted(redaction.found) if (label := f"pii:{kind}") not in message.labels]
    return redaction.text
