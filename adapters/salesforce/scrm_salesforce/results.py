"""Per-record results of sObject Collections and Bulk API 2.0, as scrm's OperationResults.

A collection call answers one ``{id, success, errors: [{statusCode, message, fields}],
created}`` per record, in order (developer.salesforce.com/docs/platform/api-rest/guide/
resources-composite-sobjects-collections-upsert.html). A refused record is retryable when
trying again may work: a transient lock, or a reference to a record that does not exist
*yet* (its own batch may still be in the outbox). Errors that mean the org is set up
wrong for every record (a missing field, no edit access to it) stop the run instead.
"""

from __future__ import annotations

from typing import Any

from scrm_core import OperationResult
from scrm_core.errors import FatalError

__all__ = ["TRANSIENT_CODES", "check_setup_errors", "collection_result", "record_error_result"]

TRANSIENT_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "QUERY_TIMEOUT", "REQUEST_RUNNING_TOO_LONG"})
#: Record errors that no retry fixes and that every record of the object would get.
SETUP_CODES = frozenset({"INVALID_FIELD_FOR_INSERT_UPDATE", "INVALID_TYPE", "INSUFFICIENT_ACCESS_OR_READONLY"})
MISSING_REFERENCE = "Foreign key external ID"


def is_missing_reference(error: dict[str, Any]) -> bool:
    return error.get("statusCode") == "INVALID_FIELD" and str(error.get("message", "")).startswith(MISSING_REFERENCE)


def _is_setup_error(error: dict[str, Any]) -> bool:
    code = error.get("statusCode")
    return code in SETUP_CODES or (code == "INVALID_FIELD" and not is_missing_reference(error))


def record_error_result(external_key: str, errors: list[dict[str, Any]]) -> OperationResult:
    errors = errors or [{"statusCode": "UNKNOWN_EXCEPTION", "message": "refused without a reason"}]
    return OperationResult(
        external_key=external_key,
        ok=False,
        error="; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in errors),
        retryable=all(e.get("statusCode") in TRANSIENT_CODES or is_missing_reference(e) for e in errors),
    )


def collection_result(external_key: str, raw: dict[str, Any]) -> OperationResult:
    if raw.get("success"):
        return OperationResult(external_key=external_key, ok=True, crm_id=raw.get("id"))
    return record_error_result(external_key, list(raw.get("errors") or []))


def check_setup_errors(sobject: str, results: list[dict[str, Any]]) -> None:
    """Raise FatalError when a record was refused because of how the org is set up."""
    for raw in results:
        for error in raw.get("errors") or []:
            if _is_setup_error(error):
                fields = ", ".join(error.get("fields") or []) or "the fields scrm writes"
                raise FatalError(
                    f"salesforce: {sobject} refused a record: {error.get('statusCode')}: {error.get('message')}. "
                    f"Fix: make sure {sobject} has {fields} (see docs/adapters/salesforce.md, `scrm check` lists "
                    "what is missing) and that the integration user's permission set grants Create/Edit on "
                    f"{sobject} and Edit on {fields}"
                )
