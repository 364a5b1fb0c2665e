"""Agents' label corrections and the models trained on them, on PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from scrm_core.store import AuditEntry, LabelExample, NewLabelExample, StoredModel
from scrm_core.store.base import CheckpointArg, LearningStore

from .db import PgBase, decode, esc, unesc, utcnow

__all__ = ["PgLearning"]


class PgLearning(PgBase, LearningStore):
    def save_label_examples(self, examples: Sequence[NewLabelExample], *, checkpoint: CheckpointArg = None) -> int:
        at = utcnow()
        with self._tx() as cur:
            # The newest correction of a message wins, with a new seq (so "new since the last
            # training" sees it): delete, then insert, as SQLite's INSERT OR REPLACE does.
            for e in examples:
                key = esc(e.message_key)
                cur.execute("DELETE FROM label_examples WHERE message_key = %s AND namespace = %s", (key, e.namespace))
                cur.execute(
                    "INSERT INTO label_examples (message_key, namespace, label, text, language, source, crm_id,"
                    " corrected_at, stored_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (key, e.namespace, e.label, e.text, e.language, e.source, e.crm_id, e.corrected_at, at),
                )
            if checkpoint is not None:
                self._save_checkpoint(cur, checkpoint[0], checkpoint[1], len(examples), at)
            if examples:
                sources = sorted({e.source for e in examples})
                entry = AuditEntry("labels.corrected", ",".join(sources), f"{len(examples)} correction(s) kept")
                self._insert_audit(cur, [entry], at)
        return len(examples)

    def label_examples(self, namespace: str | None = None) -> list[LabelExample]:
        rows = self._rows(
            "SELECT e.seq, e.message_key, e.namespace, e.label, e.text, e.language, e.source, e.crm_id,"
            " e.corrected_at, e.stored_at FROM label_examples e LEFT JOIN messages m ON m.key = e.message_key"
            " WHERE NOT COALESCE(m.deleted, false) AND (%(ns)s::text IS NULL OR e.namespace = %(ns)s) ORDER BY e.seq",
            {"ns": namespace},
        )
        return [
            LabelExample(
                message_key=unesc(key),
                namespace=ns,
                label=label,
                text=text,
                source=source,
                language=language,
                crm_id=crm_id,
                corrected_at=corrected,
                seq=seq,
                stored_at=stored,
            )
            for seq, key, ns, label, text, language, source, crm_id, corrected, stored in rows
        ]

    def save_model(self, name: str, data: bytes, report: Mapping[str, Any], trained_until: int) -> StoredModel:
        at = utcnow()
        with self._tx() as cur:
            cur.execute("UPDATE classifier_models SET active = false WHERE name = %s", (name,))
            cur.execute(
                "INSERT INTO classifier_models (name, data, report, trained_until, created_at)"
                " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (name, data, orjson.dumps(dict(report)).decode(), trained_until, at),
            )
            model_id = self._returned(cur)
            self._insert_audit(cur, [AuditEntry("model.trained", name, f"model #{model_id}")], at)
        found = self.model(name)
        assert found is not None
        return found

    def model(self, name: str) -> StoredModel | None:
        row = self._one(
            "SELECT id, data, report, trained_until, created_at FROM classifier_models"
            " WHERE name = %s AND active ORDER BY id DESC LIMIT 1",
            (name,),
        )
        if row is None:
            return None
        id_, data, report, until, created = row
        return StoredModel(
            id_, name, bytes(data), decode("classifier_models", id_, orjson.loads, report), until, created
        )

    def drop_models(self, name: str) -> int:
        with self._tx() as cur:
            cur.execute("UPDATE classifier_models SET active = false WHERE name = %s AND active", (name,))
            n = cur.rowcount
            if n:
                self._insert_audit(cur, [AuditEntry("model.reset", name, "back to the shipped model")], utcnow())
        return n
