"""The org's own description of the objects scrm writes, read once per run.

One ``POST composite`` request carries a ``GET sobjects/{X}/describe`` subrequest per
object, and Salesforce counts the whole composite request as one call against the API
limit (developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-composite-post.html).
From each describe (developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/
resources_sobject_describe.htm) scrm keeps, per field, what fitting a value needs:
``type``, ``length``, ``createable`` / ``updateable`` / ``nillable`` /
``defaultedOnCreate``, ``precision`` / ``scale`` / ``digits``, ``externalId``,
``restrictedPicklist`` and the active ``picklistValues`` with the default one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FieldMeta", "ObjectMeta", "composite_describe", "parse_composite"]


@dataclass(frozen=True)
class FieldMeta:
    name: str
    type: str
    length: int = 0
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    defaulted: bool = False
    external_id: bool = False
    precision: int = 0
    scale: int = 0
    digits: int = 0
    restricted: bool = False
    picklist: tuple[str, ...] = ()  # active values
    default_value: str | None = None

    @classmethod
    def from_describe(cls, raw: Mapping[str, Any]) -> FieldMeta:
        values = [v for v in raw.get("picklistValues") or [] if v.get("active", True)]
        default = next((str(v["value"]) for v in values if v.get("defaultValue")), None)
        return cls(
            name=str(raw["name"]),
            type=str(raw.get("type", "string")),
            length=int(raw.get("length") or 0),
            createable=bool(raw.get("createable", True)),
            updateable=bool(raw.get("updateable", True)),
            nillable=bool(raw.get("nillable", True)),
            defaulted=bool(raw.get("defaultedOnCreate", False)),
            external_id=bool(raw.get("externalId", False)),
            precision=int(raw.get("precision") or 0),
            scale=int(raw.get("scale") or 0),
            digits=int(raw.get("digits") or 0),
            restricted=bool(raw.get("restrictedPicklist", False)),
            picklist=tuple(str(v["value"]) for v in values),
            default_value=default,
        )

    @property
    def create_only(self) -> bool:
        return self.createable and not self.updateable


@dataclass(frozen=True)
class ObjectMeta:
    name: str
    fields: dict[str, FieldMeta] = field(default_factory=dict)
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_describe(cls, raw: Mapping[str, Any]) -> ObjectMeta:
        fields = {str(f["name"]): FieldMeta.from_describe(f) for f in raw.get("fields") or []}
        return cls(
            name=str(raw.get("name", "")),
            fields=fields,
            createable=raw.get("createable") is not False,
            updateable=raw.get("updateable") is not False,
            deletable=raw.get("deletable") is not False,
            raw=raw,
        )

    @property
    def create_only(self) -> frozenset[str]:
        return frozenset(name for name, meta in self.fields.items() if meta.create_only)


def composite_describe(api_version: str, sobjects: list[str]) -> dict[str, Any]:
    """The body of one ``POST composite`` describing ``sobjects`` (at most 25)."""
    return {
        "allOrNone": False,
        "compositeRequest": [
            {"method": "GET", "url": f"/services/data/v{api_version}/sobjects/{name}/describe", "referenceId": name}
            for name in sobjects
        ],
    }


def parse_composite(answer: Any) -> dict[str, tuple[int, Any]]:
    """referenceId -> (HTTP status, body) of a composite answer."""
    out: dict[str, tuple[int, Any]] = {}
    for item in (answer or {}).get("compositeResponse") or []:
        out[str(item.get("referenceId"))] = (int(item.get("httpStatusCode", 0)), item.get("body"))
    return out
