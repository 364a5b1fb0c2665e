"""A stateful fake of HubSpot's CRM API, for adapter tests and benchmarks.

It speaks the wire format the real ``hubspot-api-client`` expects and enforces the
documented limits and error shapes, so an adapter that works against it makes the same
calls it would make against HubSpot:

* objects (contacts, tickets, notes) with string properties, and v4 associations
  between them, HubSpot-defined type ids only (note→contact 202, note→ticket 228,
  ticket→contact 16 and their inverses);
* property definitions: built-in ones plus custom ones created through the properties
  API; ``hasUniqueValue`` is refused on notes (HubSpot offers unique properties on
  contacts, companies, deals, tickets and custom objects only), and an upsert by an
  ``idProperty`` that is not a unique property is a 400, as in HubSpot;
* batch endpoints capped at 100 inputs (over: 400 ``VALIDATION_ERROR``), answering 207
  with ``numErrors`` / ``errors[]`` when some records fail (unknown property, missing
  required property, unique-value conflict, unknown id, injected transient failure);
* bearer-token auth with expiring tokens and the OAuth refresh endpoint
  (``POST /oauth/v1/token``), 401 ``EXPIRED_AUTHENTICATION`` once a token expired, 403
  ``MISSING_SCOPES`` naming the scope when the token lacks it;
* a rolling request window and a daily quota, reported on every response in the
  ``X-HubSpot-RateLimit-*`` headers, refused with 429 and ``policyName``
  (``TEN_SECONDLY_ROLLING`` / ``DAILY``);
* the CRM search API (``POST /crm/v3/objects/{type}/search``) as HubSpot limits it: at most
  200 results a page, 10,000 results in all per query (paging beyond is a 400), five filter
  groups of at most ten filters and 25 filters in all, one sort, and five search requests
  a second per account (more: 429 with ``policyName`` ``SECONDLY``); datetime filters take
  epoch milliseconds or ISO 8601. Search reads an index that lags the writes: set
  ``index_lag`` (seconds) or hold writes back (:meth:`FakeHubSpot.hold_index`) and a change
  appears in search results only later, while reads by id see it at once;
* ``hs_lastmodifieddate`` (``lastmodifieddate`` on contacts) moves on every write;
* per-request faults drawn from a :class:`~scrm_core.testing.fakes.FaultInjector`.

Use it with :class:`~scrm_core.testing.fakes.FakeServer`::

    fake = FakeHubSpot(with_properties=True)
    with FakeServer(fake.app) as server:
        client = HubSpot(access_token=FakeHubSpot.TOKEN, host=server.url)
        ...
    assert max(r.records for r in fake.requests) <= 100

HubSpot documentation this follows:
https://developers.hubspot.com/docs/api/crm/understanding-the-crm (batch endpoints),
https://developers.hubspot.com/docs/api/crm/properties (``hasUniqueValue``),
https://developers.hubspot.com/docs/api/crm/associations (v4, type ids),
https://developers.hubspot.com/docs/api/usage-details (rate limits, headers, 429 body),
https://developers.hubspot.com/docs/api/oauth/tokens (refresh),
https://developers.hubspot.com/changelog/unique-properties-for-contacts (unique properties),
https://developers.hubspot.com/docs/api/crm/search ("Limitations": page size, 10,000 results,
rate; search results may take a few moments to reflect a change),
https://developers.hubspot.com/changelog/breaking-change-expanded-filtering-capabilities-and-error-messaging-in-hubspots-search-api
(five filter groups, ten filters a group, 25 in all),
https://developers.hubspot.com/changelog/crm-search-api-rate-limit-increase (the search limit
is per second, apart from the general one).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import threading
import time
import urllib.parse
import uuid
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scrm_core.testing.fakes.faults import Fault, FaultInjector
from scrm_core.testing.fakes.holds import Holds

from .properties import PIPELINES, builtin, builtin_properties, property_errors, validation_message

__all__ = ["BATCH_LIMIT", "FakeHubSpot", "HubSpotRequest"]

BATCH_LIMIT = 100
#: Property and group names: lowercase letters, digits and underscores, starting with a letter.
_NAME = re.compile(r"[a-z][a-z0-9_]{0,99}")
#: fieldType values each property type takes (developers.hubspot.com/docs/api/crm/properties).
_FIELD_TYPES: dict[str, tuple[str, ...]] = {
    "string": ("text", "textarea", "html", "phonenumber", "file"),
    "number": ("number", "calculation_equation"),
    "bool": ("booleancheckbox",),
    "enumeration": ("select", "radio", "checkbox", "booleancheckbox"),
    "datetime": ("date",),
    "date": ("date",),
}
SEARCH_LIMIT = 200
SEARCH_TOTAL = 10_000
SEARCH_PER_SECOND = 5
FILTER_GROUPS, FILTERS_PER_GROUP, FILTERS_TOTAL = 5, 10, 25
_OPERATORS = frozenset(
    {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY",
     "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}
)  # fmt: skip
#: The creation and modification stamps HubSpot keeps per object type.
CREATED = {"contacts": "createdate", "tickets": "createdate", "notes": "hs_createdate"}
MODIFIED = {"contacts": "lastmodifieddate", "tickets": "hs_lastmodifieddate", "notes": "hs_lastmodifieddate"}
TRANSIENT_RECORD_CATEGORY = "SERVICE_UNAVAILABLE"

_OBJECT_NAMES = {
    **{name: "contacts" for name in ("contacts", "contact", "0-1")},
    **{name: "tickets" for name in ("tickets", "ticket", "0-5")},
    **{name: "notes" for name in ("notes", "note", "0-46")},
}
#: HubSpot-defined unlabeled association types: (from, to) -> (type id, inverse type id).
_ASSOCIATION_TYPES: dict[tuple[str, str], tuple[int, int]] = {
    ("notes", "contacts"): (202, 201),
    ("notes", "tickets"): (228, 227),
    ("tickets", "contacts"): (16, 15),
}
_ASSOCIATION_TYPES.update({(b, a): (inv, t) for (a, b), (t, inv) in list(_ASSOCIATION_TYPES.items())})

#: Object types on which HubSpot lets a property require unique values.
_UNIQUE_CAPABLE = frozenset({"contacts", "tickets"})
_REQUIRED_ON_CREATE = {"tickets": ("subject", "hs_pipeline_stage"), "notes": ("hs_timestamp",), "contacts": ()}
_READ_SCOPE = {"contacts": "crm.objects.contacts.read", "tickets": "tickets", "notes": "crm.objects.contacts.read"}
_WRITE_SCOPE = {"contacts": "crm.objects.contacts.write", "tickets": "tickets", "notes": "crm.objects.contacts.write"}
_SCHEMA_READ_SCOPE = {
    "contacts": "crm.schemas.contacts.read",
    "tickets": "tickets",
    "notes": "crm.schemas.contacts.read",
}
_SCHEMA_WRITE_SCOPE = {
    "contacts": "crm.schemas.contacts.write",
    "tickets": "tickets",
    "notes": "crm.schemas.contacts.write",
}


@dataclass(frozen=True)
class HubSpotRequest:
    """One request the fake answered: what a test or a benchmark counts.

    ``applied``: its handler ran (a write took effect, whatever answer the client then
    got); ``held``: a test held it (:attr:`FakeHubSpot.holds`)."""

    method: str
    path: str
    status: int
    records: int  # inputs in a batch body; 0 for other requests
    fault: str | None = None
    applied: bool = False
    held: bool = False


@dataclass
class _Record:
    id: str
    properties: dict[str, str]
    created: str
    updated: str
    indexed: dict[str, str] | None = None  # what search sees
    pending: list[tuple[float, dict[str, str]]] = field(default_factory=list)  # (visible from, snapshot)


@dataclass
class _Outcome:
    status: int
    body: Any
    records: int = 0


@dataclass
class _Window:
    limit: int
    seconds: float
    stamps: deque[float] = field(default_factory=deque)

    def remaining(self, now: float) -> int:
        while self.stamps and self.stamps[0] <= now - self.seconds:
            self.stamps.popleft()
        return self.limit - len(self.stamps)


class _Refused(Exception):
    """A whole request refused with HubSpot's error body."""

    def __init__(self, status: int, category: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.outcome = _Outcome(status, _error_body(category, message, **extra))


def _error_body(category: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **extra}


def _record_error(category: str, message: str, context: dict[str, list[str]]) -> dict[str, Any]:
    return {"status": "error", "category": category, "message": message, "context": context}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeHubSpot:
    """HubSpot's CRM API in memory. ``app`` is the ASGI app to serve with FakeServer.

    :param tokens: access tokens that are valid from the start (private-app style).
    :param client_id, client_secret, refresh_token: the OAuth app the token endpoint accepts.
    :param token_ttl: lifetime in seconds of tokens the refresh endpoint issues.
    :param scopes: scopes the tokens carry; None grants every scope.
    :param rate_limit: (requests, seconds) of the rolling window; None: unlimited.
    :param daily_limit: requests per day; None: unlimited.
    :param with_properties: pre-create the custom properties scrm-hubspot needs (True,
        read from :mod:`scrm_hubspot.schema`), or the given ``{object type: [definition]}``.
    :param faults: fault probabilities; change them while the fake runs.
    :param index_lag: seconds before a write shows in search results (reads by id see it at once).
    """

    TOKEN = "fake-hubspot-token"  # noqa: S105 - test values, not credentials
    CLIENT_ID = "fake-client-id"
    CLIENT_SECRET = "fake-client-secret"  # noqa: S105
    REFRESH_TOKEN = "fake-refresh-token"  # noqa: S105

    def __init__(
        self,
        *,
        tokens: Iterable[str] = (TOKEN,),
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        refresh_token: str = REFRESH_TOKEN,
        token_ttl: float = 1800.0,
        scopes: Collection[str] | None = None,
        rate_limit: tuple[int, float] | None = (100, 10.0),
        daily_limit: int | None = 250_000,
        with_properties: bool | Mapping[str, Iterable[Mapping[str, Any]]] = False,
        faults: FaultInjector | None = None,
        clock: Callable[[], float] = time.monotonic,
        index_lag: float = 0.0,
    ) -> None:
        self.client_id, self.client_secret, self.refresh_token = client_id, client_secret, refresh_token
        self.token_ttl = token_ttl
        self.scopes = None if scopes is None else set(scopes)
        self.rate_limit = rate_limit
        self.daily_limit = daily_limit
        self.faults = faults or FaultInjector()
        self.clock = clock
        self.index_lag = index_lag
        self._index_held = False
        self.requests: list[HubSpotRequest] = []
        self.holds = Holds()
        self._lock = threading.Lock()
        self._tokens: dict[str, float | None] = dict.fromkeys(tokens)
        self._custom = self._custom_definitions(with_properties)
        self.reset()
        self.app = self._build_app()

    # ------------------------------------------------------------ state for tests

    def reset(self) -> None:
        """Forget every record, association, request and custom property not given at construction."""
        with self._lock:
            self._ids = itertools.count(1001)
            self.objects: dict[str, dict[str, _Record]] = {obj: {} for obj in _REQUIRED_ON_CREATE}
            self._links: dict[tuple[str, str], dict[tuple[str, str], set[int]]] = {}
            self.properties = builtin_properties()
            self.groups: dict[str, set[str]] = {obj: {"scrm"} for obj in self._custom}
            self.group_labels: dict[tuple[str, str], str] = {}
            for obj, definitions in self._custom.items():
                for definition in definitions:
                    self.properties[obj][definition["name"]] = {**builtin(definition["name"]), **definition}
            self.requests.clear()
            self._window = _Window(*self.rate_limit) if self.rate_limit else None
            self._search_window = _Window(SEARCH_PER_SECOND, 1.0)
            self.daily_used = 0

    @staticmethod
    def _custom_definitions(
        given: bool | Mapping[str, Iterable[Mapping[str, Any]]],
    ) -> dict[str, list[dict[str, Any]]]:
        if given is True:
            from ..schema import custom_properties  # the adapter's own list

            given = custom_properties()
        if not given:
            return {}
        return {_OBJECT_NAMES[obj]: [dict(d, hubspotDefined=False) for d in defs] for obj, defs in given.items()}

    def expire_tokens(self) -> None:
        """Every token issued so far expires now (the next call gets 401 EXPIRED_AUTHENTICATION)."""
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, self.clock() - 1)

    def find(self, object_type: str, prop: str, value: str) -> dict[str, str] | None:
        """The properties of the record of ``object_type`` whose ``prop`` is ``value``, or None."""
        with self._lock:
            for record in self.objects[_OBJECT_NAMES[object_type]].values():
                if record.properties.get(prop) == value:
                    return dict(record.properties)
        return None

    def get(self, object_type: str, record_id: str) -> dict[str, str] | None:
        with self._lock:
            record = self.objects[_OBJECT_NAMES[object_type]].get(record_id)
            return dict(record.properties) if record else None

    def count(self, object_type: str) -> int:
        with self._lock:
            return len(self.objects[_OBJECT_NAMES[object_type]])

    def associations(self, object_type: str, record_id: str, to_type: str) -> dict[str, set[int]]:
        """Ids of the ``to_type`` records associated with this record, with the type ids from it."""
        with self._lock:
            links = self._links.get((_OBJECT_NAMES[object_type], record_id), {})
            return {to_id: set(types) for (obj, to_id), types in links.items() if obj == _OBJECT_NAMES[to_type]}

    def create(
        self, object_type: str, properties: Mapping[str, str], *, associate: Iterable[tuple[str, str, int]] = ()
    ) -> str:
        """Create a record as a HubSpot user would (no auth, no limits); returns its id."""
        obj = _OBJECT_NAMES[object_type]
        with self._lock:
            record = self._insert(obj, dict(properties))
            for to_type, to_id, type_id in associate:
                self._link(obj, record.id, _OBJECT_NAMES[to_type], to_id, type_id)
        return record.id

    def update(self, object_type: str, record_id: str, properties: Mapping[str, str]) -> None:
        """Change a record as a HubSpot user would on its record page: each value is checked as
        the page checks it (an enumeration takes only its options), and its modification
        stamp moves on. Raises ValueError with HubSpot's message for a value it refuses."""
        obj = _OBJECT_NAMES[object_type]
        with self._lock:
            record = self.objects[obj][record_id]
            written, problem = self._write(obj, record, dict(properties))
            if written is None:
                raise ValueError(problem[1])

    def add_option(self, object_type: str, prop: str, value: str, label: str | None = None) -> None:
        """Add an option to an enumeration property, as an admin does in HubSpot's settings
        (this fake's definitions only; other fakes keep theirs)."""
        with self._lock:
            definition = self.properties[_OBJECT_NAMES[object_type]][prop]
            options = [dict(o) for o in definition.get("options", [])]
            options.append({"label": label or value, "value": value, "displayOrder": len(options)})
            definition["options"] = options

    @contextlib.contextmanager
    def hold_index(self) -> Iterator[None]:
        """Writes made inside the ``with`` block stay out of search results until
        :meth:`release_index` (reads by id see them at once), as when HubSpot's search index
        lags: a change made earlier can then show up after one made later."""
        with self._lock:
            self._index_held = True
        try:
            yield
        finally:
            with self._lock:
                self._index_held = False

    def release_index(self) -> None:
        """Everything written while the index was held shows in search from now on."""
        with self._lock:
            for records in self.objects.values():
                for record in records.values():
                    record.pending = [(-float("inf"), snapshot) for _, snapshot in record.pending]

    def records(self, object_type: str) -> list[dict[str, str]]:
        """The properties of every record of ``object_type`` (copies), oldest first."""
        with self._lock:
            return [dict(r.properties) for r in self.objects[_OBJECT_NAMES[object_type]].values()]

    def archive(self, object_type: str, record_id: str) -> None:
        """Delete a record as a HubSpot user would (its associations go with it)."""
        with self._lock:
            self._archive(_OBJECT_NAMES[object_type], record_id)

    def statuses(self, status: int) -> int:
        """How many requests were answered with ``status`` (e.g. 429)."""
        return sum(1 for r in self.requests if r.status == status)

    # ------------------------------------------------------------ records

    def _insert(self, obj: str, properties: dict[str, str]) -> _Record:
        record_id = str(next(self._ids))
        stamp = _now()
        props = {**properties, "hs_object_id": record_id, CREATED[obj]: stamp, MODIFIED[obj]: stamp}
        record = _Record(record_id, props, stamp, stamp)
        self.objects[obj][record_id] = record
        self._reindex(record)
        return record

    def _reindex(self, record: _Record) -> None:
        """Queue the record's new state for the search index (visible after ``index_lag``)."""
        ready = float("inf") if self._index_held else self.clock() + self.index_lag
        record.pending.append((ready, dict(record.properties)))

    def _indexed(self, record: _Record) -> dict[str, str] | None:
        """The record as search sees it now (None: not indexed yet)."""
        now = self.clock()
        while record.pending and record.pending[0][0] <= now:
            record.indexed = record.pending.pop(0)[1]
        return record.indexed

    def _link(self, obj: str, obj_id: str, to: str, to_id: str, type_id: int) -> None:
        type_ids = _ASSOCIATION_TYPES.get((obj, to))
        if type_ids is None or type_ids[0] != type_id:
            raise ValueError(f"association type {type_id} is not a HubSpot-defined type from {obj} to {to}")
        if to_id not in self.objects[to]:
            raise LookupError(f"{to} {to_id} does not exist")
        self._links.setdefault((obj, obj_id), {}).setdefault((to, to_id), set()).add(type_ids[0])
        self._links.setdefault((to, to_id), {}).setdefault((obj, obj_id), set()).add(type_ids[1])

    def _archive(self, obj: str, record_id: str) -> None:
        if self.objects[obj].pop(record_id, None) is None:
            return
        for other in self._links.pop((obj, record_id), {}):
            self._links.get(other, {}).pop((obj, record_id), None)

    def _unique_props(self, obj: str) -> set[str]:
        unique = {n for n, d in self.properties[obj].items() if d.get("hasUniqueValue")}
        return unique | {"email"} if obj == "contacts" else unique

    def _check_values(self, obj: str, props: Mapping[str, Any], record_id: str | None) -> tuple[str, str] | None:
        """(category, message) of the first problem with these values, or None."""
        definitions = self.properties[obj]
        for name, value in props.items():
            definition = definitions.get(name)
            if definition is None:
                return "VALIDATION_ERROR", f'Property "{name}" does not exist'
            if not isinstance(value, str):
                return "VALIDATION_ERROR", f'Property "{name}" must be a string, got {type(value).__name__}'
        record = self.objects[obj].get(record_id) if record_id else None
        invalid = property_errors(obj, definitions, props, record.properties if record else None)
        if invalid:
            return "VALIDATION_ERROR", validation_message(invalid)
        for name in self._unique_props(obj) & props.keys():
            value = props[name]
            holder = next(
                (r.id for r in self.objects[obj].values() if r.properties.get(name) == value and r.id != record_id),
                None,
            )
            if value and holder is not None:
                return "CONFLICT", f"A {obj[:-1]} with {name}={value!r} already exists. Existing ID: {holder}"
        return None

    def _write(self, obj: str, record: _Record | None, props: dict[str, Any]) -> tuple[_Record | None, Any]:
        """Create (record None) or update; returns (record, None) or (None, (category, message))."""
        problem = self._check_values(obj, props, record.id if record else None)
        if problem is None and record is None:
            missing = [p for p in _REQUIRED_ON_CREATE[obj] if not props.get(p)]
            if missing:
                problem = ("VALIDATION_ERROR", f"Required property {missing[0]!r} is missing")
        if problem is not None:
            return None, problem
        if record is None:
            return self._insert(obj, props), None
        record.properties.update(props)
        record.updated = record.properties[MODIFIED[obj]] = _now()
        self._reindex(record)
        return record, None

    def _by_property(self, obj: str, prop: str, value: str) -> _Record | None:
        return next((r for r in self.objects[obj].values() if r.properties.get(prop) == value), None)

    @staticmethod
    def _public(
        record: _Record,
        props: Iterable[str] | None = None,
        *,
        new: bool | None = None,
        values: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """A record as the API shows it (``values``: as of another moment, e.g. the search index)."""
        wanted = set(props) | {"hs_object_id", *CREATED.values(), *MODIFIED.values()} if props is not None else None
        current = record.properties if values is None else values
        shown = {k: v for k, v in current.items() if wanted is None or k in wanted}
        out: dict[str, Any] = {
            "id": record.id,
            "properties": shown,
            "createdAt": record.created,
            "updatedAt": record.updated,
            "archived": False,
        }
        if new is not None:
            out["new"] = new
        return out

    # ------------------------------------------------------------ batch endpoints

    def _batch(self, results: list[dict[str, Any]], errors: list[dict[str, Any]], n: int, ok: int = 200) -> _Outcome:
        stamp = _now()
        # HubSpot does not promise input order; reversed proves a client maps results by key.
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results[::-1],
            "startedAt": stamp,
            "completedAt": stamp,
        }
        if errors:
            body |= {"numErrors": len(errors), "errors": errors}
        return _Outcome(207 if errors else ok, body, n)

    def _inputs(self, body: Any) -> list[dict[str, Any]]:
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list):
            raise _Refused(400, "VALIDATION_ERROR", "Invalid input JSON: 'inputs' must be a list")
        if len(inputs) > BATCH_LIMIT:
            raise _Refused(
                400,
                "VALIDATION_ERROR",
                f"Batch input contains {len(inputs)} inputs, the maximum is {BATCH_LIMIT}",
                context={"inputs": [str(len(inputs))]},
            )
        return inputs

    def _transient(self, trace: str | None) -> dict[str, Any] | None:
        if not self.faults.reject_record():
            return None
        context = {"objectWriteTraceId": [trace]} if trace else {}
        return _record_error(TRANSIENT_RECORD_CATEGORY, "Temporarily unable to process this record", context)

    def _upsert(self, obj: str, body: Any) -> _Outcome:
        inputs = self._inputs(body)
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in inputs:
            id_prop, key, trace = item.get("idProperty"), str(item.get("id", "")), item.get("objectWriteTraceId")
            if id_prop not in self.properties[obj]:
                raise _Refused(400, "VALIDATION_ERROR", f"Property {id_prop!r} does not exist on {obj}")
            if id_prop not in self._unique_props(obj) or id_prop == "email":
                raise _Refused(
                    400, "VALIDATION_ERROR", f"Unable to perform update/upsert by non-unique property {id_prop}"
                )
            if (failure := self._transient(trace)) is not None:
                errors.append(failure)
                continue
            existing = self._by_property(obj, id_prop, key)
            record, problem = self._write(obj, existing, {**dict(item.get("properties") or {}), id_prop: key})
            if record is None:
                context = {"objectWriteTraceId": [trace]} if trace else {"ids": [key]}
                errors.append(_record_error(problem[0], problem[1], context))
            else:
                results.append(self._public(record, new=existing is None) | _trace(trace))
        return self._batch(results, errors, len(inputs))

    def _create(self, obj: str, body: Any) -> _Outcome:
        inputs = self._inputs(body)
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in inputs:
            trace = item.get("objectWriteTraceId")
            context = {"objectWriteTraceId": [trace]} if trace else {}
            if (failure := self._transient(trace)) is not None:
                errors.append(failure)
                continue
            links = [
                (_OBJECT_NAMES.get(str(a.get("toObjectType", ""))), str(a["to"]["id"]), t["associationTypeId"])
                for a in item.get("associations") or []
                for t in a.get("types") or []
            ]
            bad = next(((to, i, t) for to, i, t in links if not self._link_target_ok(obj, to, i, t)), None)
            if bad is not None:
                msg = f"Association to {bad[1]} with type {bad[2]} is not valid for {obj}"
                errors.append(_record_error("VALIDATION_ERROR", msg, context))
                continue
            record, problem = self._write(obj, None, dict(item.get("properties") or {}))
            if record is None:
                errors.append(_record_error(problem[0], problem[1], context))
                continue
            for to, to_id, type_id in links:
                self._link(obj, record.id, to or self._association_target(obj, type_id), to_id, type_id)
            results.append(self._public(record) | _trace(trace))
        return self._batch(results, errors, len(inputs), ok=201)

    def _association_target(self, obj: str, type_id: int) -> str:
        return next((b for (a, b), (t, _) in _ASSOCIATION_TYPES.items() if a == obj and t == type_id), "")

    def _link_target_ok(self, obj: str, to: str | None, to_id: str, type_id: int) -> bool:
        target = to or self._association_target(obj, type_id)
        return (
            bool(target)
            and _ASSOCIATION_TYPES.get((obj, target), (None,))[0] == type_id
            and (to_id in self.objects[target])
        )

    def _update(self, obj: str, body: Any) -> _Outcome:
        inputs = self._inputs(body)
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in inputs:
            record_id, trace = str(item.get("id", "")), item.get("objectWriteTraceId")
            if (failure := self._transient(trace)) is not None:
                errors.append(failure)
                continue
            record = self.objects[obj].get(record_id)
            if record is None:
                errors.append(
                    _record_error("OBJECT_NOT_FOUND", f"{obj[:-1]} {record_id} not found", {"ids": [record_id]})
                )
                continue
            written, problem = self._write(obj, record, dict(item.get("properties") or {}))
            if written is None:
                errors.append(_record_error(problem[0], problem[1], {"ids": [record_id]}))
            else:
                results.append(self._public(written) | _trace(trace))
        return self._batch(results, errors, len(inputs))

    def _read(self, obj: str, body: Any) -> _Outcome:
        inputs = self._inputs(body)
        id_prop = body.get("idProperty")
        if id_prop and id_prop not in self._unique_props(obj):
            raise _Refused(400, "VALIDATION_ERROR", f"Unable to read by non-unique property {id_prop}")
        props = body.get("properties") or []
        results, missing = [], []
        for item in inputs:
            key = str(item.get("id", ""))
            record = self._by_property(obj, id_prop, key) if id_prop else self.objects[obj].get(key)
            if record is None:
                missing.append(key)
            else:
                results.append(self._public(record, props))
        errors = []
        if missing:
            message = f"Could not get some {obj[:-1].upper()} objects, they may be deleted or not exist."
            errors.append(_record_error("OBJECT_NOT_FOUND", message, {"ids": missing}))
        return self._batch(results, errors, len(inputs))

    def _archive_batch(self, obj: str, body: Any) -> _Outcome:
        inputs = self._inputs(body)
        for item in inputs:
            self._archive(obj, str(item.get("id", "")))
        return _Outcome(204, None, len(inputs))

    def _search(self, obj: str, body: Any) -> _Outcome:
        now = self.clock()
        if self._search_window.remaining(now) <= 0:
            raise _RateLimited("SECONDLY", self._headers(now))
        self._search_window.stamps.append(now)
        limit = int(body.get("limit") or 10)
        if not 0 < limit <= SEARCH_LIMIT:
            raise _Refused(400, "VALIDATION_ERROR", f"limit must be between 1 and {SEARCH_LIMIT}")
        start = int(body.get("after") or 0)
        if start + limit > SEARCH_TOTAL:
            raise _Refused(
                400, "VALIDATION_ERROR", f"A search returns at most {SEARCH_TOTAL} results; narrow it with filters"
            )
        groups = body.get("filterGroups") or []
        sorts = body.get("sorts") or []
        self._check_search(obj, groups, sorts)
        definitions = self.properties[obj]
        found = [
            (r, values)
            for r in self.objects[obj].values()
            if (values := self._indexed(r)) is not None
            and (not groups or any(_matches(values, g, definitions) for g in groups))
        ]
        if sorts:
            sort = sorts[0]
            name = sort["propertyName"] if isinstance(sort, dict) else str(sort).lstrip("-")
            descending = isinstance(sort, dict) and sort.get("direction") == "DESCENDING"
            kind = definitions[name].get("type")
            found.sort(key=lambda rv: _typed(kind, rv[1].get(name, "")), reverse=descending)
        else:
            found.sort(key=lambda rv: int(rv[0].id))
        page = found[start : start + limit]
        out: dict[str, Any] = {
            "total": len(found),
            "results": [self._public(r, body.get("properties") or [], values=values) for r, values in page],
        }
        if start + limit < len(found):
            out["paging"] = {"next": {"after": str(start + limit)}}
        return _Outcome(200, out)

    def _check_search(self, obj: str, groups: Any, sorts: Any) -> None:
        """The filter and sort limits HubSpot enforces, and properties and operators it knows."""
        if not isinstance(groups, list) or not isinstance(sorts, list):
            raise _Refused(400, "VALIDATION_ERROR", "filterGroups and sorts must be lists")
        if len(groups) > FILTER_GROUPS:
            raise _Refused(400, "VALIDATION_ERROR", f"at most {FILTER_GROUPS} filterGroups are allowed")
        filters = [f for g in groups for f in g.get("filters") or []]
        if any(len(g.get("filters") or []) > FILTERS_PER_GROUP for g in groups) or len(filters) > FILTERS_TOTAL:
            raise _Refused(
                400,
                "VALIDATION_ERROR",
                f"at most {FILTERS_PER_GROUP} filters a group and {FILTERS_TOTAL} in all are allowed",
            )
        if len(sorts) > 1:
            raise _Refused(400, "VALIDATION_ERROR", "only one sort is allowed")
        for f in filters:
            if f.get("operator", "EQ") not in _OPERATORS:
                raise _Refused(400, "VALIDATION_ERROR", f"unknown operator {f.get('operator')!r}")
        for name in [f.get("propertyName") for f in filters] + [
            s["propertyName"] if isinstance(s, dict) else str(s).lstrip("-") for s in sorts
        ]:
            if name not in self.properties[obj]:
                raise _Refused(400, "VALIDATION_ERROR", f"Property {name!r} does not exist on {obj}")

    def _associate(self, obj: str, to: str, body: Any) -> _Outcome:
        inputs = self._inputs(body)
        results, errors = [], []
        for item in inputs:
            from_id, to_id = str(item["from"]["id"]), str(item["to"]["id"])
            try:
                if from_id not in self.objects[obj]:
                    raise LookupError(f"{obj} {from_id} does not exist")
                for t in item.get("types") or []:
                    self._link(obj, from_id, to, to_id, int(t["associationTypeId"]))
            except (LookupError, ValueError) as e:
                category = "VALIDATION_ERROR" if isinstance(e, ValueError) else "OBJECT_NOT_FOUND"
                errors.append(_record_error(category, str(e), {"fromObjectId": [from_id], "toObjectId": [to_id]}))
                continue
            types = [{"category": "HUBSPOT_DEFINED", "typeId": t["associationTypeId"]} for t in item["types"]]
            results.append(
                {"fromObjectTypeId": obj, "fromObjectId": from_id, "toObjectId": to_id, "labels": [], "types": types}
            )
        return self._batch(results, errors, len(inputs), ok=201)

    def _read_associations(self, obj: str, to: str, body: Any) -> _Outcome:
        inputs = self._inputs(body)
        results, missing = [], []
        for item in inputs:
            from_id = str(item.get("id", ""))
            if from_id not in self.objects[obj]:
                missing.append(from_id)
                continue
            links = self._links.get((obj, from_id), {})
            targets = [
                {
                    "toObjectId": int(to_id),
                    "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": t, "label": None} for t in sorted(types)
                    ],
                }
                for (kind, to_id), types in sorted(links.items())
                if kind == to
            ]
            results.append({"from": {"id": from_id}, "to": targets})
        errors = [_record_error("OBJECT_NOT_FOUND", f"No {obj} with these ids", {"ids": missing})] if missing else []
        return self._batch(results, errors, len(inputs))

    # ------------------------------------------------------------ properties and tokens

    def _list_properties(self, obj: str) -> _Outcome:
        return _Outcome(200, {"results": [dict(d) for d in self.properties[obj].values()]})

    # Property groups (developers.hubspot.com/docs/api/crm/properties, "Property groups"):
    # GET/POST /crm/v3/properties/{objectType}/groups, GET/PATCH/DELETE .../groups/{groupName}.

    def _group(self, name: str, label: str | None = None) -> dict[str, Any]:
        return {"name": name, "label": label or name, "displayOrder": -1, "archived": False}

    def _list_groups(self, obj: str) -> _Outcome:
        names = sorted(self.groups.get(obj, set()) | {"builtin"})
        return _Outcome(200, {"results": [self._group(n, self.group_labels.get((obj, n))) for n in names]})

    def _read_group(self, obj: str, name: str) -> _Outcome:
        if name not in self.groups.get(obj, set()) | {"builtin"}:
            raise _Refused(404, "OBJECT_NOT_FOUND", f"Unable to find property group {name}")
        return _Outcome(200, self._group(name, self.group_labels.get((obj, name))))

    def _create_group(self, obj: str, body: Any) -> _Outcome:
        name = body.get("name") if isinstance(body, dict) else None
        if not name or not body.get("label"):
            raise _Refused(400, "VALIDATION_ERROR", "name and label are required")
        if not _NAME.fullmatch(str(name)):
            raise _Refused(400, "VALIDATION_ERROR", f"group name {name!r} must be lowercase letters, digits, _")
        if name in self.groups.setdefault(obj, set()):
            raise _Refused(409, "OBJECT_ALREADY_EXISTS", f"A group named '{name}' already exists.")
        self.groups[obj].add(name)
        self.group_labels[(obj, name)] = str(body["label"])
        return _Outcome(201, self._group(name, str(body["label"])))

    def _update_group(self, obj: str, name: str, body: Any) -> _Outcome:
        self._read_group(obj, name)
        if isinstance(body, dict) and body.get("label"):
            self.group_labels[(obj, name)] = str(body["label"])
        return _Outcome(200, self._group(name, self.group_labels.get((obj, name))))

    def _delete_group(self, obj: str, name: str) -> _Outcome:
        self._read_group(obj, name)
        if any(d.get("groupName") == name for d in self.properties[obj].values()):
            raise _Refused(400, "VALIDATION_ERROR", f"property group {name} still has properties")
        self.groups[obj].discard(name)
        return _Outcome(204, None)

    def _pipelines(self, obj: str) -> _Outcome:
        if obj != "tickets":
            raise _Refused(400, "VALIDATION_ERROR", f"{obj} have no pipelines in this fake")
        results = [
            {
                "id": pipeline,
                "label": "Support Pipeline",
                "stages": [{"id": stage, "label": label, "archived": False} for stage, label in stages],
                "archived": False,
            }
            for pipeline, stages in PIPELINES.items()
        ]
        return _Outcome(200, {"results": results})

    def _create_properties(self, obj: str, definitions: list[dict[str, Any]], *, batch: bool) -> _Outcome:
        for d in definitions:
            if not {"name", "label", "type", "fieldType", "groupName"} <= d.keys():
                raise _Refused(400, "VALIDATION_ERROR", "name, label, type, fieldType and groupName are required")
            if d["groupName"] not in self.groups.get(obj, set()) | {"builtin"}:
                raise _Refused(400, "VALIDATION_ERROR", f"Property group {d['groupName']!r} does not exist on {obj}")
            if d["name"] in self.properties[obj]:
                raise _Refused(409, "OBJECT_ALREADY_EXISTS", f"Property named '{d['name']}' already exists.")
            if d.get("hasUniqueValue") and obj not in _UNIQUE_CAPABLE:
                raise _Refused(400, "VALIDATION_ERROR", f"Properties of {obj} cannot require unique values")
            if not _NAME.fullmatch(str(d["name"])):
                raise _Refused(400, "VALIDATION_ERROR", f"property name {d['name']!r} must be lowercase a-z, 0-9, _")
            if d["fieldType"] not in _FIELD_TYPES.get(d["type"], ()):
                raise _Refused(
                    400, "VALIDATION_ERROR", f"fieldType {d['fieldType']!r} is not valid for type {d['type']!r}"
                )
        created = []
        for d in definitions:
            self.properties[obj][d["name"]] = {**builtin(d["name"]), **d, "hubspotDefined": False}
            created.append(self.properties[obj][d["name"]])
        return _Outcome(
            201, created[0] if len(created) == 1 else {"status": "COMPLETE", "results": created}, len(created)
        )

    def _token(self, form: Mapping[str, str]) -> _Outcome:
        if form.get("grant_type") != "refresh_token":
            return _Outcome(400, {"status": "BAD_GRANT_TYPE", "message": "grant_type must be refresh_token"})
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return _Outcome(400, {"status": "BAD_CLIENT_ID", "message": "missing or invalid client_id / client_secret"})
        if form.get("refresh_token") != self.refresh_token:
            return _Outcome(400, {"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token"})
        token = f"fake-access-{uuid.uuid4().hex}"
        self._tokens[token] = self.clock() + self.token_ttl
        body = {
            "access_token": token,
            "refresh_token": self.refresh_token,
            "expires_in": int(self.token_ttl),
            "token_type": "bearer",
        }
        return _Outcome(200, body)

    # ------------------------------------------------------------ the request pipeline

    def _authenticate(self, authorization: str | None, scope: str) -> None:
        token = (authorization or "").removeprefix("Bearer ").strip()
        if token not in self._tokens:
            raise _Refused(401, "INVALID_AUTHENTICATION", "Authentication credentials not found.")
        expires = self._tokens[token]
        if expires is not None and expires <= self.clock():
            raise _Refused(401, "EXPIRED_AUTHENTICATION", "The OAuth token used to make this call expired.")
        if self.scopes is not None and scope not in self.scopes:
            raise _Refused(
                403,
                "MISSING_SCOPES",
                "This app hasn't been granted all required scopes to make this call.",
                errors=[
                    {
                        "message": "One or more of the following scopes are required.",
                        "context": {"requiredGranularScopes": [scope]},
                    }
                ],
                links={"scopes": "https://developers.hubspot.com/scopes"},
            )

    def _armed_fault(self) -> Fault | None:
        """A fault a test armed for the next request (``faults.arm(Fault.rate_limited)``)."""
        for fault in (Fault.rate_limited, Fault.server_error, Fault.timeout, Fault.lost_response):
            if self.faults.take_armed(fault):
                return fault
        return None

    def _spend(self) -> dict[str, str]:
        """Count one request against the limits; the rate-limit headers after it."""
        now = self.clock()
        headers: dict[str, str] = {}
        if self._window is not None:
            remaining = self._window.remaining(now)
            if remaining <= 0:
                raise _RateLimited("TEN_SECONDLY_ROLLING", self._headers(now))
        if self.daily_limit is not None and self.daily_used >= self.daily_limit:
            raise _RateLimited("DAILY", self._headers(now))
        if self._window is not None:
            self._window.stamps.append(now)
        self.daily_used += 1
        headers = self._headers(now)
        return headers

    def _headers(self, now: float) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self._window is not None:
            headers["X-HubSpot-RateLimit-Max"] = str(self._window.limit)
            headers["X-HubSpot-RateLimit-Remaining"] = str(max(0, self._window.remaining(now)))
            headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(int(self._window.seconds * 1000))
        if self.daily_limit is not None:
            headers["X-HubSpot-RateLimit-Daily"] = str(self.daily_limit)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(max(0, self.daily_limit - self.daily_used))
        return headers

    def _route(self, method: str, parts: list[str], body: Any) -> tuple[str, Callable[[], _Outcome]]:
        """(scope needed, handler) for a CRM API path split on '/'."""
        match parts:
            case ["crm", "v3", "objects", obj, "batch", action] if method == "POST":
                kind = _object(obj)
                handlers = {
                    "upsert": self._upsert,
                    "create": self._create,
                    "update": self._update,
                    "read": self._read,
                    "archive": self._archive_batch,
                }
                if action not in handlers:
                    raise _Refused(404, "OBJECT_NOT_FOUND", f"No batch action {action!r}")
                scope = (_READ_SCOPE if action == "read" else _WRITE_SCOPE)[kind]
                return scope, lambda: handlers[action](kind, body)
            case ["crm", "v3", "objects", obj, "search"] if method == "POST":
                kind = _object(obj)
                return _READ_SCOPE[kind], lambda: self._search(kind, body)
            case ["crm", "v4", "associations", obj, to, "batch", action] if method == "POST":
                kind, target = _object(obj), _object(to)
                if action == "create":
                    return _WRITE_SCOPE[kind], lambda: self._associate(kind, target, body)
                if action == "read":
                    return _READ_SCOPE[kind], lambda: self._read_associations(kind, target, body)
            case ["crm", "v3", "properties", obj]:
                kind = _object(obj)
                if method == "GET":
                    return _SCHEMA_READ_SCOPE[kind], lambda: self._list_properties(kind)
                if method == "POST":
                    return _SCHEMA_WRITE_SCOPE[kind], lambda: self._create_properties(kind, [body], batch=False)
            case ["crm", "v3", "properties", obj, "batch", "create"] if method == "POST":
                kind = _object(obj)
                return _SCHEMA_WRITE_SCOPE[kind], lambda: self._create_properties(kind, self._inputs(body), batch=True)
            case ["crm", "v3", "properties", obj, "groups"]:
                kind = _object(obj)
                if method == "GET":
                    return _SCHEMA_READ_SCOPE[kind], lambda: self._list_groups(kind)
                if method == "POST":
                    return _SCHEMA_WRITE_SCOPE[kind], lambda: self._create_group(kind, body)
            case ["crm", "v3", "properties", obj, "groups", name]:
                kind = _object(obj)
                if method == "GET":
                    return _SCHEMA_READ_SCOPE[kind], lambda: self._read_group(kind, name)
                if method == "PATCH":
                    return _SCHEMA_WRITE_SCOPE[kind], lambda: self._update_group(kind, name, body)
                if method == "DELETE":
                    return _SCHEMA_WRITE_SCOPE[kind], lambda: self._delete_group(kind, name)
            case ["crm", "v3", "pipelines", obj] if method == "GET":
                kind = _object(obj)
                return _READ_SCOPE[kind], lambda: self._pipelines(kind)
        raise _Refused(404, "OBJECT_NOT_FOUND", f"No route {method} /{'/'.join(parts)} in the fake")

    def _build_app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        def respond(outcome: _Outcome, headers: dict[str, str]) -> Response:
            if outcome.body is None:
                return Response(status_code=outcome.status, headers=headers)
            return JSONResponse(outcome.body, status_code=outcome.status, headers=headers)

        async def token(request: Request) -> Response:
            # application/x-www-form-urlencoded, parsed here: Starlette's form() needs python-multipart.
            form = dict(urllib.parse.parse_qsl((await request.body()).decode()))
            with self._lock:
                outcome = self._token(form)
                self.requests.append(HubSpotRequest("POST", request.url.path, outcome.status, 0))
            return respond(outcome, {})

        async def api(request: Request) -> Response:
            raw = await request.body()
            path = request.url.path
            fault: Fault = Fault.none
            headers: dict[str, str] = {}
            applied = False
            if (before := self.holds.take(request.method, path, after_apply=False)) is not None:
                await self.holds.wait(before)
            with self._lock:
                try:
                    body = _json(raw)
                    scope, handler = self._route(request.method, path.strip("/").split("/"), body)
                    self._authenticate(request.headers.get("authorization"), scope)
                    headers = self._spend()
                    fault = self._armed_fault() or self.faults.roll()
                    if fault is Fault.rate_limited:
                        raise _RateLimited("TEN_SECONDLY_ROLLING", headers)
                    if fault is Fault.server_error:
                        raise _Refused(503, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable")
                    applied = True
                    outcome = handler()
                except _RateLimited as limited:
                    outcome, headers = limited.outcome, limited.headers
                except _Refused as refused:
                    outcome = refused.outcome
                status = 502 if fault is Fault.lost_response else outcome.status
                after = self.holds.take(request.method, path, after_apply=True)
                self.requests.append(
                    HubSpotRequest(
                        request.method,
                        path,
                        status,
                        outcome.records,
                        None if fault is Fault.none else fault.value,
                        applied,
                        held=before is not None or after is not None,
                    )
                )
            if after is not None:
                await self.holds.wait(after)
            if fault is Fault.timeout:
                await asyncio.sleep(self.faults.timeout_seconds)  # applied; the client gave up long ago
            if fault is Fault.lost_response:
                return Response("<html>502 Bad Gateway</html>", status_code=502, media_type="text/html")
            return respond(outcome, headers)

        return Starlette(
            routes=[
                Route("/oauth/v1/token", token, methods=["POST"]),
                Route("/{path:path}", api, methods=["GET", "POST", "PATCH", "DELETE"]),
            ]
        )


class _RateLimited(Exception):
    def __init__(self, policy: str, headers: dict[str, str]) -> None:
        super().__init__(policy)
        limit = "daily" if policy == "DAILY" else "ten_secondly_rolling"
        body = {
            "status": "error",
            "message": f"You have reached your {limit} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": policy,
            "groupName": "publicapi",
        }
        self.outcome = _Outcome(429, body)
        self.headers = headers


def _object(name: str) -> str:
    try:
        return _OBJECT_NAMES[name]
    except KeyError:
        raise _Refused(400, "VALIDATION_ERROR", f"Unable to infer object type from: {name}") from None


def _json(raw: bytes) -> Any:
    import json

    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise _Refused(400, "VALIDATION_ERROR", "Invalid input JSON") from None


def _trace(trace: str | None) -> dict[str, Any]:
    return {"objectWriteTraceId": trace} if trace else {}


def _sort_key(value: str) -> tuple[int, float, str]:
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def _epoch_ms(value: str) -> float | None:
    """A datetime property or filter value (epoch milliseconds or ISO 8601) in epoch ms."""
    if re.fullmatch(r"-?\d+(\.\d+)?", value.strip()):
        return float(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000


def _typed(kind: str | None, value: str) -> tuple[int, float, str]:
    """A value's sort key: datetimes by their moment, numbers by value, the rest as text."""
    if kind in ("datetime", "date") and value:
        ms = _epoch_ms(value)
        if ms is not None:
            return (0, ms, "")
    return _sort_key(value)


def _matches(values: Mapping[str, str], group: Mapping[str, Any], definitions: Mapping[str, Any]) -> bool:
    """Whether a record (as indexed) passes every filter of one filter group (groups are OR-ed)."""
    for f in group.get("filters") or []:
        name, op = f["propertyName"], f.get("operator", "EQ")
        kind = (definitions.get(name) or {}).get("type")
        actual = values.get(name)
        if op == "HAS_PROPERTY":
            ok = bool(actual)
        elif op == "NOT_HAS_PROPERTY":
            ok = not actual
        elif op in ("IN", "NOT_IN"):
            ok = (actual in [str(v) for v in f.get("values") or []]) == (op == "IN")
        elif actual is None:
            ok = False
        else:
            a, b = _typed(kind, actual), _typed(kind, str(f.get("value")))
            ok = {"EQ": a == b, "NEQ": a != b, "GT": a > b, "GTE": a >= b, "LT": a < b, "LTE": a <= b}.get(op, False)
        if not ok:
            return False
    return True
