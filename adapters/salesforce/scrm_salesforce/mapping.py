"""scrm's CRM operations, written onto Salesforce's own social data model.

==========  ==============  ==================================================================
scrm        Salesforce      how
==========  ==============  ==================================================================
contact     Contact         the display name in LastName (the only required name field)
profile     SocialPersona   ParentId -> the Contact; Provider from the network
case        Case            Subject, Status, Priority, Origin, ContactId
lead        Lead            LastName, Company (required: a configured placeholder), Status
message     SocialPost      ParentId -> Case, PersonaId -> SocialPersona, WhoId -> Contact
==========  ==============  ==================================================================

Every record carries scrm's external key in the external ID field (``Scrm_Key__c``) and
is upserted by it. References are written as relationship references by that external
id, so no Salesforce Id is ever looked up first: ``"Persona": {"Scrm_Key__c": "..."}``,
and for polymorphic lookups ``"Who": {"attributes": {"type": "Contact"}, ...}``
(developer.salesforce.com/docs/platform/api-rest/guide/dome-upsert.html); in Bulk API 2.0
CSV the same reference is the column ``Persona.Scrm_Key__c`` or ``Contact:Who.Scrm_Key__c``
(developer.salesforce.com/docs/platform/api-asynch/guide/relationship-fields-in-a-header-row-2-0.html).

A field the operation does not carry, or carries as None, is left as the CRM has it (an
agent may have filled it in); the one deliberate null is a redacted message's Content.
Fields: developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/
``sforce_api_objects_socialpost.htm`` and ``sforce_api_objects_socialpersona.htm``.

Values are mapped here, not fitted: lengths, create-only fields and picklists are the
org's to say, and :mod:`.fit` applies what its describe says before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from scrm_core import CrmObject, CrmOperation

from .settings import SalesforceSettings

__all__ = ["OBJECTS", "Mapper", "Reference", "SObjectSpec"]


@dataclass(frozen=True)
class Reference:
    """How one of scrm's refs is written: the relationship name and the object it points at."""

    relationship: str
    field: str
    target: CrmObject
    polymorphic: bool


@dataclass(frozen=True)
class SObjectSpec:
    sobject: str
    refs: Mapping[str, Reference]
    custom_fields: Mapping[str, str]  # besides the external id: API name -> how to create it


OBJECTS: dict[CrmObject, SObjectSpec] = {
    CrmObject.contact: SObjectSpec("Contact", {}, {}),
    CrmObject.profile: SObjectSpec(
        "SocialPersona", {"contact": Reference("Parent", "ParentId", CrmObject.contact, polymorphic=True)}, {}
    ),
    CrmObject.case: SObjectSpec(
        "Case", {"contact": Reference("Contact", "ContactId", CrmObject.contact, polymorphic=False)}, {}
    ),
    # Lead has no lookup to a Contact (ConvertedContactId is set by lead conversion only).
    CrmObject.lead: SObjectSpec("Lead", {}, {}),
    CrmObject.message: SObjectSpec(
        "SocialPost",
        {
            "profile": Reference("Persona", "PersonaId", CrmObject.profile, polymorphic=False),
            "contact": Reference("Who", "WhoId", CrmObject.contact, polymorphic=True),
            "case": Reference("Parent", "ParentId", CrmObject.case, polymorphic=True),
        },
        {
            "Scrm_Conversation_Key__c": "Text(255), the thread the post belongs to",
            "Scrm_Deleted__c": "Checkbox (default unchecked), set when the post was deleted on the network",
            "Scrm_Labels__c": "Long Text Area(32768), labels from routing and classification, ';'-separated",
            "Scrm_Sentiment_Score__c": "Number(1, 3), sentiment from -1 to 1",
        },
    ),
}

#: Network -> SocialPost / SocialPersona Provider picklist value. Others become "Other".
DEFAULT_PROVIDERS = {
    "x": "Twitter",
    "twitter": "Twitter",
    "facebook": "Facebook",
    "meta": "Facebook",
    "instagram": "Instagram",
    "linkedin": "LinkedIn",
    "youtube": "YouTube",
    "whatsapp": "WhatsApp",
}
SENTIMENT = {"positive": "Positive", "neutral": "Neutral", "negative": "Negative"}


