"""Understanding one message: redaction, language, sentiment, listening matches, moderation, labels.

The one place these hooks are called for a message, by ingest (``scrm run``) and by
``scrm understand``, so an operator's sample sees exactly what the pipeline would.
"""

from __future__ import annotations

from collections.abc import Mapping

from scrm.hooks import Hooks
from scrm_core.models import Message

__all__ = ["Understander"]


class Understander:
    def __init__(self, hooks: Hooks, queries: Mapping[str, str]) -> None:
        self.hooks = hooks
        self.queries = dict(queries)

    async def prepare(self, message: Message) -> None:
        """Everything before classification: redaction, language (unless the network gave
        it), sentiment, listening matches, moderation."""
        hooks = self.hooks
        present = hooks.implemented  # a set lookup per hook, not a call
        if "scrm_redact_text" in present:
            message.text = await hooks.redact_text(message.text, message)
        if message.language is None and "scrm_detect_language" in present:
            message.language = await hooks.detect_language(message.text)
        if "scrm_analyze_sentiment" in present:
            message.sentiment = await hooks.analyze_sentiment(message.text, message.language)
        if self.queries and "scrm_listening_match" in present:
            names = await hooks.listening_match(message, self.queries)
            if names:
                message.matched_queries += [n for n in names if n not in message.matched_queries]
        if "scrm_moderate" in present:
            labels = message.labels
            labels += [f"moderation:{x}" for x in await hooks.moderate(message) if f"moderation:{x}" not in labels]

    async def classify(self, message: Message) -> None:
        """``scrm_classify_message``: labels merged into ``message.labels``, confidences
        (when a plugin gives label -> confidence) into ``message.label_confidence``."""
        if "scrm_classify_message" not in self.hooks.implemented:
            return
        labels, confidence = message.labels, message.label_confidence
        for found in await self.hooks.classify_message(message):
            labels.extend([x for x in found if x not in labels])
            if isinstance(found, Mapping):
                for label, value in found.items():
                    if isinstance(value, int | float) and value > confidence.get(label, -1.0):
                        confidence[label] = float(value)

    async def understand(self, message: Message) -> None:
        await self.prepare(message)
        await self.classify(message)
