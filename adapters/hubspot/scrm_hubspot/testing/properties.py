"""The fake account's property definitions, and the checks HubSpot makes on every value written.

Definitions follow the properties API (developers.hubspot.com/docs/api/crm/properties):
``name``, ``type`` (string, number, bool, enumeration, datetime, date), ``fieldType``,
``options`` (``externalOptions: true`` for pipeline stages, whose values live in the
pipeline), ``hasUniqueValue``, ``modificationMetadata.readOnlyValue``.

Checks, each answered in HubSpot's documented error shape: the batch record error (or
the whole 400 of a single write) has category ``VALIDATION_ERROR`` and the message
``Property values were not valid: [{"isValid": false, "message": ..., "error": ...,
"name": <property>}]`` (the shape HubSpot answers for ``INVALID_OPTION``; the other
``error`` names below are the fake's own: HubSpot documents the shape, not every name):

* a string value over **65,536 characters** (``hs_note_body`` "limited to 65,536
  characters", developers.hubspot.com/docs/api/crm/notes; the fake holds every string
  property to it) is refused, counted in UTF-16 units as the JVM counts them;
* a value of a read-only property (``hs_object_id``, ``hs_lastmodifieddate``) is refused;
* an enumeration value not among the property's options (``INVALID_OPTION``, with
  HubSpot's message ``X was not one of the allowed options: [...]``), and a ticket's
  ``hs_pipeline_stage`` that is not a stage of its ``hs_pipeline``;
* numbers and booleans must be exactly a number / ``true`` / ``false``, no surrounding
  whitespace (developers.hubspot.com/changelog/breaking-change-enhanced-validations-for-
  non-string-properties-in-hubspots-crmobject-apis);
* a contact's ``email`` must look like an address.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "PIPELINES",
    "STRING_LIMIT",
    "builtin",
    "builtin_properties",
    "property_errors",
    "validation_message",
]

STRING_LIMIT = 65_536
#: Ticket pipelines of a new account: the default support pipeline and its stages.
PIPELINES: dict[str, list[tuple[str, str]]] = {
    "0": [("1", "New"), ("2", "Waiting on contact"), ("3", "Waiting on us"), ("4", "Closed")]
}
_LIFECYCLE = ["subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer",
              "evangelist", "other"]  # fmt: skip
_LEAD_STATUS = ["NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT", "CONNECTED",
                "BAD_TIMING"]  # fmt: skip
_PRIORITY = ["LOW", "MEDIUM", "HIGH", "URGENT"]
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EPOCH_MS = re.compile(r"^\d{10,13}$")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")


def _options(values: list[str]) -> list[dict[str, Any]]:
    return [{"label": v, "value": v, "displayOrder": i, "hidden": False} for i, v in enumerate(values)]


def builtin(name: str, type_: str = "string", field_type: str = "text", **more: Any) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "name": name,
        "label": name,
        "type": type_,
        "fieldType": field_type,
        "groupName": "builtin",
        "hasUniqueValue": False,
        "hubspotDefined": True,
        "options": [],
        "modificationMetadata": {"archivable": False, "readOnlyDefinition": True, "readOnlyValue": False},
    }
    read_only = more.pop("read_only", False)
    definition.update(more)
    definition["modificationMetadata"] = {**definition["modificationMetadata"], "readOnlyValue": read_only}
    return definition


def builtin_properties() -> dict[str, dict[str, dict[str, Any]]]:
    """Built-in properties per object. The stamps differ by object as in HubSpot: contacts have
    ``createdate`` / ``lastmodifieddate``, tickets ``createdate`` / ``hs_lastmodifieddate``,
    notes ``hs_createdate`` / ``hs_lastmodifieddate``."""
    stamps = {
        "contacts": ("createdate", "lastmodifieddate"),
        "tickets": ("createdate", "hs_lastmodifieddate"),
        "notes": ("hs_createdate", "hs_lastmodifieddate"),
    }
    objects = {
        "contacts": [
            builtin("email"),
            builtin("firstname"),
            builtin("lastname"),
            builtin("lifecyclestage", "enumeration", "radio", options=_options(_LIFECYCLE)),
            builtin("hs_lead_status", "enumeration", "radio", options=_options(_LEAD_STATUS)),
        ],
        "tickets": [
            builtin("subject"),
            builtin("content", field_type="textarea"),
            builtin("hs_pipeline", "enumeration", "select", externalOptions=True),
            builtin("hs_pipeline_stage", "enumeration", "radio", externalOptions=True),
            builtin("hs_ticket_priority", "enumeration", "select", options=_options(_PRIORITY)),
        ],
        "notes": [
            builtin("hs_note_body", field_type="html"),
            builtin("hs_timestamp", "datetime", "date"),
            builtin("hubspot_owner_id", "enumeration", "select", externalOptions=True),
        ],
    }
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for obj, props in objects.items():
        created, modified = stamps[obj]
        common = [
            builtin("hs_object_id", "number", "number", read_only=True),
            builtin(created, "datetime", "date"),
            builtin(modified, "datetime", "date", read_only=True),
        ]
        out[obj] = {d["name"]: d for d in [*props, *common]}
    return out


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def property_errors(obj: str, definitions: Mapping[str, dict[str, Any]], props: Mapping[str, Any],
                    record: Mapping[str, str] | None) -> list[dict[str, Any]]:  # fmt: skip
    """HubSpot's per-property validation results for the values in ``props`` (empty: all valid).

    ``record`` is the record as it is now (None: being created), for cross-property rules."""
    errors: list[dict[str, Any]] = []

    def refuse(name: str, error: str, message: str) -> None:
        errors.append({"isValid": False, "message": message, "error": error, "name": name,
                       "localizedErrorMessage": message})  # fmt: skip

    for name, value in props.items():
        definition = definitions.get(name)
        if definition is None or not isinstance(value, str):
            continue  # reported before this, as HubSpot does (PROPERTY_DOESNT_EXIST / a type error)
        if (definition.get("modificationMetadata") or {}).get("readOnlyValue"):
            refuse(name, "READ_ONLY_VALUE", f"{name} is a read only property; its value cannot be set.")
            continue
        if value == "":
            continue  # an empty value clears the property
        kind = definition.get("type")
        if kind == "string" and _units(value) > STRING_LIMIT:
            refuse(
                name, "MAX_LENGTH_EXCEEDED", f"{name} is {_units(value)} characters long; the limit is {STRING_LIMIT}"
            )
        elif kind == "number" and not _NUMBER.match(value):
            refuse(name, "INVALID_NUMBER", f"{value[:40]!r} is not a valid number")
        elif kind == "bool" and value not in ("true", "false"):
            refuse(name, "INVALID_BOOLEAN", f"{value[:40]!r} is not a valid boolean (true or false)")
        elif kind in ("datetime", "date") and not (_EPOCH_MS.match(value) or _ISO.match(value)):
            refuse(name, "INVALID_DATE", f"{value[:40]!r} is not a valid date")
        elif kind == "enumeration":
            allowed = [o["value"] for o in definition.get("options") or []]
            if name == "hs_pipeline_stage":
                pipeline = props.get("hs_pipeline") or (record or {}).get("hs_pipeline") or "0"
                allowed = [stage for stage, _ in PIPELINES.get(str(pipeline), [])]
            elif name == "hs_pipeline":
                allowed = list(PIPELINES)
            chosen = value.split(";") if definition.get("fieldType") == "checkbox" else [value]
            bad = next((v for v in chosen if allowed and v not in allowed), None)
            if bad is not None:
                refuse(name, "INVALID_OPTION", f"{bad} was not one of the allowed options: [{', '.join(allowed)}]")
        if obj == "contacts" and name == "email" and not _EMAIL.match(value):
            refuse(name, "INVALID_EMAIL", f"Email address {value[:40]} is invalid")
    return errors


def validation_message(errors: list[dict[str, Any]]) -> str:
    return "Property values were not valid: " + json.dumps(errors)
