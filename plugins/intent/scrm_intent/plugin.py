"""The scrm hooks of scrm-intent: ``scrm_classify_message`` and ``scrm_register_classifiers``."""

from __future__ import annotations

from collections.abc import Callable

from scrm_core import Message, hookimpl
from scrm_core.learning import TrainableClassifier

from .classifier import IntentClassifier

#: The process's classifier: the hook classifies with it, ``scrm intent train`` retrains it.
CLASSIFIER = IntentClassifier()


@hookimpl
def scrm_classify_message(message: Message) -> dict[str, float] | None:
    return CLASSIFIER.classify(message)


@hookimpl
def scrm_register_classifiers(register: Callable[[TrainableClassifier], None]) -> None:
    register(CLASSIFIER)
