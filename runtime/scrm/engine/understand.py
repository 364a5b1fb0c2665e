"""Understanding one message: redaction, language, sentiment, listening matches, moderation, labels.

The one place these hooks are called for a message, by ingest (``scrm run``) and by
``scrm understand``, so an operator's sample sees exactly what the pipeline would.

Once per message, so written for the hot path: one coroutine per message, the hooks called
through their ``*_now`` twins (the result itself while the plugins are sync; a Later to
await only when one is async), each hook only when some plugin implements it.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import Any

from scrm.hooks import Hooks, Later
from scrm_core.models import Message

__all__ = ["Understander"]


class Understander:
    def __init__(self, hooks: Hooks, queries: Mapping[str, str]) -> None:
        self.hooks = hooks
        self.queries = dict(queries)

    def prepare(self, message: Message) -> Coroutine[Any, Any, None]:
        """Everything before classification: redaction, language (unless the network gave
        it), sentiment, listening matches, moderation."""
        return self._understand(message, classify=False)

    def understand(self, message: Message) -> Coroutine[Any, Any, None]:
        """:meth:`prepare`, then :meth:`classify`."""
        return self._understand(message, classify=True)

    async def classify(self, message: Message) -> None:
        """``scrm_classify_message``: labels merged into ``message.labels``, confidences
        (when a plugin gives label -> confidence) into ``message.label_confidence``."""
        if "scrm_classify_message" in self.hooks.implemented:
            found = self.hooks.classify_message_now(message)
            _merge_labels(message, await found if isinstance(found, Later) else found)

    async def _understand(self, message: Message, *, classify: bool) -> None:
        hooks = self.hooks
        present = hooks.implemented  # a set lookup per hook, not a call
        if "scrm_redact_text" in present:
            text = hooks.redact_text_now(message.text, message)
            message.text = await text if isinstance(text, Later) else text
        if message.language is None and "scrm_detect_language" in present:
            language = hooks.detect_language_now(message.text)
            if isinstance(language, Later):
                language = await language
            if language is not None:  # None is what it holds already
                message.language = language
        if "scrm_analyze_sentiment" in present:
            sentiment = hooks.analyze_sentiment_now(message.text, message.language)
            if isinstance(sentiment, Later):
                sentiment = await sentiment
            if sentiment is not None or message.sentiment is not None:
                message.sentiment = sentiment
        if self.queries and "scrm_listening_match" in present:
            names = hooks.listening_match_now(message, self.queries)
            if isinstance(names, Later):
                names = await names
            if names:
                matched = message.matched_queries  # extended in place: no model __setattr__
                matched.extend([n for n in names if n not in matched])
        if "scrm_moderate" in present:
            moderation = hooks.moderate_now(message)
            if isinstance(moderation, Later):
                moderation = await moderation
            labels = message.labels
            labels.extend([f"moderation:{x}" for x in moderation if f"moderation:{x}" not in labels])
        if classify and "scrm_classify_message" in present:
            found = hooks.classify_message_now(message)
            _merge_labels(message, await found if isinstance(found, Later) else found)


def _merge_labels(message: Message, found: list[list[str] | Mapping[str, float]]) -> None:
    """Classifiers' labels into ``message.labels``; their confidences (label -> confidence)
    into ``message.label_confidence``, the highest kept."""
    labels, confidence = message.labels, message.label_confidence
    for each in found:
        labels.extend([x for x in each if x not in labels])
        if type(each) is not list and isinstance(each, Mapping):
            for label, value in each.items():
                if isinstance(value, (float, int)) and value > confidence.get(label, -1.0):
                    confidence[label] = float(value)
