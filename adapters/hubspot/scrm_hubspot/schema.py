"""What scrm needs in a HubSpot account: object types, custom properties, association types, scopes.

Sources:

* unique-value properties exist on contacts, companies, deals, tickets and custom objects
  (https://developers.hubspot.com/changelog/unique-properties-for-contacts), not on
  notes, so a note's external key is an ordinary property (see :mod:`.notes`);
* property definitions (``type``, ``fieldType``, ``hasUniqueValue``, ``groupName``):
  https://developers.hubspot.com/docs/api/crm/properties
* HubSpot-defined association type ids:
  https://developers.hubspot.com/docs/api/crm/associations#association-type-id-values
* scopes: https://developers.hubspot.com/docs/api/working-with-oauth#scopes
* an enumeration property (``type: enumeration``, ``fieldType: select``) carries its
  ``options`` (``label``, ``value``): https://developers.hubspot.com/docs/api/crm/properties

``scrm_intent_correction`` (tickets and notes) is where agents correct scrm's intent label
(:mod:`.corrections`). It is :data:`OPTIONAL`: ``scrm hubspot setup`` creates it, and an
account without it syncs as before, only without learning from agents' corrections.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CONTACTS",
    "GROUP",
    "INTENT_CORRECTION",
    "INTENT_VALUES",
    "NOTES",
    "NOTE_TO_CONTACT",
    "NOTE_TO_TICKET",
    "OPTIONAL",
    "SCHEMA_READ_SCOPES",
    "SCHEMA_WRITE_SCOPES",
    "TICKETS",
    "TICKET_TO_CONTACT",
    "custom_properties",
    "unique_properties",
]

CONTACTS, TICKETS, NOTES = "contacts", "tickets", "notes"
OBJECT_TYPES = (CONTACTS, TICKETS, NOTES)
GROUP = "scrm"

# HubSpot-defined, unlabeled association types (from -> to).
NOTE_TO_CONTACT = 202
NOTE_TO_TICKET = 228
TICKET_TO_CONTACT = 16

#: Scope needed to read / create property definitions per object type (`scrm hubspot setup`, check()).
SCHEMA_READ_SCOPES = {CONTACTS: "crm.schemas.contacts.read", TICKETS: "tickets", NOTES: "crm.schemas.contacts.read"}
SCHEMA_WRITE_SCOPES = {CONTACTS: "crm.schemas.contacts.write", TICKETS: "tickets", NOTES: "crm.schemas.contacts.write"}
#: Scopes the adapter's writes need (notes are written with the contacts scopes).
OBJECT_SCOPES = ("crm.objects.contacts.read", "crm.objects.contacts.write", "tickets")

# Custom property names, other than the key property (a setting).
PROFILE_KEY = "scrm_profile_key"
LEAD_KEY = "scrm_lead_key"
INTENT_CORRECTION = "scrm_intent_correction"
INTENT_VALUES = ("complaint", "question", "purchase", "praise", "spam", "none")
#: Properties whose absence turns one feature off instead of failing writes (check() warns).
OPTIONAL: dict[str, frozenset[str]] = {TICKETS: frozenset({INTENT_CORRECTION}), NOTES: frozenset({INTENT_CORRECTION})}

_TEXT = ("string", "text")
_AREA = ("string", "textarea")
_NUMBER = ("number", "number")
_BOOL = ("bool", "booleancheckbox")
_SELECT = ("enumeration", "select")

_CONTACT_PROPS: dict[str, tuple[str, str]] = {
    PROFILE_KEY: _TEXT,
    "scrm_network": _TEXT,
    "scrm_account_id": _TEXT,
    "scrm_handle": _TEXT,
    "scrm_display_name": _TEXT,
    "scrm_profile_url": _TEXT,
    "scrm_followers": _NUMBER,
    "scrm_verified": _BOOL,
    "scrm_bio": _AREA,
    LEAD_KEY: _TEXT,
    "scrm_lead_name": _TEXT,
    "scrm_lead_network": _TEXT,
    "scrm_lead_status": _TEXT,
    "scrm_lead_labels": _TEXT,
}
_TICKET_PROPS: dict[str, tuple[str, str]] = {
    "scrm_network": _TEXT,
    "scrm_conversation_key": _TEXT,
    "scrm_labels": _TEXT,
    INTENT_CORRECTION: _SELECT,
}
_NOTE_PROPS: dict[str, tuple[str, str]] = {
    "scrm_network": _TEXT,
    "scrm_message_id": _TEXT,
    "scrm_conversation_key": _TEXT,
    "scrm_parent_id": _TEXT,
    "scrm_profile_key": _TEXT,
    "scrm_edited_at": _TEXT,
    "scrm_deleted": _BOOL,
    "scrm_deleted_at": _TEXT,
    "scrm_direction": ("enumeration", "select"),
    "scrm_visibility": _TEXT,
    "scrm_url": _TEXT,
    "scrm_language": _TEXT,
    "scrm_sentiment_score": _NUMBER,
    "scrm_sentiment_label": _TEXT,
    "scrm_labels": _TEXT,
    "scrm_matched_queries": _TEXT,
    "scrm_in_reply_to": _TEXT,
    INTENT_CORRECTION: _SELECT,
}
_OPTIONS = {
    "bool": [{"label": "Yes", "value": "true"}, {"label": "No", "value": "false"}],
    "scrm_direction": [{"label": "Inbound", "value": "inbound"}, {"label": "Outbound", "value": "outbound"}],
    INTENT_CORRECTION: [
        {"label": value.capitalize(), "value": value, "displayOrder": i} for i, value in enumerate(INTENT_VALUES)
    ],
}

_DESCRIPTIONS = {
    "scrm_direction": "Set to Outbound on a note of a ticket to have scrm send it as the reply.",
    "scrm_in_reply_to": "Optional: the network id of the message a reply answers (default: the thread's first).",
    INTENT_CORRECTION: "Set by an agent when scrm's intent label is wrong: scrm learns from it "
    "(`scrm intent train`). None: no intent.",
}


def unique_properties(key_property: str = "scrm_key") -> dict[str, set[str]]:
    """The properties that must require unique values, per object type (notes cannot have any)."""
    return {CONTACTS: {key_property, PROFILE_KEY, LEAD_KEY}, TICKETS: {key_property}, NOTES: set()}


def custom_properties(key_property: str = "scrm_key") -> dict[str, list[dict[str, Any]]]:
    """The property definitions scrm needs, per object type, as the properties API takes them."""
    unique = unique_properties(key_property)
    tables = {CONTACTS: _CONTACT_PROPS, TICKETS: _TICKET_PROPS, NOTES: _NOTE_PROPS}
    out: dict[str, list[dict[str, Any]]] = {}
    for obj, table in tables.items():
        definitions = []
        for name, (type_, field_type) in {key_property: _TEXT, **table}.items():
            definition: dict[str, Any] = {
                "name": name,
                "label": "scrm " + name.removeprefix("scrm_").replace("_", " "),
                "type": type_,
                "fieldType": field_type,
                "groupName": GROUP,
                "hasUniqueValue": name in unique[obj],
                "description": _DESCRIPTIONS.get(name, "Written by scrm; do not edit."),
            }
            options = _OPTIONS.get(name) or _OPTIONS.get(type_)
            if options:
                definition["options"] = options
            definitions.append(definition)
        out[obj] = definitions
    return out
