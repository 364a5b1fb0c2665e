"""The fake org's describe metadata, and the checks Salesforce makes on every value written.

Field lists, types, lengths and the Create / Update / Nillable / Restricted picklist
properties follow Salesforce's Object Reference and Field Reference for each object:

* Contact: developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/
  sforce_api_objects_contact.htm (LastName 80, FirstName 40, Email 80, Description 32,000);
* Case: .../sforce_api_objects_case.htm (Subject 255, Description 32,000);
* Lead: .../sforce_api_objects_lead.htm (LastName 80, Company 255, Status required);
* SocialPersona: .../sforce_api_objects_socialpersona.htm and developer.salesforce.com/docs/
  platform/field-reference/references/field-reference/salesforce-field-reference-socialpersona.html
  (Name 255, RealName 255, Bio 32,000, ExternalId 255; Provider is Create, not Update);
* SocialPost: .../sforce_api_objects_socialpost.htm and the field reference
  salesforce-field-reference-socialpost.html (Content textarea 32,000; Name, Handle,
  Headline, ExternalPostId, Language 255; IsOutbound and Provider are Create, not Update).

URL fields are given 255 (AttachmentUrl's length in the field reference; the fake takes
the shorter where the reference is silent, so an adapter that fits from describe copes).

``SystemModstamp`` is the system field "date and time when a user or automated process
(such as a trigger) last modified this record" (developer.salesforce.com/docs/atlas.en-us.
api.meta/api/system_fields.htm). A long text area (``textarea`` longer than 255) is neither
``filterable`` nor ``sortable``: SOQL takes "any field except a long text area field,
encrypted data field, or base64-encoded field" in a WHERE clause (developer.salesforce.com/
docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_fieldexpression.htm).
A field hidden from the integration user by field-level security (``visible=False``) is left
out of describe and refused in queries and writes as a column that does not exist.

The checks and their codes (the ``StatusCode`` values of
developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_concepts_core_data_objects.htm):
``STRING_TOO_LONG`` (``"<field>: data value too large: <value> (max length=<n>)"``),
``INVALID_FIELD_FOR_INSERT_UPDATE`` (a field that is not createable on insert or not
updateable on update), ``INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST``,
``INVALID_EMAIL_ADDRESS``, ``NUMBER_OUTSIDE_VALID_RANGE``,
``INVALID_TYPE_ON_FIELD_IN_RECORD``, ``REQUIRED_FIELD_MISSING``. Lengths are counted in
UTF-16 code units, as the platform (Java) counts them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import RecordError

__all__ = [
    "INTENT_CORRECTION",
    "INTENT_VALUES",
    "PROVIDERS",
    "SCRM_KEY",
    "FieldSpec",
    "scrm_custom_fields",
    "standard_schema",
    "system_fields",
]

SCRM_KEY = "Scrm_Key__c"
#: The picklist agents correct scrm's intent label with (docs/adapters/salesforce.md).
INTENT_CORRECTION = "Scrm_Intent_Correction__c"
INTENT_VALUES = ["complaint", "question", "purchase", "praise", "spam", "none"]
#: The Provider picklist of SocialPost and SocialPersona (a subset of the documented values).
PROVIDERS = ["Facebook", "Instagram", "LinkedIn", "Other", "Twitter", "WhatsApp", "YouTube"]
TEXT_TYPES = frozenset({"string", "textarea", "email", "url", "phone", "picklist", "multipicklist", "combobox"})
# What Salesforce accepts as an email address: local part, @, a domain with a dot.
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")


def _units(text: str) -> int:
    """UTF-16 code units: how the platform measures a string."""
    return len(text.encode("utf-16-le")) // 2


def _shown(value: str) -> str:
    return value if len(value) <= 40 else value[:40] + "..."


@dataclass
class FieldSpec:
    """One field of a describe result."""

    name: str
    type: str = "string"
    length: int = 0  # text types: the most characters (UTF-16 units) the field holds
    external_id: bool = False
    unique: bool = False
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    defaulted: bool = False
    reference_to: list[str] = field(default_factory=list)
    relationship_name: str | None = None
    picklist: list[str] | None = None
    restricted: bool = False
    default_value: str | None = None  # the picklist value marked defaultValue
    precision: int = 0  # double: total digits
    scale: int = 0  # double: digits after the point
    digits: int = 0  # int: most digits
    visible: bool = True  # field-level security: the integration user can read it

    def __post_init__(self) -> None:
        if self.type in TEXT_TYPES and not self.length:
            self.length = 255

    @property
    def filterable(self) -> bool:
        """Long text areas cannot be filtered (nor sorted) in SOQL."""
        return not (self.type == "textarea" and self.length > 255)

    @property
    def required_on_create(self) -> bool:
        return self.createable and not self.nillable and not self.defaulted

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.name.removesuffix("__c").replace("_", " "),
            "type": self.type,
            "length": self.length if self.type in TEXT_TYPES else 0,
            "byteLength": self.length * 3 if self.type in TEXT_TYPES else 0,
            "digits": self.digits,
            "precision": self.precision,
            "scale": self.scale,
            "externalId": self.external_id,
            "unique": self.unique,
            "createable": self.createable,
            "updateable": self.updateable,
            "nillable": self.nillable,
            "defaultedOnCreate": self.defaulted,
            "calculated": False,
            "referenceTo": self.reference_to,
            "relationshipName": self.relationship_name,
            "restrictedPicklist": self.restricted,
            "filterable": self.filterable,
            "sortable": self.filterable,
            "picklistValues": [
                {"value": v, "label": v, "active": True, "defaultValue": v == self.default_value}
                for v in self.picklist or []
            ],
        }

    def check(self, value: Any) -> None:
        """Raise the RecordError Salesforce answers for a value this field does not take."""
        name = self.name
        if value is None:
            if not self.nillable and self.type != "boolean":
                raise RecordError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{name}]", [name])
            return
        if self.type in TEXT_TYPES:
            if not isinstance(value, str):
                raise _wrong_type(name, value)
            if _units(value) > self.length:
                raise RecordError(
                    "STRING_TOO_LONG",
                    f"{name}: data value too large: {_shown(value)} (max length={self.length})",
                    [name],
                )
            if self.type == "email" and not _EMAIL.match(value):
                raise RecordError("INVALID_EMAIL_ADDRESS", f"{name}: invalid email address: {_shown(value)}", [name])
            if self.restricted and self.picklist is not None and value not in self.picklist:
                raise RecordError(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{name}: bad value for restricted picklist field: {_shown(value)}",
                    [name],
                )
        elif self.type == "boolean":
            if not isinstance(value, bool):
                raise _wrong_type(name, value)
        elif self.type == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise _wrong_type(name, value)
            if self.digits and abs(value) >= 10**self.digits:
                raise RecordError("NUMBER_OUTSIDE_VALID_RANGE", f"{name}: number outside valid range: {value}", [name])
        elif self.type in ("double", "currency", "percent"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _wrong_type(name, value)
            if self.precision and abs(value) >= 10 ** (self.precision - self.scale):
                raise RecordError("NUMBER_OUTSIDE_VALID_RANGE", f"{name}: number outside valid range: {value}", [name])
        elif self.type == "datetime":
            try:
                datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                raise _wrong_type(name, value) from None


def _wrong_type(name: str, value: Any) -> RecordError:
    return RecordError(
        "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{name}: value not of required type: {_shown(str(value))}", [name]
    )


def system_fields() -> list[FieldSpec]:
    return [
        FieldSpec("Id", "id", createable=False, updateable=False, nillable=False, defaulted=True),
        FieldSpec("CreatedDate", "datetime", createable=False, updateable=False, nillable=False, defaulted=True),
        FieldSpec("LastModifiedDate", "datetime", createable=False, updateable=False, nillable=False, defaulted=True),
        FieldSpec("SystemModstamp", "datetime", createable=False, updateable=False, nillable=False, defaulted=True),
    ]


def _ref(name: str, relationship: str, *targets: str, nillable: bool = True, updateable: bool = True) -> FieldSpec:
    return FieldSpec(
        name,
        "reference",
        reference_to=list(targets),
        relationship_name=relationship,
        nillable=nillable,
        updateable=updateable,
    )


def _picklist(
    name: str,
    values: list[str],
    *,
    restricted: bool = False,
    default: str | None = None,
    nillable: bool = True,
    updateable: bool = True,
) -> FieldSpec:
    return FieldSpec(
        name,
        "picklist",
        length=255,
        picklist=values,
        restricted=restricted,
        defaulted=default is not None,
        default_value=default,
        nillable=nillable,
        updateable=updateable,
    )


def standard_schema() -> dict[str, list[FieldSpec]]:
    """The standard fields scrm uses, as the object and field references describe them."""
    return {
        "Contact": [
            FieldSpec("FirstName", length=40),
            FieldSpec("LastName", length=80, nillable=False),
            FieldSpec("Email", "email", length=80),
            FieldSpec("Description", "textarea", length=32_000),
        ],
        "SocialPersona": [
            FieldSpec("Name", length=255, nillable=False),
            _ref("ParentId", "Parent", "Account", "Contact", "Lead", nillable=False),
            # Provider: Create, Filter, Group, Restricted picklist, Sort (no Update).
            _picklist("Provider", PROVIDERS, restricted=True, nillable=False, updateable=False),
            FieldSpec("ExternalId", length=255),
            FieldSpec("ProfileUrl", "url", length=255),
            FieldSpec("Followers", "int", digits=9),
            FieldSpec("IsVerified", "boolean", nillable=False, defaulted=True),
            FieldSpec("RealName", length=255),
            FieldSpec("Bio", "textarea", length=32_000),
        ],
        "SocialPost": [
            FieldSpec("Name", length=255, nillable=False),
            # Provider and IsOutbound: Create, not Update.
            _picklist("Provider", PROVIDERS, restricted=True, updateable=False),
            FieldSpec("Handle", length=255),
            FieldSpec("ExternalPostId", length=255),
            FieldSpec("Posted", "datetime", nillable=False),
            FieldSpec("PostUrl", "url", length=255),
            _picklist("MessageType", ["Comment", "Direct", "Post", "PrivateMessage", "Reply"], restricted=True),
            FieldSpec("IsOutbound", "boolean", nillable=False, defaulted=True, updateable=False),
            _ref("ParentId", "Parent", "Case", "Account", "Contact", "Lead"),
            _ref("PersonaId", "Persona", "SocialPersona"),
            _ref("WhoId", "Who", "Contact", "Lead", "Account"),
            _ref("ReplyToId", "ReplyTo", "SocialPost"),
            FieldSpec("Content", "textarea", length=32_000),
            FieldSpec("Headline", length=255),
            FieldSpec("Language", length=255),
            _picklist("Sentiment", ["Positive", "Neutral", "Negative"], restricted=True),
            _picklist("Status", ["Sending", "Sent", "Failed", "Deleted"]),
        ],
        "Case": [
            FieldSpec("Subject", length=255),
            _picklist("Status", ["New", "Working", "Escalated", "Closed"], default="New"),
            _picklist("Priority", ["High", "Medium", "Low"], default="Medium"),
            _picklist("Origin", ["Phone", "Email", "Web", "Social"]),
            _ref("ContactId", "Contact", "Contact"),
            FieldSpec("Description", "textarea", length=32_000),
        ],
        "Lead": [
            FieldSpec("LastName", length=80, nillable=False),
            FieldSpec("Company", length=255, nillable=False),
            _picklist(
                "Status",
                ["Open - Not Contacted", "Working - Contacted", "Closed - Converted"],
                default="Open - Not Contacted",
            ),
            _picklist("LeadSource", ["Web", "Phone Inquiry", "Partner Referral", "Other"]),
            FieldSpec("Email", "email", length=80),
            FieldSpec("Description", "textarea", length=32_000),
        ],
    }


def scrm_custom_fields() -> dict[str, list[FieldSpec]]:
    """The custom fields docs/adapters/salesforce.md asks an admin to create."""

    def key() -> FieldSpec:
        return FieldSpec(SCRM_KEY, length=255, external_id=True, unique=True)

    def correction() -> FieldSpec:
        return _picklist(INTENT_CORRECTION, list(INTENT_VALUES), restricted=True)

    return {
        "Contact": [key()],
        "SocialPersona": [key()],
        "Case": [key(), correction()],
        "Lead": [key()],
        "SocialPost": [
            key(),
            correction(),
            FieldSpec("Scrm_Conversation_Key__c", length=255),
            FieldSpec("Scrm_Deleted__c", "boolean", nillable=False, defaulted=True),
            FieldSpec("Scrm_Labels__c", "textarea", length=32_768),
            FieldSpec("Scrm_Sentiment_Score__c", "double", precision=4, scale=3),
        ],
    }
