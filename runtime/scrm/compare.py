"""Is a classifier retrained on the agents' corrections better than the one in use? (what
``scrm intent train`` and ``scrm intent compare`` answer, by k-fold cross-validation)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from scrm_core.learning import LabelledMessage, TrainableClassifier, macro_f1

__all__ = ["Comparison", "compare", "stratified_folds"]


def stratified_folds(labels: Sequence[str], folds: int, seed: int = 7) -> list[int]:
    """The fold (0..folds-1) of each example, each label dealt round the folds."""
    order = list(range(len(labels)))
    random.Random(seed).shuffle(order)
    fold_of = [0] * len(labels)
    dealt = 0
    for label in sorted(set(labels)):
        for i in order:
            if labels[i] == label:
                fold_of[i] = dealt % folds
                dealt += 1
    return fold_of


@dataclass
class Comparison:
    """A candidate's cross-validated answers against the models' on the same examples."""

    examples: int
    folds: int
    labels: list[str]
    candidate_f1: float  # each example predicted by a model trained without it
    current_f1: float  # the model in use, on the examples it was not trained on
    shipped_f1: float
    compared_on: int  # examples the current model had not seen (the fair comparison)
    candidate_f1_on_compared: float
    per_label: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def better(self) -> bool:
        return self.compared_on > 0 and self.candidate_f1_on_compared >= self.current_f1


def compare(
    classifier: TrainableClassifier,
    examples: Sequence[LabelledMessage],
    unseen_by_current: Sequence[bool],
    *,
    folds: int = 5,
) -> Comparison:
    """k-fold cross-validation of :meth:`TrainableClassifier.train` on ``examples``, beside
    the current and the shipped model's answers on the same examples.

    The current model may have been trained on some of them (an earlier ``train``); it is
    scored only on the ones it has not seen (``unseen_by_current``), and the candidate is
    compared with it there.
    """
    gold = [ex.label for ex in examples]
    counts = {label: gold.count(label) for label in set(gold)}
    folds = max(2, min(folds, min(counts.values())))
    fold_of = stratified_folds(gold, folds)
    candidate: list[str] = [""] * len(examples)
    for f in range(folds):
        model = classifier.train([ex for ex, k in zip(examples, fold_of, strict=True) if k != f])
        held_out = [i for i, k in enumerate(fold_of) if k == f]
        for i, label in zip(held_out, model.predict([examples[i].message for i in held_out]), strict=True):
            candidate[i] = label
    messages = [ex.message for ex in examples]
    current = classifier.current().predict(messages)
    shipped = classifier.shipped().predict(messages)
    # Every label the agents used, those the classifier did not know yet included; "none" is
    # the absence of a label and only counts as a wrong answer.
    scored = sorted({label for label in [*classifier.labels, *gold] if not label.endswith((":none", ":unsure"))})
    unseen = [i for i, flag in enumerate(unseen_by_current) if flag]

    def on(indexes: list[int], predicted: list[str]) -> float:
        return macro_f1([gold[i] for i in indexes], [predicted[i] for i in indexes], scored)[0]

    cand_f1, cand_per = macro_f1(gold, candidate, scored)
    _, shipped_per = macro_f1(gold, shipped, scored)
    return Comparison(
        examples=len(examples),
        folds=folds,
        labels=sorted(counts),
        candidate_f1=round(cand_f1, 3),
        current_f1=round(on(unseen, current), 3) if unseen else 0.0,
        shipped_f1=round(macro_f1(gold, shipped, scored)[0], 3),
        compared_on=len(unseen),
        candidate_f1_on_compared=round(on(unseen, candidate), 3) if unseen else 0.0,
        per_label={
            label: {"candidate": round(cand_per[label], 3), "shipped": round(shipped_per.get(label, 0.0), 3)}
            for label in cand_per
        },
    )
