"""Agents' label corrections in, models out: the engine's side of :mod:`scrm_core.learning`.

:class:`CorrectionCollector` reads corrections back from the CRM the way replies are read
(a cursor checkpointed in the same transaction as the examples it covers), and
:func:`load_models` hands each registered classifier the model ``scrm intent train`` stored
for this deployment. :func:`understood` prepares stored examples for training exactly as
the pipeline prepares a message before classification (language, sentiment...).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from scrm.store import AsyncStore, LabelExample, NewLabelExample, StateStore
from scrm_core.adapters import CrmAdapter, CrmCapability
from scrm_core.learning import LabelCorrection, LabelledMessage, TrainableClassifier, normalise_label
from scrm_core.models import Message, SocialProfile

from .crm_pages import crm_pages
from .understand import Understander

__all__ = ["CRM_LABELS", "CorrectionCollector", "CorrectionCounts", "load_models", "understood"]

log = logging.getLogger("scrm.learning")

#: Checkpoint name of the CRM's correction cursor ("@": never a source's name).
CRM_LABELS = "@crm-labels"


@dataclass
class CorrectionCounts:
    collected: int = 0
    skipped: int = 0  # no text to learn from (a redacted message, a record without one)


def _example(crm: str, correction: LabelCorrection) -> NewLabelExample:
    label = normalise_label(correction.label)
    return NewLabelExample(
        message_key=correction.message_key,
        namespace=label.partition(":")[0],
        label=label,
        text=correction.text,
        source=crm,
        language=correction.language,
        crm_id=correction.crm_id,
        corrected_at=correction.corrected_at,
    )


class CorrectionCollector:
    def __init__(self, store: AsyncStore, crm: CrmAdapter) -> None:
        self.store = store
        self.crm = crm
        self.counts = CorrectionCounts()

    @property
    def enabled(self) -> bool:
        return CrmCapability.label_corrections in type(self.crm).capabilities

    async def collect(self) -> int:
        """Store the corrections made since the saved cursor; returns how many were kept."""
        if not self.enabled:
            return 0
        kept = 0
        async for page, new_cursor in crm_pages(self.store, CRM_LABELS, self.crm.label_corrections):
            examples = [_example(self.crm.name, c) for c in page if c.text.strip()]
            skipped = len(page) - len(examples)
            if skipped:
                self.counts.skipped += skipped
                log.info("%d label correction(s) without text to learn from were skipped", skipped)
            await self.store.call(StateStore.save_label_examples, examples, checkpoint=(CRM_LABELS, new_cursor))
            kept += len(examples)
            self.counts.collected += len(examples)
        return kept


async def load_models(store: AsyncStore, classifiers: Mapping[str, TrainableClassifier]) -> dict[str, int | None]:
    """Give each classifier its stored model (or the shipped one); the stored model's id per name.

    A stored model the classifier cannot read (made by an older, incompatible version) is
    logged and skipped: the shipped model classifies until ``scrm intent train`` runs again.
    """
    loaded: dict[str, int | None] = {}
    for name, classifier in classifiers.items():
        stored = await store.call(StateStore.model, name)
        if stored is None:
            classifier.use(None)
            loaded[name] = None
            continue
        try:
            classifier.use(classifier.load(stored.data))
        except ValueError as exc:
            log.warning(
                "classifier %s: stored model #%d is not usable (%s); using the shipped one", name, stored.id, exc
            )
            classifier.use(None)
            loaded[name] = None
            continue
        loaded[name] = stored.id
    return loaded


async def understood(examples: Sequence[LabelExample], understander: Understander) -> list[LabelledMessage]:
    """Stored examples as the pipeline's classifiers see a message: redaction, language
    (the CRM's, else detected), sentiment, listening and moderation already applied."""
    author = SocialProfile(network="scrm", account_id="training")
    now = datetime.now(UTC)
    out = []
    for ex in examples:
        network, _, message_id = ex.message_key.partition(":")
        message = Message(
            network=network or "scrm",
            id=message_id or ex.message_key,
            author=author,
            text=ex.text,
            created_at=ex.corrected_at or now,
            language=ex.language,
        )
        await understander.prepare(message)
        out.append(LabelledMessage(message, ex.label))
    return out
