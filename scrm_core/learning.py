"""Classifiers that learn from the company's own agents.

Agents correct a message's label where they work (a field on the CRM's case, ticket or
message; ``scrm localcrm label`` for the embedded CRM). The engine reads corrections back
like pending replies (:meth:`scrm_core.CrmAdapter.label_corrections`, with a cursor saved
in the same transaction as the examples) and keeps them in the state store as labelled
examples. ``scrm intent train`` then retrains a deployment's own model from them.

Training is a capability a classifier plugin *offers*: besides implementing
``scrm_classify_message``, it registers a :class:`TrainableClassifier` through
``scrm_register_classifiers``. The core does the rest the same way for every such plugin,
the shipped one or a company's own: collecting corrections, cross-validating a candidate
against the model in use on the same held-out examples, storing the new model in the
state store, and handing it back to the plugin at start-up.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Protocol

from pydantic import BaseModel, Field

from .models import Message

__all__ = [
    "LabelCorrection",
    "LabelledMessage",
    "TrainableClassifier",
    "TrainedModel",
    "macro_f1",
    "normalise_label",
]


class LabelCorrection(BaseModel):
    """A label an agent set on a record in the CRM, as the CRM adapter reads it back.

    ``message_key`` is ``<network>:<message id>`` of the message the label is about; for a
    case, the conversation's key (which is the key of its first message). ``text`` is that
    message's text as the CRM holds it (for a case without the message, its subject): the
    state store keeps no message text, so the correction carries what the model learns from.
    """

    crm_id: str = Field(min_length=1, description="The CRM's id of the corrected record (for the audit log).")
    message_key: str = Field(min_length=3)
    label: str = Field(min_length=1, description="'complaint' or 'intent:complaint'; 'none' for no intent.")
    text: str
    language: str | None = None
    corrected_at: datetime | None = None


def normalise_label(label: str, namespace: str = "intent") -> str:
    """``"Complaint"`` -> ``"intent:complaint"``; a label that names its namespace keeps it."""
    label = label.strip().lower()
    return label if ":" in label else f"{namespace}:{label}"


@dataclass(frozen=True, slots=True)
class LabelledMessage:
    """A training example: a message (understood as the pipeline would: language,
    sentiment) and the label an agent gave it."""

    message: Message
    label: str  # full label, e.g. "intent:complaint"; "<namespace>:none" for no label


class TrainedModel(Protocol):
    """A model a :class:`TrainableClassifier` trained: it predicts, and it can be stored."""

    def predict(self, messages: Sequence[Message]) -> list[str]:
        """One full label per message (``"<namespace>:none"`` when it gives none)."""
        ...

    def to_bytes(self) -> bytes:
        """The model as bytes the classifier's :meth:`TrainableClassifier.load` reads back.
        Keep it data, not code (no pickle): the state store is not a trust boundary."""
        ...


class TrainableClassifier(ABC):
    """What a classifier plugin registers to learn from corrections.

    ``namespace`` says which corrections are its examples: a classifier in namespace
    ``"intent"`` learns from every correction whose label starts with ``intent:``.
    """

    name: ClassVar[str]
    namespace: ClassVar[str] = "intent"

    @property
    @abstractmethod
    def labels(self) -> tuple[str, ...]:
        """The full labels it can learn, ``"<namespace>:none"`` included."""

    @abstractmethod
    def current(self) -> TrainedModel:
        """The model in use now (the shipped one until :meth:`use` installs another)."""

    @abstractmethod
    def shipped(self) -> TrainedModel:
        """The model that came with the plugin."""

    @abstractmethod
    def train(self, examples: Sequence[LabelledMessage]) -> TrainedModel:
        """A new model from ``examples``, with whatever prior the plugin ships (its own
        training data, its shipped model). CPU-bound and synchronous: the caller runs it
        in a worker thread. Raise ``RuntimeError`` with a clear message when it cannot."""

    @abstractmethod
    def load(self, data: bytes) -> TrainedModel:
        """A model from :meth:`TrainedModel.to_bytes`; ``ValueError`` if it is unusable
        (damaged, or made by an incompatible version: the caller then keeps the shipped one)."""

    @abstractmethod
    def use(self, model: TrainedModel | None) -> None:
        """Classify with ``model`` from now on; None goes back to the shipped model."""


# ---------------------------------------------------------------- evaluation


def macro_f1(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> tuple[float, dict[str, float]]:
    """Macro-F1 over the ``labels`` present in ``gold``, and F1 per label."""
    per: dict[str, float] = {}
    for label in labels:
        actual = sum(1 for g in gold if g == label)
        if not actual:
            continue
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label == p)
        said = sum(1 for p in predicted if p == label)
        precision = tp / said if said else 0.0
        recall = tp / actual
        per[label] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return (sum(per.values()) / len(per) if per else 0.0), per
