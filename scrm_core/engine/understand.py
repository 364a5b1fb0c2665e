"""Understanding one message: redaction, language, sentiment, listening matches, moderation, labels.

The one place these hooks are called for a message, by ingest (``scrm run``) and by
``scrm understand``, so an operator's sample sees exactly what the pipeline would.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..models import Message, Sentiment
from ..plugins import Dispatcher

__all__ = ["Understander"]


class Understander:
    def __init__(self, dispatch: Dispatcher, queries: Mapping[str, str]) -> None:
        self.dispatch = dispatch
        self.queries = dict(queries)

    async def prepare(self, message: Message) -> None:
        """Everything before classification: redaction, language (unless the network gave
        it), sentiment, listening matches, moderation."""
        call = self.dispatch
        if call.has("scrm_redact_text"):
            message.text = await call.call_chain("scrm_redact_text", "text", message.text, message=message)
        if message.language is None and call.has("scrm_detect_language"):
            language = await call.call_first("scrm_detect_language", text=message.text)
            message.language = language if isinstance(language, str) else None
        if call.has("scrm_analyze_sentiment"):
            sentiment = await call.call_first("scrm_analyze_sentiment", text=message.text, language=message.language)
            message.sentiment = sentiment if isinstance(sentiment, Sentiment) else None
        if self.queries and call.has("scrm_listening_match"):
            for names in await call.call_all("scrm_listening_match", message=message, queries=self.queries):
                message.matched_queries += [n for n in names if n not in message.matched_queries]
        if call.has("scrm_moderate"):
            labels = message.labels
            for found in await call.call_all("scrm_moderate", message=message):
                labels += [f"moderation:{x}" for x in found if f"moderation:{x}" not in labels]

    async def classify(self, message: Message) -> None:
        """``scrm_classify_message``: labels merged into ``message.labels``, confidences
        (when a plugin gives label -> confidence) into ``message.label_confidence``."""
        if not self.dispatch.has("scrm_classify_message"):
            return
        labels, confidence = message.labels, message.label_confidence
        for found in await self.dispatch.call_all("scrm_classify_message", message=message):
            labels += [x for x in found if x not in labels]
            if isinstance(found, Mapping):
                for label, value in found.items():
                    if isinstance(value, int | float) and value > confidence.get(label, -1.0):
                        confidence[label] = float(value)

    async def understand(self, message: Message) -> None:
        await self.prepare(message)
        await self.classify(message)
