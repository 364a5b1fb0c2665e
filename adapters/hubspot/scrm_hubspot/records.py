"""Engine fields (scrm.engine.mapping, docs/crm-fields.md) <-> HubSpot properties.

HubSpot stores every property value as a string: booleans are ``"true"``/``"false"``,
lists are joined with ``;`` (HubSpot's own multi-value separator), times of notes are
epoch milliseconds in ``hs_timestamp``. A note's body is HTML, so message text is
escaped: a post containing ``<script>`` shows as text to the agent, never as markup.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .fit import note_body
from .schema import LEAD_KEY, PROFILE_KEY
from .settings import HubSpotSettings

__all__ = [
    "LEAD_PROPERTIES",
    "PROFILE_PROPERTIES",
    "contact_fields",
    "contact_properties",
    "lead_fields",
    "lead_properties",
    "note_fields",
    "note_properties",
    "plain_text",
    "profile_fields",
    "profile_properties",
    "ticket_fields",
    "ticket_properties",
]

_PROFILE = {
    "network": "scrm_network",
    "account_id": "scrm_account_id",
    "handle": "scrm_handle",
    "display_name": "scrm_display_name",
    "url": "scrm_profile_url",
    "followers": "scrm_followers",
    "verified": "scrm_verified",
    "bio": "scrm_bio",
}
_LEAD = {
    "name": "scrm_lead_name",
    "network": "scrm_lead_network",
    "status": "scrm_lead_status",
    "labels": "scrm_lead_labels",
}
_TICKET = {"network": "scrm_network", "conversation_key": "scrm_conversation_key", "labels": "scrm_labels"}
_NOTE = {
    "network": "scrm_network",
    "message_id": "scrm_message_id",
    "conversation_key": "scrm_conversation_key",
    "parent_id": "scrm_parent_id",
    "edited_at": "scrm_edited_at",
    "deleted": "scrm_deleted",
    "deleted_at": "scrm_deleted_at",
    "direction": "scrm_direction",
    "visibility": "scrm_visibility",
    "url": "scrm_url",
    "language": "scrm_language",
    "sentiment_score": "scrm_sentiment_score",
    "sentiment_label": "scrm_sentiment_label",
    "labels": "scrm_labels",
    "matched_queries": "scrm_matched_queries",
}
_LISTS = {"labels", "matched_queries"}
_BOOLS = {"verified", "deleted"}
_NUMBERS = {"followers", "sentiment_score"}
_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"<br\s*/?>|</p>\s*<p[^>]*>", re.IGNORECASE)
_PRIORITIES = {"low": "LOW", "medium": "MEDIUM", "normal": "MEDIUM", "high": "HIGH", "urgent": "URGENT"}

#: Contact properties a profile / a lead owns (cleared when it is erased).
PROFILE_PROPERTIES = (PROFILE_KEY, *_PROFILE.values())
LEAD_PROPERTIES = (LEAD_KEY, *_LEAD.values())


def to_hubspot(value: Any) -> str:
    """A property value as HubSpot stores it; None clears the property."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    return str(value)


def _from_hubspot(field: str, value: str | None) -> Any:
    if value is None or value == "":
        return [] if field in _LISTS else None
    if field in _LISTS:
        return value.split(";")
    if field in _BOOLS:
        return value == "true"
    if field in _NUMBERS:
        number = float(value)
        return int(number) if field == "followers" else number
    return value


def _mapped(fields: Mapping[str, Any], table: Mapping[str, str], *, keep_none: bool) -> dict[str, str]:
    return {table[f]: to_hubspot(v) for f, v in fields.items() if f in table and (keep_none or v is not None)}


def _unmapped(props: Mapping[str, str | None], table: Mapping[str, str]) -> dict[str, Any]:
    return {f: _from_hubspot(f, props.get(p)) for f, p in table.items() if p in props}


# ---------------------------------------------------------------- contacts (the person)


