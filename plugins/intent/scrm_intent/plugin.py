"""The scrm hook of scrm-intent: ``scrm_register_classifiers`` (the classifier it registers
answers ``scrm_classify_message`` itself)."""

from __future__ import annotations

from collections.abc import Callable

from scrm_core import hookimpl
from scrm_core.learning import TrainableClassifier

from .classifier import IntentClassifier


@hookimpl
def scrm_register_classifiers(register: Callable[[TrainableClassifier], None]) -> None:
    # One classifier per plugin host: it answers scrm_classify_message with the model the
    # host's engine loaded into it (IntentClassifier.scrm_classify_message); scrm intent
    # train retrains it. Nothing is kept in this module.
    register(IntentClassifier())
