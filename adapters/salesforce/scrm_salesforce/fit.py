"""A record's field values fitted to the org's describe metadata before it is sent.

So that Salesforce refuses a record only for a reason an operator must act on (a
validation rule, a duplicate rule, a trigger), every value is made to fit first:

* text is cut to the field's ``length`` at a character boundary, with a visible marker
  that records the full length (:func:`scrm_core.fitting.cut_text`);
* an email address that Salesforce would not take, or a URL too long for its field, is
  left out (a cut one would be wrong data), as is a number outside the field's
  precision;
* a value not among a restricted picklist's active values is matched case-insensitively,
  else left out: on a new record Salesforce then puts the picklist's default, on an
  existing one the current value stays;
* a field that is not ``createable`` is left out of a new record, one that is not
  ``updateable`` out of an update (``IsOutbound`` and ``Provider`` of a SocialPost are
  create-only), a field that is not nillable is never set to null, and a field the
  object does not have is left out (``scrm check`` names it).

Each change is noted, for ``scrm run --dry-run`` and the log.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scrm_core.fitting import cut_text, utf16_len

from .metadata import FieldMeta, ObjectMeta

__all__ = ["Fitted", "fit_fields"]

_TEXT = frozenset({"string", "textarea", "phone", "combobox", "encryptedstring"})
_NUMBER = frozenset({"double", "currency", "percent"})
_EMAIL = re.compile(r"^[^@\s\"(),:;<>\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")


@dataclass
class Fitted:
    fields: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def fit_fields(meta: ObjectMeta, values: Mapping[str, Any], *, creating: bool) -> Fitted:
    """``values`` (Salesforce field name -> value) as the org will take them."""
    out = Fitted({})
    for name, value in values.items():
        spec = meta.fields.get(name)
        if spec is None:
            out.notes.append(f"{meta.name}.{name} left out: the object has no such field (run `scrm check`)")
            continue
        if not (spec.createable if creating else spec.updateable):
            if value is not None and creating:
                out.notes.append(f"{meta.name}.{name} left out: the integration user cannot create it")
            continue
        if value is None:
            if spec.nillable or spec.type == "boolean":
                out.fields[name] = False if spec.type == "boolean" else None
            continue
        fitted = _fit_value(meta.name, spec, value, creating, out.notes)
        if fitted is not _LEAVE_OUT:
            out.fields[name] = fitted
    return out


_LEAVE_OUT = object()


def _fit_value(sobject: str, spec: FieldMeta, value: Any, creating: bool, notes: list[str]) -> Any:
    where = f"{sobject}.{spec.name}"
    kind = spec.type
    if kind in _TEXT:
        text = str(value)
        if spec.length and utf16_len(text) > spec.length:
            notes.append(f"{where} cut to {spec.length} characters (it had {len(text):,})")
            return cut_text(text, spec.length)
        return text
    if kind == "email":
        text = str(value).strip()
        if (spec.length and utf16_len(text) > spec.length) or not _EMAIL.match(text):
            notes.append(f"{where} left out: {text[:40]!r} is not an address Salesforce takes")
            return _LEAVE_OUT
        return text
    if kind == "url":
        text = str(value)
        if spec.length and utf16_len(text) > spec.length:
            notes.append(f"{where} left out: the URL is longer than the field's {spec.length} characters")
            return _LEAVE_OUT
        return text
    if kind == "picklist":
        return _picklist(where, spec, str(value), creating, notes)
    if kind == "boolean":
        return bool(value)
    if kind == "int":
        try:
            number = int(value)
        except (TypeError, ValueError):
            notes.append(f"{where} left out: {value!r} is not a whole number")
            return _LEAVE_OUT
        if spec.digits and abs(number) >= 10**spec.digits:
            notes.append(f"{where} left out: {number} has more than {spec.digits} digits")
            return _LEAVE_OUT
        return number
    if kind in _NUMBER:
        try:
            real = float(value)
        except (TypeError, ValueError):
            real = math.nan
        if not math.isfinite(real):
            notes.append(f"{where} left out: {value!r} is not a number")
            return _LEAVE_OUT
        if spec.precision and abs(real) >= 10 ** (spec.precision - spec.scale):
            notes.append(f"{where} left out: {real} is outside Number({spec.precision - spec.scale}, {spec.scale})")
            return _LEAVE_OUT
        return round(real, spec.scale) if spec.precision else real
    return value


def _picklist(where: str, spec: FieldMeta, value: str, creating: bool, notes: list[str]) -> Any:
    if not spec.picklist or value in spec.picklist:
        return value
    folded = {v.casefold(): v for v in spec.picklist}
    if value.casefold() in folded:
        return folded[value.casefold()]
    if not spec.restricted:
        return value  # an unrestricted picklist takes any value
    if creating and spec.defaulted:
        notes.append(f"{where}: {value!r} is not a value of the picklist; Salesforce's default applies")
    elif not creating or spec.nillable:
        notes.append(f"{where}: {value!r} is not a value of the picklist; left out")
    else:  # a required restricted picklist without a default: the one value that is always there
        fallback = "Other" if "Other" in spec.picklist else spec.picklist[0]
        notes.append(f"{where}: {value!r} is not a value of the picklist; {fallback!r} instead")
        return fallback
    return _LEAVE_OUT