def contact_properties(fields: Mapping[str, Any]) -> dict[str, str]:
    """``name`` splits into firstname / lastname; ``email`` only when given (HubSpot keeps it unique)."""
    props: dict[str, str] = {}
    if fields.get("name"):
        first, _, last = str(fields["name"]).partition(" ")
        props |= {"firstname": first, "lastname": last}
    if fields.get("email"):
        props["email"] = str(fields["email"])
    return props


def contact_fields(props: Mapping[str, str | None]) -> dict[str, Any]:
    name = " ".join(p for p in (props.get("firstname"), props.get("lastname")) if p)
    return {"name": name or None, "email": props.get("email") or None}


# ---------------------------------------------------------------- profile and lead: properties of the contact


def profile_properties(key: str, fields: Mapping[str, Any]) -> dict[str, str]:
    return {PROFILE_KEY: key, **_mapped(fields, _PROFILE, keep_none=True)}


def profile_fields(props: Mapping[str, str | None]) -> dict[str, Any]:
    return _unmapped(props, _PROFILE)


def lead_properties(key: str, fields: Mapping[str, Any], settings: HubSpotSettings) -> dict[str, str]:
    props = {LEAD_KEY: key, **_mapped(fields, _LEAD, keep_none=True)}
    if settings.lead_lifecycle_stage:
        props["lifecyclestage"] = settings.lead_lifecycle_stage
    if settings.lead_status:
        props["hs_lead_status"] = settings.lead_status
    return props


def lead_fields(props: Mapping[str, str | None]) -> dict[str, Any]:
    return _unmapped(props, _LEAD)


# ---------------------------------------------------------------- tickets (cases)


def ticket_properties(fields: Mapping[str, Any], settings: HubSpotSettings, *, new: bool) -> dict[str, str]:
    props = _mapped(fields, _TICKET, keep_none=False)
    if "subject" in fields or new:
        # HubSpot requires a subject; a conversation without one is named after its key.
        props["subject"] = str(fields.get("subject") or f"Social conversation {fields.get('conversation_key', '')}")
    if "status" in fields or new:
        closed = fields.get("status") == "closed"
        props["hs_pipeline"] = settings.ticket_pipeline
        props["hs_pipeline_stage"] = settings.ticket_closed_stage if closed else settings.ticket_open_stage
    priority = _PRIORITIES.get(str(fields.get("priority") or "").lower())
    if priority:
        props["hs_ticket_priority"] = priority
    return props


def ticket_fields(props: Mapping[str, str | None], settings: HubSpotSettings) -> dict[str, Any]:
    priority = props.get("hs_ticket_priority")
    return {
        "subject": props.get("subject"),
        "status": "closed" if props.get("hs_pipeline_stage") == settings.ticket_closed_stage else "open",
        "priority": priority.lower() if priority else None,
        **_unmapped(props, _TICKET),
    }


# ---------------------------------------------------------------- notes (messages)


def _epoch_ms(iso: str) -> str:
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return str(int(moment.timestamp() * 1000))


def note_properties(fields: Mapping[str, Any], profile_key: str | None = None) -> dict[str, str]:
    """Only the fields given, so an edit or a redaction leaves the rest as it was."""
    props = _mapped(fields, _NOTE, keep_none=True)
    if "text" in fields:
        props["hs_note_body"] = note_body(str(fields["text"] or ""))
    if fields.get("created_at"):
        props["hs_timestamp"] = _epoch_ms(str(fields["created_at"]))
    if profile_key:
        props["scrm_profile_key"] = profile_key
    return props


def note_fields(props: Mapping[str, str | None]) -> dict[str, Any]:
    stamp = props.get("hs_timestamp")
    created = datetime.fromtimestamp(int(stamp) / 1000, UTC).isoformat() if stamp and stamp.isdigit() else stamp
    return {"text": html.unescape(props.get("hs_note_body") or ""), "created_at": created, **_unmapped(props, _NOTE)}


def plain_text(body: str) -> str:
    """A note body (HTML: scrm's escaped text, or what an agent wrote) as plain text."""
    return html.unescape(_TAG.sub("", _BREAK.sub("\n", body))).strip()
