"""Backfills through Bulk API 2.0: one upsert ingest job per apply() call.

simple-salesforce's ``bulk2`` does the job's life cycle (create the job with
``operation: upsert`` and ``externalIdFieldName``, upload the CSV, ``UploadComplete``,
poll until ``JobComplete``) and fetches ``successfulResults`` / ``failedResults`` /
``unprocessedrecords`` (developer.salesforce.com/docs/platform/api-asynch/guide/walkthrough-upsert.html).
Results come back as CSV rows that repeat the uploaded columns, so each row is matched to
its operation by the external id column.

CSV rules that differ from JSON (developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/
api_asynch/datafiles_csv_valid_record_rows.htm): an empty cell leaves the field unchanged
and ``#N/A`` sets it to null.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from scrm_core import CrmOperation, OperationResult

from .mapping import OBJECTS, Mapper
from .results import record_error_result

__all__ = ["bulk_results", "csv_rows"]

NULL = "#N/A"


def _cell(value: Any) -> str:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def csv_rows(mapper: Mapper, ops: Sequence[CrmOperation]) -> list[dict[str, str]]:
    """One row per operation, every row with every column (empty: leave unchanged)."""
    rows: list[dict[str, str]] = []
    for op in ops:
        row = {mapper.key_field: op.external_key}
        row.update({name: _cell(value) for name, value in mapper.fields(op).items()})
        row.update({mapper.csv_column(ref): key for ref, key in mapper.references(op).items()})
        rows.append(row)
    columns = {name for row in rows for name in row}
    return [{name: row.get(name, "") for name in sorted(columns)} for row in rows]


def bulk_results(
    mapper: Mapper,
    ops: Sequence[CrmOperation],
    successful: list[dict[str, str]],
    failed: list[dict[str, str]],
) -> list[OperationResult]:
    """One result per op from the job's result rows; a row missing from both is unprocessed."""
    key_field = mapper.key_field
    done = {row.get(key_field, ""): row for row in successful}
    refused = {row.get(key_field, ""): row for row in failed}
    results: list[OperationResult] = []
    for op in ops:
        if (row := done.get(op.external_key)) is not None:
            results.append(OperationResult(external_key=op.external_key, ok=True, crm_id=row.get("sf__Id")))
        elif (row := refused.get(op.external_key)) is not None:
            code, _, message = row.get("sf__Error", "UNKNOWN_EXCEPTION:no reason given").partition(":")
            results.append(record_error_result(op.external_key, [{"statusCode": code, "message": message}]))
        else:
            results.append(
                OperationResult(
                    external_key=op.external_key,
                    ok=False,
                    error=f"not processed by the Bulk API 2.0 job for {OBJECTS[op.object].sobject}",
                    retryable=True,
                )
            )
    return results


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))
