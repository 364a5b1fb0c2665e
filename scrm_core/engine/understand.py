"""Understanding one message: redaction, language, sentiment, listening matches, moderation, labels.

The one place these hooks are called for a message, by ingest (``scrm run``) and by
``scrm understand``, so an operator's sample sees exactly what the pipeline would.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..hooks import Hooks
from ..models import Message

__all__ = ["Understander"]


class Understander:
    def __init__(self, hooks: Hooks, queries: Mapping[str, str]) -> None:
        self.hooks = hooks
        self.queries = dict(queries)

    async def prepare(self, message: Message) -> None:
        """Everything before classification: redaction, language (unless the network gave
        it), sentiment, listening matches, moderation."""
        hooks = self.hooks
        if hooks.has("scrm_redact_text"):
            message.text = await hooks.redact_text(message.text, message)
        if message.language is None and hooks.has("scrm_detect_language"):
            message.language = await hooks.detect_language(message.text)
        if hooks.has("scrm_analyze_sentiment"):
            message.sentiment = await hooks.analyze_sentiment(message.text, message.language)
        if self.queries and hooks.has("scrm_listening_match"):
            names = await hooks.listening_match(message, self.queries)
            message.matched_queries += [n for n in names if n not in message.matched_queries]
        if hooks.has("scrm_moderate"):
            labels = message.labels
            labels += [f"moderation:{x}" for x in await hooks.moderate(message) if f"moderation:{x}" not in labels]

    async def classify(self, message: Message) -> None:
        """``scrm_classify_message``: labels merged into ``message.labels``, confidences
        (when a plugin gives label -> confidence) into ``message.label_confidence``."""
        if not self.hooks.has("scrm_classify_message"):
            return
        labels, confidence = message.labels, message.label_confidence
        for found in await self.hooks.classify_message(message):
            labels += [x for x in found if x not in labels]
            if isinstance(found, Mapping):
                for label, value in found.items():
                    if isinstance(value, int | float) and value > confidence.get(label, -1.0):
                        confidence[label] = float(value)

    async def understand(self, message: Message) -> None:
        await self.prepare(message)
        await self.classify(message)
