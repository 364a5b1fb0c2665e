"""What ``scrm hubspot setup`` creates, and what ``check()`` reports: scrm's custom properties.

The properties API lists an object's properties (``GET /crm/v3/properties/{objectType}``)
and creates them in batches (``POST /crm/v3/properties/{objectType}/batch/create``) in a
property group (``GET`` / ``POST /crm/v3/properties/{objectType}/groups``)
(https://developers.hubspot.com/docs/api/crm/properties). A property's
``hasUniqueValue`` cannot be changed once it exists, so a key property made without it
must be deleted in HubSpot and created again: that is reported, never done silently.
A missing :data:`~.schema.OPTIONAL` property (the intent correction) is a warning in
``check()``, not a reason to stop ``scrm run``: it turns one feature off, no write fails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scrm_core import CheckProblem, FatalError, retrying

from .api import HubSpotApi, Reply, error_category
from .schema import GROUP, OBJECT_TYPES, OPTIONAL, SCHEMA_WRITE_SCOPES, custom_properties, unique_properties

__all__ = ["SetupPlan", "apply_setup", "call_patiently", "list_properties", "plan_setup"]

log = logging.getLogger("scrm.hubspot")
#: Tries per set-up request before giving up (a 429 waits the window HubSpot names, 10 s).
SETUP_ATTEMPTS = 8

FIX = "run `scrm hubspot setup -c <your scrm.toml>` (add --dry-run to see what it would do)"


@dataclass
class SetupPlan:
    """Properties missing per object type, and key properties that exist without unique values."""

    missing: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    not_unique: list[tuple[str, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not any(self.missing.values()) and not self.not_unique

    def lines(self) -> list[str]:
        """What is missing, one line each, with the scope creating it needs."""
        out = []
        for obj, definitions in self.missing.items():
            for d in definitions:
                unique = " (unique values)" if d["hasUniqueValue"] else ""
                scope = SCHEMA_WRITE_SCOPES[obj]
                out.append(f"{obj}: property {d['name']}{unique} is missing; creating it needs scope {scope}")
        for obj, name in self.not_unique:
            out.append(
                f"{obj}: property {name} exists but does not require unique values; delete it in HubSpot "
                "(Settings > Properties) and run `scrm hubspot setup` again"
            )
        return out

    def problems(self) -> list[CheckProblem]:
        problems = []
        for obj, definitions in self.missing.items():
            optional = OPTIONAL.get(obj, frozenset())
            required = [d["name"] for d in definitions if d["name"] not in optional]
            if required:
                problems.append(
                    CheckProblem(
                        problem=f"HubSpot {obj} lack the scrm properties {', '.join(required)}",
                        fix=f"{FIX}; it needs scope {SCHEMA_WRITE_SCOPES[obj]}",
                    )
                )
            problems += [
                CheckProblem(
                    problem=f"HubSpot {obj} lack the property {d['name']}: agents' intent corrections on {obj} are "
                    "not read",
                    fix=f"{FIX} (or set [learning] collect_corrections = false)",
                    blocking=False,
                )
                for d in definitions
                if d["name"] in optional
            ]
        problems += [
            CheckProblem(
                problem=f"HubSpot {obj} property {name} does not require unique values, so upserts by it fail",
                fix=f"delete {name} on {obj} in HubSpot (Settings > Properties), then {FIX}",
            )
            for obj, name in self.not_unique
        ]
        return problems


async def list_properties(api: HubSpotApi, *, patient: bool = True) -> dict[str, dict[str, dict[str, Any]]]:
    """The account's property definitions per object type (raises FatalError on missing read scopes).

    ``patient``: wait out rate limits and server errors here (the set-up, ``check()``);
    otherwise they are raised, for the sink to retry the write that needed them."""
    listing: dict[str, dict[str, dict[str, Any]]] = {}
    for obj in OBJECT_TYPES:
        what, method = f"list {obj} properties", api.properties.get_all_with_http_info
        reply = await (call_patiently(api, what, method, obj) if patient else api.call(what, method, obj))
        if not reply.ok:
            category, message = error_category(reply.body)
            raise FatalError(f"HubSpot refused to list {obj} properties ({category}: {message})")
        listing[obj] = {p["name"]: p for p in reply.body.get("results") or []}
    return listing


async def plan_setup(
    api: HubSpotApi, key_property: str, listing: dict[str, dict[str, dict[str, Any]]] | None = None
) -> SetupPlan:
    """Compare the account's properties (``listing``, read if not given) with what scrm needs."""
    wanted, unique = custom_properties(key_property), unique_properties(key_property)
    listing = listing if listing is not None else await list_properties(api)
    plan = SetupPlan()
    for obj in OBJECT_TYPES:
        existing = listing.get(obj, {})
        plan.missing[obj] = [d for d in wanted[obj] if d["name"] not in existing]
        plan.not_unique += [
            (obj, n) for n in sorted(unique[obj]) if n in existing and not existing[n].get("hasUniqueValue")
        ]
    return plan


async def apply_setup(api: HubSpotApi, plan: SetupPlan) -> list[str]:
    """Create the property group (where missing) and the missing properties; returns what was created."""
    created = []
    for obj, definitions in plan.missing.items():
        if not definitions:
            continue
        groups = await call_patiently(
            api, f"list {obj} property groups", api.property_groups.get_all_with_http_info, obj
        )
        if not groups.ok:
            category, message = error_category(groups.body)
            raise FatalError(f"HubSpot refused to list the {obj} property groups ({category}: {message})")
        if GROUP not in {g.get("name") for g in groups.body.get("results") or []}:
            group = {"name": GROUP, "label": "scrm", "displayOrder": -1}
            reply = await call_patiently(
                api, f"create the {obj} property group", api.property_groups.create_with_http_info, obj, group
            )
            if not reply.ok and reply.status != 409:  # 409: made meanwhile
                category, message = error_category(reply.body)
                raise FatalError(f"HubSpot refused to create the scrm property group on {obj} ({category}: {message})")
            created.append(f"{obj} property group {GROUP}")
        for start in range(0, len(definitions), 100):
            part = definitions[start : start + 100]
            reply = await call_patiently(
                api, f"create {obj} properties", api.property_batches.create_with_http_info, obj, {"inputs": part}
            )
            if not reply.ok:
                category, message = error_category(reply.body)
                raise FatalError(f"HubSpot refused to create {obj} properties ({category}: {message})")
            created += [f"{obj}.{d['name']}" for d in part]
    return created


def _waiting(exc: BaseException | None, seconds: float) -> None:
    log.warning("HubSpot: %s; trying again in %.1fs", exc, seconds)


async def call_patiently(api: HubSpotApi, what: str, method: Callable[..., Any], *args: Any) -> Reply:
    """One request of the set-up, retried as the sink retries a write: on 429 (after the wait
    HubSpot asks for), 5xx, timeouts and dropped connections, up to SETUP_ATTEMPTS times."""
    async for attempt in retrying(attempts=SETUP_ATTEMPTS, cap=60.0, on_retry=_waiting):
        with attempt:
            return await api.call(what, method, *args)
    raise AssertionError("unreachable: tenacity re-raises the last error")
