"""Agents' label corrections and the models trained on them, on SQLite."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from scrm_core.store.base import CheckpointArg, LearningStore
from scrm_core.store.records import AuditEntry, LabelExample, NewLabelExample, StoredModel

from .db import SqliteBase, decode, now

__all__ = ["SqliteLearning"]


class SqliteLearning(SqliteBase, LearningStore):
    def save_label_examples(self, examples: Sequence[NewLabelExample], *, checkpoint: CheckpointArg = None) -> int:
        at = now()
        with self._tx() as c:
            # REPLACE deletes the older row of the same message and namespace: the newest
            # correction wins, with a new seq (so "new since the last training" sees it).
            c.executemany(
                "INSERT OR REPLACE INTO label_examples (message_key, namespace, label, text, language, source, crm_id,"
                " corrected_at, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        e.message_key,
                        e.namespace,
                        e.label,
                        e.text,
                        e.language,
                        e.source,
                        e.crm_id,
                        e.corrected_at.astimezone(UTC).isoformat() if e.corrected_at else None,
                        at,
                    )
                    for e in examples
                ],
            )
            if checkpoint is not None:
                self._save_checkpoint(checkpoint[0], checkpoint[1], len(examples), at)
            if examples:
                sources = sorted({e.source for e in examples})
                self._insert_audit(
                    [AuditEntry("labels.corrected", ",".join(sources), f"{len(examples)} correction(s) kept")], at
                )
        return len(examples)

    def label_examples(self, namespace: str | None = None) -> list[LabelExample]:
        rows = self._conn.execute(
            "SELECT e.seq, e.message_key, e.namespace, e.label, e.text, e.language, e.source, e.crm_id,"
            " e.corrected_at, e.stored_at FROM label_examples e LEFT JOIN messages m ON m.key = e.message_key"
            " WHERE COALESCE(m.deleted, 0) = 0 AND (? IS NULL OR e.namespace = ?) ORDER BY e.seq",
            (namespace, namespace),
        )
        return [
            LabelExample(
                message_key=key,
                namespace=ns,
                label=label,
                text=text,
                source=source,
                language=language,
                crm_id=crm_id,
                corrected_at=decode("label_examples", seq, datetime.fromisoformat, corrected) if corrected else None,
                seq=seq,
                stored_at=decode("label_examples", seq, datetime.fromisoformat, stored),
            )
            for seq, key, ns, label, text, language, source, crm_id, corrected, stored in rows
        ]

    def save_model(self, name: str, data: bytes, report: Mapping[str, Any], trained_until: int) -> StoredModel:
        at = now()
        with self._tx() as c:
            c.execute("UPDATE classifier_models SET active = 0 WHERE name = ?", (name,))
            model_id = c.execute(
                "INSERT INTO classifier_models (name, data, report, trained_until, created_at) VALUES (?, ?, ?, ?, ?)",
                (name, data, orjson.dumps(dict(report)).decode(), trained_until, at),
            ).lastrowid
            self._insert_audit([AuditEntry("model.trained", name, f"model #{model_id}")], at)
        found = self.model(name)
        assert found is not None
        return found

    def model(self, name: str) -> StoredModel | None:
        row = self._conn.execute(
            "SELECT id, data, report, trained_until, created_at FROM classifier_models"
            " WHERE name = ? AND active = 1 ORDER BY id DESC LIMIT 1",
            (name,),
        ).fetchone()
        if row is None:
            return None
        id_, data, report, until, created = row
        return StoredModel(
            id_,
            name,
            bytes(data),
            decode("classifier_models", id_, orjson.loads, report),
            until,
            decode("classifier_models", id_, datetime.fromisoformat, created),
        )

    def drop_models(self, name: str) -> int:
        with self._tx() as c:
            n = c.execute("UPDATE classifier_models SET active = 0 WHERE name = ? AND active = 1", (name,)).rowcount
            if n:
                self._insert_audit([AuditEntry("model.reset", name, "back to the shipped model")], now())
        return n
