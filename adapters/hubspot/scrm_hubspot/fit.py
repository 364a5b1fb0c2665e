"""Property values fitted to the account's own property definitions before they are sent.

The definitions come from the properties API (``GET /crm/v3/properties/{objectType}``,
developers.hubspot.com/docs/api/crm/properties), read once per run. So that HubSpot
refuses a record only for a reason an operator must act on:

* a text value is cut to 65,536 characters at a character boundary, with a visible
  marker recording the full length (the limit HubSpot documents for a note's body,
  "limited to 65,536 characters": developers.hubspot.com/docs/api/crm/notes; the
  properties API gives no length, so it is applied to every text property); a note's
  body is cut *before* it is HTML-escaped, so an escape never pushes it over;
* an enumeration value is matched to the property's options case-insensitively, and
  left out when it is none of them (pipeline stages, whose options live in the pipeline,
  are passed through); a boolean becomes ``true`` / ``false``; a number that is not one
  is left out (HubSpot refuses surrounding spaces in numbers and booleans:
  developers.hubspot.com/changelog/breaking-change-enhanced-validations-for-non-string-properties-in-hubspots-crmobject-apis);
* a contact email that does not look like an address is left out, as is a property the
  account does not have (``scrm check`` names it) or one whose value is read-only.

Each change is noted, for ``scrm run --dry-run`` and the log.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scrm_core.fitting import cut_text, utf16_len

__all__ = ["TEXT_LIMIT", "Fitted", "fit_properties", "note_body"]

TEXT_LIMIT = 65_536
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
_EMAIL = re.compile(r"^[^@\s\"(),:;<>\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")


@dataclass
class Fitted:
    properties: dict[str, str]
    notes: list[str] = field(default_factory=list)


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def note_body(text: str) -> str:
    """A message's text as a note body: HTML-escaped (a post's ``<script>`` shows as text), within the limit."""
    return cut_text(text, TEXT_LIMIT, render=_escape)


def fit_properties(obj: str, definitions: Mapping[str, Mapping[str, Any]], props: Mapping[str, str]) -> Fitted:
    out = Fitted({})
    for name, value in props.items():
        definition = definitions.get(name)
        if definition is None:
            out.notes.append(f"{obj}.{name} left out: the account has no such property (run `scrm check`)")
            continue
        if (definition.get("modificationMetadata") or {}).get("readOnlyValue"):
            out.notes.append(f"{obj}.{name} left out: its value is read-only")
            continue
        if value == "":
            out.properties[name] = value  # clears the property
            continue
        fitted = _fit(obj, name, definition, value, out.notes)
        if fitted is not None:
            out.properties[name] = fitted
    return out


def _fit(obj: str, name: str, definition: Mapping[str, Any], value: str, notes: list[str]) -> str | None:
    kind = definition.get("type")
    where = f"{obj}.{name}"
    if kind == "enumeration":
        options = [str(o.get("value")) for o in definition.get("options") or []]
        if not options or definition.get("externalOptions"):
            return value
        folded = {o.casefold(): o for o in options}
        chosen = value.split(";") if definition.get("fieldType") == "checkbox" else [value]
        kept = [folded[v.casefold()] for v in chosen if v.casefold() in folded]
        if not kept:
            notes.append(f"{where} left out: {value[:40]!r} is none of its options")
            return None
        return ";".join(kept)
    if kind == "bool":
        text = value.strip().lower()
        if text not in ("true", "false"):
            notes.append(f"{where} left out: {value[:40]!r} is not true or false")
            return None
        return text
    if kind == "number":
        text = value.strip()
        if not _NUMBER.match(text):
            notes.append(f"{where} left out: {value[:40]!r} is not a number")
            return None
        return text
    if obj == "contacts" and name == "email":
        text = value.strip()
        if not _EMAIL.match(text):
            notes.append(f"{where} left out: {text[:40]!r} is not an address HubSpot takes")
            return None
        return text
    if kind == "string" and utf16_len(value) > TEXT_LIMIT:
        notes.append(f"{where} cut to {TEXT_LIMIT:,} characters (it had {len(value):,})")
        return cut_text(value, TEXT_LIMIT)
    return value
