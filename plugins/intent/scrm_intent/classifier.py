"""The intent classifier behind the hooks: the shipped model, or the deployment's own.

One :class:`IntentClassifier` per process. It answers ``scrm_classify_message`` and, as a
:class:`scrm_core.learning.TrainableClassifier`, lets ``scrm intent train`` retrain it from
the agents' corrections: the packaged examples stay in the training set as the prior,
and each correction counts :data:`CORRECTION_WEIGHT` times (it is the company's own
traffic, and an agent took the time to say so). Labels the agents introduce
(``intent:cancellation``) become classes of the deployment's model.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from importlib import resources
from typing import TYPE_CHECKING

from scrm_core import Direction, Message, hookimpl
from scrm_core.learning import LabelledMessage, TrainableClassifier

# The model (numpy) is imported when it is first used, not when the plugin loads.
if TYPE_CHECKING:
    from .model import IntentModel, Prediction

__all__ = ["CORRECTION_WEIGHT", "IntentClassifier", "Model"]

CORRECTION_WEIGHT = 3.0
NAMESPACE = "intent"
_ANSWERS_MAX = 16384
_UNSEEN = object()


def _sentiment_label(message: Message) -> str | None:
    return message.sentiment.label if message.sentiment is not None else None


class Model:
    """An :class:`IntentModel` as a :class:`scrm_core.learning.TrainedModel`."""

    def __init__(self, model: IntentModel) -> None:
        self.model = model

    def predict_one(self, message: Message) -> Prediction:
        return self.model.predict(message.text, _sentiment_label(message))

    def predict(self, messages: Sequence[Message]) -> list[str]:
        predictions = self.model.predict_many([m.text for m in messages], [_sentiment_label(m) for m in messages])
        return [f"{NAMESPACE}:{'none' if p.unsure else p.label}" for p in predictions]

    def to_bytes(self) -> bytes:
        return self.model.to_bytes()


class IntentClassifier(TrainableClassifier):
    name = "intent"
    namespace = NAMESPACE

    def __init__(self) -> None:
        self._current: Model | None = None
        # (text, sentiment label) -> the hook's (label, confidence), or None for no intent:
        # the answer of classify() for a text seen before, without building it again. Valid
        # for one model and its settings (_answers_for); emptied when they change or it is full.
        self._answers: dict[tuple[str, str | None], tuple[str, float] | None] = {}
        self._answers_for: tuple[object, float, float] | None = None

    @cached_property
    def _shipped(self) -> Model:
        from .model import IntentModel

        data = (resources.files("scrm_intent") / "model.npz").read_bytes()
        return Model(IntentModel.from_bytes(data, origin="scrm_intent/model.npz"))

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(f"{NAMESPACE}:{c}" for c in self.current().model.classes)

    def current(self) -> Model:
        return self._current or self._shipped

    def shipped(self) -> Model:
        return self._shipped

    def use(self, model: object | None) -> None:
        if model is not None and not isinstance(model, Model):
            raise TypeError(f"not a scrm-intent model: {type(model).__name__}")
        self._current = model

    def load(self, data: bytes) -> Model:
        from .model import IntentModel, ModelError

        try:
            return Model(IntentModel.from_bytes(data, origin="stored intent model"))
        except ModelError as exc:
            raise ValueError(str(exc)) from exc

    @hookimpl
    def scrm_classify_message(self, message: Message) -> dict[str, float] | None:
        """The hook, answered with this classifier's current model (see :meth:`classify`)."""
        return self.classify(message)

    def classify(self, message: Message) -> dict[str, float] | None:
        """``{"intent:<label>": confidence}``, ``{"intent:unsure": confidence}`` when the
        model is not sure, None for no intent (and for the company's own outbound posts)."""
        if message.direction is Direction.outbound:
            return None
        model = self.current().model
        settings = (model, model.temperature, model.unsure_below)
        if settings != self._answers_for:
            self._answers.clear()
            self._answers_for = settings
        key = (message.text, _sentiment_label(message))
        found = self._answers.get(key, _UNSEEN)
        if found is _UNSEEN:
            found = self._answer(model, *key)
            if len(self._answers) >= _ANSWERS_MAX:
                self._answers.clear()
            self._answers[key] = found
        return None if found is None else {found[0]: found[1]}  # type: ignore[index]

    @staticmethod
    def _answer(model: IntentModel, text: str, sentiment: str | None) -> tuple[str, float] | None:
        if not text.strip():
            return None
        label, confidence, unsure = model.best(text, sentiment)
        if unsure:
            return f"{NAMESPACE}:unsure", round(confidence, 3)
        if label == "none":
            return None
        return f"{NAMESPACE}:{label}", round(confidence, 3)

    def train(self, examples: Sequence[LabelledMessage]) -> Model:
        from .build import pipeline_sentiment
        from .model import INTENTS
        from .train import Example, augment, fit, shipped_examples

        shipped_model = self._shipped.model
        prior = augment(shipped_examples(pipeline_sentiment))
        own = []
        for ex in examples:
            label = ex.label.removeprefix(f"{NAMESPACE}:")
            if label == "unsure":
                continue
            message = ex.message
            own.append(
                Example(
                    message.text,
                    label,
                    message.language,
                    _sentiment_label(message),
                    weight=CORRECTION_WEIGHT,
                    source="correction",
                )
            )
        new_labels = sorted({ex.label for ex in own} - set(INTENTS))
        model = fit([*prior, *own], c=float(shipped_model.meta.get("c", 8.0)), classes=(*INTENTS, *new_labels))
        bias = float(shipped_model.meta.get("complaint_bias", 0.0))
        if "complaint" in model.classes:
            model.intercept[model.classes.index("complaint")] += bias
        model.temperature = shipped_model.temperature
        model.unsure_below = shipped_model.unsure_below
        model.meta = {
            **{k: v for k, v in shipped_model.meta.items() if k in ("c", "complaint_bias", "temperature")},
            "examples": len(prior),
            "corrections": len(own),
            "prior": "scrm-intent shipped examples",
        }
        return Model(model)
