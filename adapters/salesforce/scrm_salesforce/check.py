"""``check()``: does the org have what scrm writes, and may the integration user write it?

Works on the describes of :mod:`.metadata` (the object's ``createable`` / ``updateable``
/ ``deletable`` flags; each field's ``externalId``, ``createable``, ``updateable`` and
picklist values; developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/
resources_sobject_describe.htm) and says, for every gap, the exact field to create or
permission to grant. Picklist values scrm is configured to write but the org does not
have are warnings: scrm then leaves the value out (the picklist's default applies). So is
a missing or unreadable intent correction picklist (``Scrm_Intent_Correction__c``): scrm
syncs as before and only stops learning from agents' corrections on that object. A field
the integration user cannot read (field-level security) is not in its describe at all, so
"missing" covers both.
"""

from __future__ import annotations

from scrm_core import CheckProblem

from .corrections import CORRECTED, CORRECTION_FIELD, INTENT_VALUES
from .mapping import OBJECTS
from .metadata import ObjectMeta
from .settings import SalesforceSettings

__all__ = ["CREATE_ONLY", "WRITTEN_FIELDS", "correction_warnings", "picklist_warnings", "problems_in_describe"]

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
#: Fields Salesforce itself makes create-only (the object reference lists Create, not Update):
#: scrm sets them on a new record and never on an existing one.
CREATE_ONLY: dict[str, frozenset[str]] = {
    "SocialPost": frozenset({"Provider", "IsOutbound"}),
    "SocialPersona": frozenset({"Provider"}),
}


def _create_field_fix(sobject: str, name: str, how: str) -> str:
    return (
        f"Setup > Object Manager > {sobject} > Fields & Relationships > New: {how}; Field Name "
        f"{name.removesuffix('__c')} (API name {name}); give the integration user's permission set Edit access"
    )


def correction_field_fix(sobject: str) -> str:
    return (
        f"Setup > Object Manager > {sobject} > Fields & Relationships > New: Picklist with the values "
        f"{', '.join(INTENT_VALUES)} (API names in lower case); Field Name "
        f"{CORRECTION_FIELD.removesuffix('__c')} (API name {CORRECTION_FIELD}); give the integration user's "
        "permission set Read access and agents Edit access (or set [learning] collect_corrections = false)"
    )


def external_id_fix(sobject: str, name: str) -> str:
    return _create_field_fix(sobject, name, "Text(255) with 'Unique' (case sensitive) and 'External ID' ticked")


def problems_in_describe(sobject: str, meta: ObjectMeta, key_field: str) -> list[CheckProblem]:
    """What is missing or not writable on one object."""
    problems: list[CheckProblem] = []
    grant = (
        f"give the integration user's profile or permission set Read, Create, Edit and Delete on {sobject} "
        "(Setup > Permission Sets > Object Settings)"
    )
    for flag, allowed in (
        ("createable", meta.createable),
        ("updateable", meta.updateable),
        ("deletable", meta.deletable),
    ):
        if not allowed:
            problems.append(CheckProblem(problem=f"{sobject}: the integration user lacks {flag} access", fix=grant))
    key = meta.fields.get(key_field)
    if key is None:
        problems.append(
            CheckProblem(
                problem=f"{sobject} has no field {key_field}: scrm upserts every record by it",
                fix=external_id_fix(sobject, key_field),
            )
        )
    elif not key.external_id:
        problems.append(
            CheckProblem(
                problem=f"{sobject}.{key_field} is not marked External ID: upserts by it are refused",
                fix=f"Setup > Object Manager > {sobject} > Fields & Relationships > {key_field} > Edit: tick "
                "'External ID' and 'Unique'",
            )
        )
    spec = next(s for s in OBJECTS.values() if s.sobject == sobject)
    for name, how in spec.custom_fields.items():
        if name not in meta.fields:
            problems.append(
                CheckProblem(problem=f"{sobject} has no field {name}", fix=_create_field_fix(sobject, name, how))
            )
    create_only = CREATE_ONLY.get(sobject, frozenset())
    for name in [*WRITTEN_FIELDS[sobject], *spec.custom_fields, key_field]:
        field = meta.fields.get(name)
        if field is None:
            continue
        if not field.createable or (not field.updateable and name not in create_only):
            problems.append(
                CheckProblem(
                    problem=f"{sobject}.{name} is not writable by the integration user",
                    fix=f"Setup > Object Manager > {sobject} > Fields & Relationships > {name} > Set Field-Level "
                    "Security: make it Visible and not Read-Only for the integration user's profile",
                )
            )
    return problems


