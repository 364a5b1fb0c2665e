"""Per-record results of sObject Collections and Bulk API 2.0, as scrm's OperationResults.

A collection call answers one ``{id, success, errors: [{statusCode, message, fields}],
created}`` per record, in order (developer.salesforce.com/docs/platform/api-rest/guide/
resources-composite-sobjects-collections-upsert.html); a Bulk job's failed row carries
``sf__Error`` as ``CODE:message``. Whether sending the record again can succeed is
decided from Salesforce's ``statusCode`` (the ``StatusCode`` values of
developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_concepts_core_data_objects.htm):

* retryable: a lock or a timeout on Salesforce's side, and a reference to a record that
  does not exist *yet* (``INVALID_FIELD`` "Foreign key external ID ... not found": its
  own batch may still be on its way);
* permanent, with the operator's fix: everything else (a validation rule, a duplicate
  rule, a trigger or flow, a value the org will not take). scrm fits values to the
  org's metadata before sending, so these are the refusals an operator must act on;
* a stop for the whole run (:class:`FatalError`): refusals that mean the org is set up
  wrong for every record (a missing field or object, no access to the object), which
  ``scrm check`` reports before a run starts.
"""

from __future__ import annotations

from typing import Any

from scrm_core import OperationResult
from scrm_core.errors import FatalError

__all__ = ["TRANSIENT_CODES", "check_setup_errors", "collection_result", "is_missing_reference", "record_error_result"]

TRANSIENT_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "QUERY_TIMEOUT", "REQUEST_RUNNING_TOO_LONG", "UNKNOWN_EXCEPTION"}
)
#: Record errors that no retry fixes and that every record of the object would get.
SETUP_CODES = frozenset({"INVALID_TYPE", "INSUFFICIENT_ACCESS_OR_READONLY"})
MISSING_REFERENCE = "Foreign key external ID"
RETRY = "then `scrm dlq retry <id>`"

#: What the operator does about each permanent refusal ({sobject} and {fields} are filled in).
FIXES: dict[str, str] = {
    "FIELD_CUSTOM_VALIDATION_EXCEPTION": (
        "a validation rule on {sobject} refused the record: change the rule (Setup > Object Manager > {sobject} > "
        "Validation Rules) so it lets scrm's records through, " + RETRY
    ),
    "DUPLICATES_DETECTED": (
        "a duplicate rule on {sobject} blocked the record: allow it for the integration user (Setup > Duplicate "
        "Rules), or merge the records in Salesforce, " + RETRY
    ),
    "DUPLICATE_VALUE": "another {sobject} already holds this unique value ({fields}): merge or fix the records, "
    + RETRY,
    "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY": (
        "a trigger, flow or process on {sobject} failed on the record (the message says which): fix it, " + RETRY
    ),
    "STRING_TOO_LONG": (
        "{fields} got shorter after scrm read the org's metadata; scrm re-reads it at every start: " + RETRY
    ),
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": (
        "add the value to the picklist {fields} of {sobject} (Setup > Object Manager > {sobject} > Fields) or "
        "map it in [crm.settings] (case_status, case_priority, lead_status, providers), " + RETRY
    ),
    "REQUIRED_FIELD_MISSING": (
        "{sobject} requires {fields}, which the record lacks (the record it updates may have been deleted in "
        "Salesforce, or a field was made required): make the field optional for the integration user or "
        "restore the record, " + RETRY
    ),
    "INVALID_FIELD_FOR_INSERT_UPDATE": (
        "give the integration user Edit on {sobject}.{fields} (Setup > Object Manager > {sobject} > Fields > "
        "Set Field-Level Security), " + RETRY
    ),
    "ENTITY_IS_DELETED": "a record it refers to was deleted in Salesforce: restore it from the Recycle Bin, " + RETRY,
    "INVALID_CROSS_REFERENCE_KEY": "a record it refers to does not exist or is not visible to the integration user",
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY": (
        "the integration user cannot see a record this one refers to: share it with the user, " + RETRY
    ),
}
_DEFAULT_FIX = "read the reason above; fix the record or the org's set-up, " + RETRY


def is_missing_reference(error: dict[str, Any]) -> bool:
    return error.get("statusCode") == "INVALID_FIELD" and str(error.get("message", "")).startswith(MISSING_REFERENCE)


def _is_setup_error(error: dict[str, Any]) -> bool:
    code = error.get("statusCode")
    return code in SETUP_CODES or (code == "INVALID_FIELD" and not is_missing_reference(error))


def record_error_result(external_key: str, errors: list[dict[str, Any]], sobject: str = "") -> OperationResult:
    errors = errors or [{"statusCode": "UNKNOWN_EXCEPTION", "message": "refused without a reason"}]
    retryable = all(e.get("statusCode") in TRANSIENT_CODES or is_missing_reference(e) for e in errors)
    first = next((e for e in errors if not (e.get("statusCode") in TRANSIENT_CODES or is_missing_reference(e))), None)
    code = str((first or errors[0]).get("statusCode") or "UNKNOWN_EXCEPTION")
    fields = ", ".join((first or errors[0]).get("fields") or []) or "the field"
    fix = None if retryable else FIXES.get(code, _DEFAULT_FIX).format(sobject=sobject or "the object", fields=fields)
    return OperationResult(
        external_key=external_key,
        ok=False,
        error="; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in errors),
        retryable=retryable,
        code=code,
        fix=fix,
    )


def collection_result(external_key: str, raw: dict[str, Any], sobject: str = "") -> OperationResult:
    if raw.get("success"):
        return OperationResult(external_key=external_key, ok=True, crm_id=raw.get("id"))
    return record_error_result(external_key, list(raw.get("errors") or []), sobject)


def check_setup_errors(sobject: str, results: list[dict[str, Any]]) -> None:
    """Raise FatalError when a record was refused because of how the org is set up."""
    for raw in results:
        for error in raw.get("errors") or []:
            if _is_setup_error(error):
                fields = ", ".join(error.get("fields") or []) or "the fields scrm writes"
                raise FatalError(
                    f"salesforce: {sobject} refused a record: {error.get('statusCode')}: {error.get('message')}. "
                    f"Fix: run `scrm check` for the exact list of what the org lacks; {sobject} needs {fields} and "
                    f"the integration user's permission set must grant Create/Edit on {sobject} and Edit on "
                    f"{fields} (docs/adapters/salesforce.md)"
                )