class Mapper:
    """Builds Salesforce records from scrm operations, with the operator's picklist choices."""

    def __init__(self, settings: SalesforceSettings) -> None:
        self.settings = settings
        self.key_field = settings.external_id_field
        self.providers = {**DEFAULT_PROVIDERS, **{k.lower(): v for k, v in settings.providers.items()}}
        self.allowed_providers: set[str] | None = None  # the org's active picklist values, once read
        self._fields: dict[CrmObject, Callable[[dict[str, Any]], dict[str, Any]]] = {
            CrmObject.contact: self.contact,
            CrmObject.profile: self.profile,
            CrmObject.case: self.case,
            CrmObject.lead: self.lead,
            CrmObject.message: self.message,
        }

    # ------------------------------------------------------------ records

    def fields(self, op: CrmOperation) -> dict[str, Any]:
        """The plain field values of ``op`` (no external id, no references)."""
        return self._fields[op.object](op.fields)

    def references(self, op: CrmOperation) -> dict[Reference, str]:
        spec = OBJECTS[op.object]
        return {spec.refs[name]: key for name, key in op.refs.items() if name in spec.refs}

    def json_record(self, op: CrmOperation, fields: dict[str, Any]) -> dict[str, Any]:
        """The record as sObject Collections takes it, with its (fitted) ``fields``."""
        record: dict[str, Any] = {"attributes": {"type": OBJECTS[op.object].sobject}, self.key_field: op.external_key}
        record.update(fields)
        for ref, key in self.references(op).items():
            target: dict[str, Any] = {self.key_field: key}
            if ref.polymorphic:
                target = {"attributes": {"type": OBJECTS[ref.target].sobject}, **target}
            record[ref.relationship] = target
        return record

    def csv_column(self, ref: Reference) -> str:
        """The Bulk API 2.0 header of a reference column."""
        column = f"{ref.relationship}.{self.key_field}"
        return f"{OBJECTS[ref.target].sobject}:{column}" if ref.polymorphic else column

    def provider(self, network: str) -> str:
        value = self.providers.get(network.lower(), "Other")
        if self.allowed_providers is not None and value not in self.allowed_providers:
            return "Other"
        return value

    # ------------------------------------------------------------ per object

    def contact(self, f: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if f.get("name"):
            # Social display names are not "first last": the whole name is the required LastName.
            out["LastName"] = str(f["name"])
        if f.get("email"):
            out["Email"] = f["email"]
        return out

    def profile(self, f: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        name = f.get("handle") or f.get("display_name") or f.get("account_id")
        if name:
            out["Name"] = str(name)
        if f.get("network"):
            out["Provider"] = self.provider(f["network"])
        for source, target in (
            ("account_id", "ExternalId"),
            ("url", "ProfileUrl"),
            ("followers", "Followers"),
            ("display_name", "RealName"),
            ("bio", "Bio"),
        ):
            if f.get(source) is not None:
                out[target] = f[source]
        if "verified" in f:
            out["IsVerified"] = bool(f["verified"])
        return out

    def case(self, f: dict[str, Any]) -> dict[str, Any]:
        s = self.settings
        out: dict[str, Any] = {}
        if f.get("subject"):
            out["Subject"] = str(f["subject"])
        if f.get("status"):
            out["Status"] = s.case_status.get(f["status"], f["status"])
        if f.get("priority"):
            out["Priority"] = s.case_priority.get(f["priority"], f["priority"])
        if s.case_origin and f.get("network"):  # the full shape of a case: first write or a re-route
            out["Origin"] = s.case_origin
        return out

    def lead(self, f: dict[str, Any]) -> dict[str, Any]:
        s = self.settings
        out: dict[str, Any] = {}
        if f.get("name"):
            out["LastName"] = str(f["name"])
            out["Company"] = s.lead_company
            if s.lead_source:
                out["LeadSource"] = s.lead_source
        if f.get("status"):
            out["Status"] = s.lead_status.get(f["status"], f["status"])
        return out

    def message(self, f: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if f.get("message_id"):
            out["ExternalPostId"] = f["message_id"]
            out["Name"] = f"{f.get('network', '')}:{f['message_id']}"
        if f.get("network"):
            out["Provider"] = self.provider(f["network"])
        if "text" in f:
            out["Content"] = f["text"] or None  # "" is a redaction: null the content, keep no trace
        if f.get("created_at"):
            out["Posted"] = f["created_at"]
        if f.get("url"):
            out["PostUrl"] = f["url"]
        if f.get("direction"):
            out["IsOutbound"] = f["direction"] == "outbound"
        if f.get("visibility"):
            out["MessageType"] = "Direct" if f["visibility"] == "direct" else "Reply" if f.get("parent_id") else "Post"
        if f.get("conversation_key"):
            out["Scrm_Conversation_Key__c"] = f["conversation_key"]
        if "deleted" in f:
            out["Scrm_Deleted__c"] = bool(f["deleted"])
        if f.get("language"):
            out["Language"] = f["language"]
        if f.get("sentiment_label") in SENTIMENT:
            out["Sentiment"] = SENTIMENT[f["sentiment_label"]]
        if f.get("sentiment_score") is not None:
            out["Scrm_Sentiment_Score__c"] = f["sentiment_score"]
        if "labels" in f:
            out["Scrm_Labels__c"] = ";".join(f["labels"] or []) or None
        return out