def picklist_warnings(metas: dict[str, ObjectMeta], settings: SalesforceSettings) -> list[CheckProblem]:
    """Configured picklist values the org's restricted picklists do not have."""
    wanted: list[tuple[str, str, str, str]] = [  # (object, field, value, setting)
        *(("Case", "Status", v, f"case_status.{k}") for k, v in settings.case_status.items()),
        *(("Case", "Priority", v, f"case_priority.{k}") for k, v in settings.case_priority.items()),
        *(("Lead", "Status", v, f"lead_status.{k}") for k, v in settings.lead_status.items()),
    ]
    if settings.case_origin:
        wanted.append(("Case", "Origin", settings.case_origin, "case_origin"))
    if settings.lead_source:
        wanted.append(("Lead", "LeadSource", settings.lead_source, "lead_source"))
    warnings: list[CheckProblem] = []
    for sobject, name, value, setting in wanted:
        field = metas[sobject].fields.get(name) if sobject in metas else None
        if field is None or not field.restricted or not field.picklist:
            continue
        if value.casefold() not in {v.casefold() for v in field.picklist}:
            instead = f"the picklist's default ({field.default_value!r})" if field.default_value else "nothing"
            warnings.append(
                CheckProblem(
                    problem=f"{sobject}.{name} has no value {value!r} ([crm.settings] {setting}); scrm writes "
                    f"{instead} instead",
                    fix=f"set [crm.settings] {setting} to one of {', '.join(map(repr, field.picklist))}, or add "
                    f"{value!r} to the picklist (Setup > Object Manager > {sobject} > Fields > {name})",
                    blocking=False,
                )
            )
    return warnings


def correction_warnings(metas: dict[str, ObjectMeta]) -> list[CheckProblem]:
    """The intent correction picklist on SocialPost and Case: present, readable, with the six values."""
    warnings: list[CheckProblem] = []
    for sobject in CORRECTED:
        meta = metas.get(sobject)
        if meta is None:
            continue  # the object itself is reported already
        field = meta.fields.get(CORRECTION_FIELD)
        if field is None:
            warnings.append(
                CheckProblem(
                    problem=f"{sobject} has no field {CORRECTION_FIELD} the integration user can read: agents' "
                    f"intent corrections on {sobject} records are not read",
                    fix=correction_field_fix(sobject),
                    blocking=False,
                )
            )
        elif field.type != "picklist":
            warnings.append(
                CheckProblem(
                    problem=f"{sobject}.{CORRECTION_FIELD} is a {field.type} field, not a picklist: agents can type "
                    "labels that are no intent",
                    fix=f"make it a Picklist with the values {', '.join(INTENT_VALUES)}",
                    blocking=False,
                )
            )
        elif absent := [v for v in INTENT_VALUES if v.casefold() not in {p.casefold() for p in field.picklist}]:
            warnings.append(
                CheckProblem(
                    problem=f"{sobject}.{CORRECTION_FIELD} lacks the value(s) {', '.join(absent)}: agents cannot "
                    "pick them",
                    fix=f"Setup > Object Manager > {sobject} > Fields & Relationships > {CORRECTION_FIELD} > Values: "
                    f"add {', '.join(absent)}",
                    blocking=False,
                )
            )
    return warnings
