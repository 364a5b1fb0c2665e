"""Understanding one message: redaction, language, sentiment, listening matches, moderation, labels.

The one place these hooks are called for a message, by ingest (``scrm run``) and by
``scrm understand``, so an operator's sample sees exactly what the pipeline would.

Once per message, so written for the hot path: one coroutine per message, each hook called
only when some plugin implements it, through its :meth:`~scrm.hooks.Dispatcher.caller`
(the result itself while the plugins are sync; a Later to await only when one is async).
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping, Sequence
from typing import Any

from scrm.hooks import Hooks, Later, merged
from scrm_core.models import Message

__all__ = ["Understander"]


class Understander:
    def __init__(self, hooks: Hooks, queries: Mapping[str, str]) -> None:
        self.hooks = hooks
        self.queries = dict(queries)
        self._callers = hooks.understanding_callers()
        # The last understand_page's messages, by id (held, so no other object takes an id).
        self._page: dict[int, Message] = {}

    def prepare(self, message: Message) -> Coroutine[Any, Any, None]:
        """Everything before classification: redaction, language (unless the network gave
        it), sentiment, listening matches, moderation."""
        return self._understand((message,), classify=False)

    def understand(self, message: Message) -> Coroutine[Any, Any, None]:
        """:meth:`prepare`, then :meth:`classify`. Nothing for a message of the last
        :meth:`understand_page`: understood already."""
        page = self._page
        if page and page.get(id(message)) is message:
            return _nothing()
        return self._understand((message,), classify=True)

    async def understand_page(self, messages: Sequence[Message]) -> None:
        """:meth:`understand` for each message, hook by hook over all of them (each message
        sees the same calls in the same order, so the same answers): one plugin's code and
        data stay in the CPU's caches for a whole page instead of taking turns with the rest
        of the pipeline per message. ``understand`` then does nothing for these messages,
        until the next page (if this raises, it understands each of them again)."""
        self._page = {}
        await self._understand(messages, classify=True)
        self._page = {id(m): m for m in messages}

    async def classify(self, message: Message) -> None:
        """``scrm_classify_message``: labels merged into ``message.labels``, confidences
        (when a plugin gives label -> confidence) into ``message.label_confidence``."""
        if "scrm_classify_message" in self.hooks.implemented:
            found = self.hooks.classify_message_now(message)
            _merge_labels(message, await found if isinstance(found, Later) else found)

    async def _understand(self, messages: Sequence[Message], *, classify: bool) -> None:
        """Each step for every message, then the next step: redaction, language (unless the
        network gave it), sentiment, listening, moderation, classification."""
        hooks = self.hooks
        callers = self._callers
        if callers.generation != hooks.generation:  # plugins (un)registered since
            callers = self._callers = hooks.understanding_callers()
        if callers.redact:
            for message in messages:
                text = hooks.redact_text_now(message.text, message)
                message.text = await text if isinstance(text, Later) else text
        if (detect := callers.detect_language) is not None:
            for message in messages:
                if message.language is None:
                    language = detect(message.text)
                    if isinstance(language, Later):
                        language = await language
                    if language is not None:  # None is what it holds already
                        message.language = language
        if (analyze := callers.analyze_sentiment) is not None:
            for message in messages:
                sentiment = analyze(message.text, message.language)
                if isinstance(sentiment, Later):
                    sentiment = await sentiment
                if sentiment is not None or message.sentiment is not None:
                    message.sentiment = sentiment
        if self.queries and (listen := callers.listening_match) is not None:
            for message in messages:
                found = listen(message, self.queries)
                names = merged(await found if isinstance(found, Later) else found)
                if names:
                    matched = message.matched_queries  # extended in place: no model __setattr__
                    matched.extend([n for n in names if n not in matched])
        if (moderate := callers.moderate) is not None:
            for message in messages:
                found = moderate(message)
                labels = message.labels
                for x in merged(await found if isinstance(found, Later) else found):
                    if f"moderation:{x}" not in labels:
                        labels.append(f"moderation:{x}")
        if classify and (classifiers := callers.classify_message) is not None:
            for message in messages:
                classified = classifiers(message)
                _merge_labels(message, await classified if isinstance(classified, Later) else classified)


async def _nothing() -> None:
    return None


def _merge_labels(message: Message, found: list[list[str] | Mapping[str, float]]) -> None:
    """Classifiers' labels into ``message.labels``; their confidences (label -> confidence)
    into ``message.label_confidence``, the highest kept."""
    labels, confidence = message.labels, message.label_confidence
    for each in found:
        labels.extend([x for x in each if x not in labels])
        if type(each) is dict or (type(each) is not list and isinstance(each, Mapping)):
            for label, value in each.items():
                if isinstance(value, (float, int)) and value > confidence.get(label, -1.0):
                    confidence[label] = float(value)
