"""``check()``: does the org have what scrm writes, and may the integration user write it?

Reads ``GET sobjects/{X}/describe`` for each object (its ``createable`` / ``updateable`` /
``deletable`` flags and each field's ``externalId``, ``createable``, ``updateable``;
developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm)
and says, for every gap, the exact field to create or permission to grant.
"""

from __future__ import annotations

from typing import Any

from scrm_core import CheckProblem

from .mapping import OBJECTS

__all__ = ["WRITTEN_FIELDS", "problems_in_describe"]

#: The standard fields the mapping writes, per Salesforce object.
WRITTEN_FIELDS: dict[str, tuple[str, ...]] = {
    "Contact": ("LastName", "Email"),
    "SocialPersona": (
        "Name", "ParentId", "Provider", "ExternalId", "ProfileUrl", "Followers", "IsVerified", "RealName", "Bio",
    ),
    "Case": ("Subject", "Status", "Priority", "Origin", "ContactId"),
    "Lead": ("LastName", "Company", "Status", "LeadSource"),
    "SocialPost": (
        "Name", "ExternalPostId", "Provider", "Content", "Posted", "PostUrl", "IsOutbound", "MessageType",
        "Language", "Sentiment", "ParentId", "PersonaId", "WhoId",
    ),
}  # fmt: skip


def _create_field_fix(sobject: str, name: str, how: str) -> str:
    return (
        f"Setup > Object Manager > {sobject} > Fields & Relationships > New: {how}; Field Name "
        f"{name.removesuffix('__c')} (API name {name}); give the integration user's permission set Edit access"
    )


def external_id_fix(sobject: str, name: str) -> str:
    return _create_field_fix(sobject, name, "Text(255) with 'Unique' (case sensitive) and 'External ID' ticked")


def problems_in_describe(sobject: str, describe: dict[str, Any], key_field: str) -> list[CheckProblem]:
    """What is missing or not writable on one object."""
    problems: list[CheckProblem] = []
    fields = {f["name"]: f for f in describe.get("fields", [])}
    grant = (
        f"give the integration user's profile or permission set Read, Create, Edit and Delete on {sobject} "
        "(Setup > Permission Sets > Object Settings)"
    )
    for flag in ("createable", "updateable", "deletable"):
        if describe.get(flag) is False:
            problems.append(CheckProblem(problem=f"{sobject}: the integration user lacks {flag} access", fix=grant))
    key = fields.get(key_field)
    if key is None:
        problems.append(
            CheckProblem(
                problem=f"{sobject} has no field {key_field}: scrm upserts every record by it",
                fix=external_id_fix(sobject, key_field),
            )
        )
    elif not key.get("externalId"):
        problems.append(
            CheckProblem(
                problem=f"{sobject}.{key_field} is not marked External ID: upserts by it are refused",
                fix=f"Setup > Object Manager > {sobject} > Fields & Relationships > {key_field} > Edit: tick "
                "'External ID' and 'Unique'",
            )
        )
    spec = next(s for s in OBJECTS.values() if s.sobject == sobject)
    for name, how in spec.custom_fields.items():
        if name not in fields:
            problems.append(
                CheckProblem(problem=f"{sobject} has no field {name}", fix=_create_field_fix(sobject, name, how))
            )
    written = [*WRITTEN_FIELDS[sobject], *spec.custom_fields, key_field]
    for name in written:
        meta = fields.get(name)
        if meta is not None and not (meta.get("createable") and meta.get("updateable")):
            problems.append(
                CheckProblem(
                    problem=f"{sobject}.{name} is not writable by the integration user",
                    fix=f"Setup > Object Manager > {sobject} > Fields & Relationships > {name} > Set Field-Level "
                    "Security: make it Visible and not Read-Only for the integration user's profile",
                )
            )
    return problems
