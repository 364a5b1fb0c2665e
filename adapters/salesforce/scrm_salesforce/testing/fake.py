"""A stateful fake Salesforce org, strict about what Salesforce documents.

Serve it with :class:`~scrm_core.testing.fakes.FakeServer` over TLS (simple-salesforce
only builds ``https://`` URLs) and point a client at it::

    private_pem, public_pem = make_rsa_key_pair()
    fake = FakeSalesforce(jwt_public_key=public_pem)
    with FakeServer(fake.app, tls=True) as server:
        ...  # login_url = server.url, trust server.ca_file

What it speaks, in Salesforce's own shapes (the pages are cited where each part lives):

- ``POST /services/oauth2/token`` (:mod:`.oauth`): JWT bearer, client credentials and the
  legacy password flow. Sessions expire after ``session_seconds`` (or
  :meth:`FakeSalesforce.expire_sessions`) and are then refused with 401 ``INVALID_SESSION_ID``.
- ``GET sobjects/{X}/describe``: every field with ``length``, ``createable``,
  ``updateable``, ``nillable``, ``defaultedOnCreate``, ``externalId``, ``unique``,
  ``precision`` / ``scale`` / ``digits``, ``referenceTo``, ``relationshipName``,
  ``restrictedPicklist`` and ``picklistValues`` (:mod:`.schema`), and the object's
  ``createable`` / ``updateable`` / ``deletable``.
- ``POST composite``: up to 25 subrequests (``GET`` describe and query here) counted as
  ONE call against the API limit (developer.salesforce.com/docs/platform/api-rest/guide/
  resources-composite-composite-post.html).
- Every write path checks every value the same way (:meth:`FieldSpec.check` and the
  createable / updateable flags: ``STRING_TOO_LONG``, ``INVALID_FIELD_FOR_INSERT_UPDATE``,
  ``INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST``, ``REQUIRED_FIELD_MISSING``,
  ``INVALID_EMAIL_ADDRESS``, ``NUMBER_OUTSIDE_VALID_RANGE``, and validation rules added
  with :meth:`FakeSalesforce.add_validation_rule`, ``FIELD_CUSTOM_VALIDATION_EXCEPTION``):

  * ``PATCH composite/sobjects/{X}/{ExternalIdField}``: sObject Collections upsert of up
    to 200 records (more: 400 ``EXCEEDED_ID_LIMIT``), one result per record
    (developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-sobjects-collections-upsert.html);
  * ``PATCH sobjects/{X}/{ExternalIdField}/{value}``: upsert of one record, 201 created /
    200 updated with ``{id, success, errors, created}``, or a 4xx error list
    (developer.salesforce.com/docs/platform/api-rest/guide/dome-upsert.html);
  * ``PATCH sobjects/{X}/{Id}``: update one record, 204 No Content;
  * Bulk API 2.0 ingest rows (:mod:`.bulk`).

- ``DELETE composite/sobjects?ids=...``: up to 200 ids.
- ``GET query?q=...``: the simple SOQL the adapter issues (:mod:`.soql`), refused as
  Salesforce refuses it: a field the user cannot see (field-level security) or that does
  not exist, a long text area in WHERE or ORDER BY, a literal of the wrong type for its
  field (a quoted datetime, an Id that is no Id).
- ``SystemModstamp`` and ``LastModifiedDate`` move on every write, at Salesforce's
  one-second precision, so records saved within one second share a stamp.
- ``Sforce-Limit-Info: api-usage=N/M`` on every data response; once the daily budget is
  spent every call is a 403 ``REQUEST_LIMIT_EXCEEDED``.

``faults`` (a :class:`FaultInjector`) is rolled once per data request: ``rate_limited``
answers 403 ``REQUEST_LIMIT_EXCEEDED``, ``server_error`` a 503, ``timeout`` applies the
request then sleeps ``faults.timeout_seconds`` before answering, ``lost_response`` applies
it then answers 502; ``partial_rate`` fails single records of collections and Bulk jobs
with the transient ``UNABLE_TO_LOCK_ROW``. :attr:`FakeSalesforce.holds` stops a chosen
request before or after it is applied, so a crash test can kill the client right then.

Tests read the org with :meth:`FakeSalesforce.find`, :meth:`FakeSalesforce.count` and
:meth:`FakeSalesforce.records`, write as an agent would with :meth:`FakeSalesforce.insert`,
:meth:`FakeSalesforce.edit` (a field changed on a record page, e.g. the intent correction
picklist) or :meth:`FakeSalesforce.agent_reply`, hide a field from the integration user
with :meth:`FakeSalesforce.hide_field`, and read every request in
:attr:`FakeSalesforce.requests`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from scrm_core.testing.fakes.faults import Fault, FaultInjector
from scrm_core.testing.fakes.holds import Holds

from .bulk import BulkIngest
from .errors import ApiError, RecordError, malformed
from .oauth import OAuthServer, make_rsa_key_pair
from .schema import (
    INTENT_CORRECTION,
    INTENT_VALUES,
    PROVIDERS,
    SCRM_KEY,
    TEXT_TYPES,
    FieldSpec,
    scrm_custom_fields,
    standard_schema,
    system_fields,
)
from .soql import Soql

__all__ = [
    "COLLECTION_LIMIT",
    "INTENT_CORRECTION",
    "INTENT_VALUES",
    "PROVIDERS",
    "SCRM_KEY",
    "FakeSalesforce",
    "FieldSpec",
    "SalesforceRequest",
    "make_rsa_key_pair",
]

#: Records per sObject Collections call (developer.salesforce.com/docs/platform/api-rest/guide/
#: resources-composite-sobjects-collections-upsert.html).
COLLECTION_LIMIT = 200
#: Subrequests per Composite request.
COMPOSITE_LIMIT = 25
ID_PREFIX = {"Contact": "003", "Case": "500", "Lead": "00Q", "SocialPersona": "0SP", "SocialPost": "0ST"}
ValidationRule = Callable[[dict[str, Any]], str | None]
#: A Salesforce record Id: 15 case-sensitive or 18 case-insensitive characters.
_SF_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


@dataclass(frozen=True)
class SalesforceRequest:
    """One request the fake answered.

    ``records``: how many records the call carried (0 if none); ``applied``: whether its
    handler ran (a write took effect, whatever answer the client then got); ``held``: a
    test held it (:attr:`FakeSalesforce.holds`)."""

    method: str
    path: str
    status: int
    records: int = 0
    error_code: str | None = None
    applied: bool = False
    held: bool = False
    fault: str | None = None


class FakeSalesforce(OAuthServer, BulkIngest):
    """An in-memory Salesforce org behind a Starlette app (``.app``).

    Credentials that work (pass your own to the constructor): JWT with ``consumer_key`` as
    ``iss`` and ``username`` as ``sub`` signed by the private half of ``jwt_public_key``;
    client credentials ``consumer_key`` / ``client_secret``; password ``username`` /
    ``password`` with the same client id and secret.
    """

    def __init__(
        self,
        *,
        consumer_key: str = "scrm-fake-consumer-key",
        client_secret: str = "scrm-fake-client-secret",  # noqa: S107 - a fake's well-known test credential
        username: str = "integration@scrm.example",
        password: str = "scrm-fake-password",  # noqa: S107 - a fake's well-known test credential
        jwt_public_key: str | None = None,
        audiences: Iterable[str] = ("https://login.salesforce.com", "https://test.salesforce.com"),
        session_seconds: float = 3600.0,
        api_limit: int = 100_000,
        scrm_fields: bool = True,
        bulk_polls: int = 1,
        faults: FaultInjector | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.consumer_key = consumer_key
        self.client_secret = client_secret
        self.username = username
        self.password = password
        self.jwt_public_key = jwt_public_key
        self.audiences = set(audiences)
        self.session_seconds = session_seconds
        self.api_limit = api_limit
        self.api_used = 0
        self.bulk_polls = bulk_polls
        self.faults = faults or FaultInjector()
        self.holds = Holds()
        self.clock = clock
        self.requests: list[SalesforceRequest] = []
        self.token_requests: list[str] = []  # grant types asked for, successful or not
        self.schema: dict[str, dict[str, FieldSpec]] = {
            name: {f.name: f for f in [*system_fields(), *fields]} for name, fields in standard_schema().items()
        }
        if scrm_fields:
            for sobject, fields in scrm_custom_fields().items():
                for spec in fields:
                    self.add_field(sobject, spec)
        self.object_access: dict[str, dict[str, bool]] = {
            name: {"createable": True, "updateable": True, "deletable": True, "queryable": True} for name in self.schema
        }
        self.validation_rules: dict[str, list[tuple[str, ValidationRule]]] = {name: [] for name in self.schema}
        self._records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self.schema}
        self._index: dict[tuple[str, str], dict[Any, str]] = {}  # (sobject, external id field) -> value -> Id
        self._sessions: dict[str, float] = {}
        self._jobs: dict[str, dict[str, Any]] = {}
        self._deleted: set[str] = set()  # Ids in the recycle bin
        self._ids = itertools.count(1)
        self._last_created = 0
        self._lock = threading.RLock()
        self.app = Starlette(routes=self._routes())

    # ------------------------------------------------------------ helpers for tests

    def add_field(self, sobject: str, spec: FieldSpec) -> None:
        self.schema[sobject][spec.name] = spec

    def hide_field(self, sobject: str, name: str) -> None:
        """Field-level security takes Read away from the integration user: describe leaves the
        field out, and a query or write naming it is refused as if it did not exist."""
        self.schema[sobject][name].visible = False

    def remove_field(self, sobject: str, name: str) -> None:
        """As if an admin deleted the field (e.g. the external id), to exercise ``check()``."""
        self.schema[sobject].pop(name, None)

    def restrict_picklist(self, sobject: str, name: str, values: list[str], *, default: str | None = None) -> None:
        """Make a picklist restricted to ``values`` (as an admin can), with an optional default."""
        spec = self.schema[sobject][name]
        spec.picklist, spec.restricted, spec.default_value = list(values), True, default
        spec.defaulted = default is not None

    def add_validation_rule(self, sobject: str, message: str, rule: ValidationRule) -> None:
        """A validation rule: ``rule(record as it would be saved)`` returns True to refuse it with ``message``."""
        self.validation_rules[sobject].append((message, lambda record: message if rule(record) else None))

    def expire_sessions(self) -> None:
        """Every access token handed out so far is refused from now on (401 INVALID_SESSION_ID)."""
        with self._lock:
            self._sessions.clear()

    def find(self, sobject: str, field_name: str, value: Any) -> dict[str, Any] | None:
        """The first record whose ``field_name`` equals ``value`` (a copy), or None."""
        with self._lock:
            for record in self._records[sobject].values():
                if record.get(field_name) == value:
                    return dict(record)
        return None

    def get(self, sobject: str, record_id: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._records[sobject].get(record_id)
            return dict(record) if record else None

    def records(self, sobject: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._records[sobject].values()]

    def count(self, sobject: str) -> int:
        with self._lock:
            return len(self._records[sobject])

    def insert(self, sobject: str, fields: dict[str, Any]) -> str:
        """Create a record as a user in the Salesforce UI would (no checks); returns its Id."""
        with self._lock:
            return self._create(sobject, dict(fields))

    def edit(self, sobject: str, record_id: str, fields: dict[str, Any], *, modstamp: float | None = None) -> None:
        """An agent changes fields on the record page: each value is checked as the page checks
        it (a restricted picklist takes only its values), and the record's ``LastModifiedDate``
        and ``SystemModstamp`` move on.

        ``modstamp`` (a Unix time) stamps the save at that moment instead of now: a save
        whose transaction began then and committed only now (a long trigger, a bulk job),
        visible to queries after records stamped later than it.
        """
        with self._lock:
            record = self._records[sobject][record_id]
            for name, value in fields.items():
                spec = self.schema[sobject].get(name)
                if spec is None or not spec.updateable:
                    raise RecordError("INVALID_FIELD_FOR_INSERT_UPDATE", f"{sobject}.{name} cannot be edited", [name])
                spec.check(value)
            record.update(fields)
            self._touch(record, None if modstamp is None else self._stamp(modstamp))

    def agent_reply(self, reply_to_id: str, content: str) -> str:
        """An agent answers SocialPost ``reply_to_id`` in the Social Customer Service console.

        The new post is outbound, replies to that post, sits on the same case and has no
        ExternalPostId until the reply is published; returns its Id.
        """
        with self._lock:
            parent = self._records["SocialPost"][reply_to_id]
            fields = {
                "Name": f"Re: {parent.get('Name') or reply_to_id}"[:255],
                "Provider": parent.get("Provider"),
                "Posted": self._now(),
                "IsOutbound": True,
                "MessageType": "Reply",
                "ReplyToId": reply_to_id,
                "ParentId": parent.get("ParentId"),
                "Content": content,
            }
            return self._create("SocialPost", fields)

    def calls(self, *, path_contains: str = "", method: str | None = None) -> list[SalesforceRequest]:
        """Logged data requests whose path contains ``path_contains`` (and of ``method``)."""
        with self._lock:
            return [r for r in self.requests if path_contains in r.path and (method is None or r.method == method)]

    # ------------------------------------------------------------ routing

    def _routes(self) -> list[Route]:
        data = self._data_endpoint
        base = "/services/data/{version}"
        return [
            Route("/services/oauth2/token", self._token, methods=["POST"]),
            Route(f"{base}/sobjects/{{sobject}}/describe", data(self._describe), methods=["GET"]),
            Route(f"{base}/composite", data(self._composite), methods=["POST"]),
            Route(f"{base}/composite/", data(self._composite), methods=["POST"]),
            Route(
                f"{base}/composite/sobjects/{{sobject}}/{{ext_field}}", data(self._upsert_collection), methods=["PATCH"]
            ),
            Route(f"{base}/composite/sobjects", data(self._delete_collection), methods=["DELETE"]),
            Route(
                f"{base}/sobjects/{{sobject}}/{{ext_field}}/{{value:path}}", data(self._upsert_one), methods=["PATCH"]
            ),
            Route(f"{base}/sobjects/{{sobject}}/{{record_id}}", data(self._update), methods=["PATCH"]),
            Route(f"{base}/query", data(self._query), methods=["GET"]),
            Route(f"{base}/query/", data(self._query), methods=["GET"]),
            Route(f"{base}/jobs/ingest", data(self._create_job), methods=["POST"]),
            Route(f"{base}/jobs/ingest/", data(self._create_job), methods=["POST"]),
            Route(f"{base}/jobs/ingest/{{job_id}}", data(self._job), methods=["GET", "PATCH", "DELETE"]),
            Route(f"{base}/jobs/ingest/{{job_id}}/batches", data(self._upload_job), methods=["PUT"]),
            Route(f"{base}/jobs/ingest/{{job_id}}/{{results}}", data(self._job_results), methods=["GET"]),
            Route(f"{base}/jobs/ingest/{{job_id}}/{{results}}/", data(self._job_results), methods=["GET"]),
        ]

    def _data_endpoint(self, handler: Callable[[Request, Any], Response]) -> Callable[[Request], Any]:
        """Session check, API budget, faults, holds, ``Sforce-Limit-Info`` and the request log."""

        async def endpoint(request: Request) -> Response:
            body = await request.body()
            method, path = request.method, request.url.path
            fault = Fault.none
            count = 0
            applied = held = False
            if (before := self.holds.take(method, path, after_apply=False)) is not None:
                held = True
                await self.holds.wait(before)
            try:
                with self._lock:
                    self._authorize(request)
                    self.api_used += 1
                    if self.api_used > self.api_limit:
                        raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
                    fault = self._armed_fault() or self.faults.roll()
                    if fault is Fault.rate_limited:
                        raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
                    if fault is Fault.server_error:
                        raise ApiError(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable.")
                    applied = True
                    response = handler(request, body)
                    count = int(response.headers.get("x-fake-records", "0"))
            except ApiError as exc:
                response = exc.response()
            if (after := self.holds.take(method, path, after_apply=True)) is not None:
                held = True
                self._log(request, response, count, applied, held, fault)
                await self.holds.wait(after)
                held = False  # logged already
            if fault is Fault.lost_response:
                response = PlainTextResponse("Bad Gateway", status_code=502)
            elif fault is Fault.timeout:
                await asyncio.sleep(self.faults.timeout_seconds)
            response.headers["Sforce-Limit-Info"] = f"api-usage={min(self.api_used, self.api_limit)}/{self.api_limit}"
            if after is None:
                self._log(request, response, count, applied, held, fault)
            return response

        return endpoint

    def _armed_fault(self) -> Fault | None:
        """A fault a test armed for the next data request (``faults.arm(Fault.server_error)``)."""
        for fault in (Fault.rate_limited, Fault.server_error, Fault.timeout, Fault.lost_response):
            if self.faults.take_armed(fault):
                return fault
        return None

    def _log(self, request: Request, response: Response, records: int, applied: bool, held: bool, fault: Fault) -> None:
        code = None
        if response.status_code >= 400 and isinstance(response, JSONResponse):
            match = re.search(rb'"errorCode":\s*"([A-Z_]+)"', bytes(response.body))
            code = match.group(1).decode() if match else None
        status = 502 if fault is Fault.lost_response else response.status_code
        entry = SalesforceRequest(
            request.method,
            request.url.path,
            status,
            records,
            code,
            applied,
            held,
            None if fault is Fault.none else fault.value,
        )
        with self._lock:
            self.requests.append(entry)

    def _authorize(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip()
        expires = self._sessions.get(token)
        if not token or expires is None or expires < self.clock():
            raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{'0' * 6}{next(self._ids):06d}AAA"

    # ------------------------------------------------------------ describe and composite

    def _describe_body(self, sobject: str) -> dict[str, Any]:
        sobject = self._sobject(sobject)
        return {
            "name": sobject,
            **self.object_access[sobject],
            "fields": [spec.describe() for spec in self.schema[sobject].values() if spec.visible],
        }

    def _describe(self, request: Request, body: bytes) -> Response:
        return JSONResponse(self._describe_body(request.path_params["sobject"]))

    def _composite(self, request: Request, body: bytes) -> Response:
        """``POST composite`` with GET subrequests (describe, query); one call against the limit."""
        try:
            subrequests = json.loads(body)["compositeRequest"]
            assert isinstance(subrequests, list)
        except (ValueError, KeyError, AssertionError) as exc:
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be {compositeRequest: [...]}") from exc
        if len(subrequests) > COMPOSITE_LIMIT:
            raise ApiError(400, "INVALID_INPUT", f"a composite request takes at most {COMPOSITE_LIMIT} subrequests")
        answers = []
        for sub in subrequests:
            url, ref = str(sub.get("url", "")), sub.get("referenceId")
            status: int = 200
            out: Any = None
            try:
                if sub.get("method") != "GET":
                    raise ApiError(400, "INVALID_INPUT", "this fake runs GET subrequests only")
                if match := re.fullmatch(r"/services/data/v[\d.]+/sobjects/([^/]+)/describe/?", url):
                    out = self._describe_body(match.group(1))
                elif match := re.fullmatch(r"/services/data/v[\d.]+/query/?\?q=(.*)", url):
                    out = self._run_query(unquote(match.group(1).replace("+", " ")))
                else:
                    raise ApiError(404, "NOT_FOUND", f"The requested resource does not exist: {url}")
            except ApiError as exc:
                status, out = exc.status, [{"message": exc.message, "errorCode": exc.code}]
            answers.append({"body": out, "httpHeaders": {}, "httpStatusCode": status, "referenceId": ref})
        return JSONResponse({"compositeResponse": answers})

    def _sobject(self, name: str) -> str:
        if name not in self.schema:
            raise ApiError(404, "NOT_FOUND", f"The requested resource does not exist: sObject type '{name}'")
        return name

    def _external_field(self, sobject: str, ext_field: str) -> None:
        spec = self.schema[sobject].get(ext_field)
        if spec is None or not spec.external_id:
            raise ApiError(
                400,
                "INVALID_FIELD",
                f"Field name provided, {ext_field} is not an External ID or indexed field for {sobject}",
            )

    # ------------------------------------------------------------ writes

    def _upsert_collection(self, request: Request, body: bytes) -> Response:
        sobject = self._sobject(request.path_params["sobject"])
        ext_field = request.path_params["ext_field"]
        self._external_field(sobject, ext_field)
        try:
            payload = json.loads(body)
            records = payload["records"]
            assert isinstance(records, list)
        except (ValueError, KeyError, AssertionError) as exc:
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be {allOrNone, records: [...]}") from exc
        if len(records) > COLLECTION_LIMIT:
            raise ApiError(
                400,
                "EXCEEDED_ID_LIMIT",
                f"record limit reached. cannot submit more than {COLLECTION_LIMIT} records into this call",
            )
        seen: set[Any] = set()
        results = []
        for raw in records:
            key = raw.get(ext_field)
            try:
                if self.faults.reject_record():
                    raise RecordError("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record")
                if key in seen:
                    raise RecordError("DUPLICATE_VALUE", f"Duplicate external id specified: {key}", [ext_field])
                seen.add(key)
                fields = self._json_fields(sobject, raw)
                record_id, created = self._upsert(sobject, ext_field, key, fields)
                results.append({"id": record_id, "success": True, "errors": [], "created": created})
            except RecordError as exc:
                results.append({"success": False, "errors": [exc.as_json()]})
        return JSONResponse(results, headers={"x-fake-records": str(len(records))})

    def _upsert_one(self, request: Request, body: bytes) -> Response:
        """``PATCH sobjects/{X}/{ExternalIdField}/{value}``: 201 created or 200 updated."""
        sobject = self._sobject(request.path_params["sobject"])
        ext_field = request.path_params["ext_field"]
        self._external_field(sobject, ext_field)
        key = unquote(request.path_params["value"])
        try:
            raw = json.loads(body or b"{}")
            assert isinstance(raw, dict)
        except (ValueError, AssertionError) as exc:
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object of fields") from exc
        if ext_field in raw and raw[ext_field] != key:
            raise ApiError(400, "INVALID_FIELD", f"{ext_field} in the body differs from the one in the URL")
        try:
            record_id, created = self._upsert(sobject, ext_field, key, self._json_fields(sobject, raw))
        except RecordError as exc:
            raise exc.as_api_error() from None
        body_out = {"id": record_id, "success": True, "errors": [], "created": created}
        return JSONResponse(body_out, status_code=201 if created else 200, headers={"x-fake-records": "1"})

    def _json_fields(self, sobject: str, raw: dict[str, Any]) -> dict[str, Any]:
        """A JSON record's field values, relationship references resolved to Ids."""
        attributes = raw.get("attributes") or {}
        if attributes.get("type") not in (None, sobject):
            raise RecordError("INVALID_TYPE", f"attributes.type {attributes.get('type')!r} is not {sobject}")
        fields: dict[str, Any] = {}
        for name, value in raw.items():
            if name == "attributes":
                continue
            if isinstance(value, dict):
                ref_field, ref_id = self._resolve_reference(sobject, name, value)
                fields[ref_field] = ref_id
            else:
                fields[name] = value
        return fields

    def _resolve_reference(self, sobject: str, relationship: str, value: dict[str, Any]) -> tuple[str, str]:
        spec = next((f for f in self.schema[sobject].values() if f.relationship_name == relationship), None)
        if spec is None:
            raise RecordError("INVALID_FIELD", f"No such column '{relationship}' on sobject of type {sobject}")
        target_type = (value.get("attributes") or {}).get("type")
        if target_type is None:
            if len(spec.reference_to) > 1:
                raise RecordError(
                    "INVALID_FIELD",
                    f"The polymorphic foreign key {relationship} needs attributes.type "
                    f"(one of {', '.join(spec.reference_to)})",
                    [spec.name],
                )
            target_type = spec.reference_to[0]
        keys = [k for k in value if k != "attributes"]
        if target_type not in spec.reference_to or len(keys) != 1:
            raise RecordError("INVALID_FIELD", f"Invalid foreign key reference {relationship}", [spec.name])
        return spec.name, self._foreign_id(target_type, keys[0], value[keys[0]])

    def _foreign_id(self, target: str, ext_field: str, key: Any) -> str:
        target_spec = self.schema.get(target, {}).get(ext_field)
        if target_spec is None or not (target_spec.external_id or ext_field == "Id"):
            raise RecordError("INVALID_FIELD", f"{ext_field} is not an External ID field of {target}")
        record_id = self._by_key(target, ext_field, key)
        if record_id is not None:
            return record_id
        raise RecordError(
            "INVALID_FIELD",
            f"Foreign key external ID: {key} not found for field {ext_field} in entity {target}",
            [ext_field],
        )

    def _upsert(self, sobject: str, ext_field: str, key: Any, fields: dict[str, Any]) -> tuple[str, bool]:
        if key in (None, ""):
            raise RecordError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{ext_field}]", [ext_field])
        existing = self._by_key(sobject, ext_field, key)
        self._validate(sobject, fields, creating=existing is None)
        after = {**(self._records[sobject][existing] if existing else {}), **fields, ext_field: key}
        self._run_validation_rules(sobject, after)
        if existing is None:
            return self._create(sobject, {**fields, ext_field: key}), True
        record = self._records[sobject][existing]
        record.update(fields)
        self._touch(record)
        return existing, False

    def _bulk_row(self, sobject: str, ext_field: str, values: dict[str, str]) -> tuple[str, bool]:
        """One Bulk API 2.0 row, checked as any write is."""
        if self.faults.reject_record():
            raise RecordError("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record")
        return self._upsert(sobject, ext_field, values.get(ext_field, ""), self._csv_fields(sobject, values, ext_field))

    def _validate(self, sobject: str, fields: dict[str, Any], *, creating: bool) -> None:
        schema = self.schema[sobject]
        access = self.object_access[sobject]
        if not access["createable" if creating else "updateable"]:
            raise RecordError(
                "INSUFFICIENT_ACCESS_OR_READONLY",
                f"insufficient access rights on object {sobject} to {'create' if creating else 'update'}",
            )
        for name, value in fields.items():
            spec = schema.get(name)
            if spec is None or not spec.visible:
                raise RecordError("INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}", [name])
            if not (spec.createable if creating else spec.updateable):
                raise RecordError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {name}. Please check the security settings of this field "
                    "and verify that it is read/write for your profile or permission set.",
                    [name],
                )
            if spec.type != "reference":
                spec.check(value)
        if creating:
            missing = [s.name for s in schema.values() if s.required_on_create and fields.get(s.name) in (None, "")]
            if missing:
                raise RecordError(
                    "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
                )

    def _run_validation_rules(self, sobject: str, record: dict[str, Any]) -> None:
        for _, rule in self.validation_rules[sobject]:
            if (message := rule(record)) is not None:
                raise RecordError("FIELD_CUSTOM_VALIDATION_EXCEPTION", message)

    def _by_key(self, sobject: str, key_field: str, value: Any) -> str | None:
        """The Id of the record whose (external id) ``key_field`` is ``value``; indexed, as Salesforce does."""
        if key_field == "Id":
            return value if value in self._records.get(sobject, {}) else None
        index = self._index.get((sobject, key_field))
        if index is None:
            index = self._index[(sobject, key_field)] = {
                r[key_field]: rid for rid, r in self._records[sobject].items() if r.get(key_field) is not None
            }
        return index.get(value)

    def _create(self, sobject: str, fields: dict[str, Any]) -> str:
        record_id = self._next_id(ID_PREFIX.get(sobject, "a00"))
        defaults: dict[str, Any] = {}
        for s in self.schema[sobject].values():
            if s.name not in ("Id", "CreatedDate", "LastModifiedDate", "SystemModstamp"):
                defaults[s.name] = False if s.type == "boolean" else s.default_value
        now = self._now()
        record = {**defaults, **fields, "Id": record_id, "CreatedDate": now}
        self._touch(record, now)
        self._records[sobject][record_id] = record
        for (indexed, key_field), index in self._index.items():
            if indexed == sobject and record.get(key_field) is not None:
                index[record[key_field]] = record_id
        return record_id

    def _now(self) -> str:
        """Salesforce datetimes have second precision; never earlier than the last one given."""
        second = max(int(self.clock()), self._last_created)
        self._last_created = second
        return self._stamp(second)

    @staticmethod
    def _stamp(moment: float) -> str:
        return datetime.fromtimestamp(int(moment), UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")

    def _touch(self, record: dict[str, Any], stamp: str | None = None) -> None:
        """A save: both modification stamps move (scrm's writes and agents' edits alike)."""
        record["LastModifiedDate"] = record["SystemModstamp"] = stamp or self._now()

    def _csv_fields(self, sobject: str, values: dict[str, str], ext_field: str) -> dict[str, Any]:
        """A CSV row's fields: empty = leave unchanged, ``#N/A`` = null, ``Rel.Field`` = a reference."""
        fields: dict[str, Any] = {}
        for column, text in values.items():
            if column == ext_field or text == "":
                continue
            if "." in column:
                target, _, path = column.rpartition(":") if ":" in column else ("", "", column)
                relationship, _, key_field = path.partition(".")
                spec = next((f for f in self.schema[sobject].values() if f.relationship_name == relationship), None)
                if spec is None:
                    raise RecordError("INVALID_FIELD", f"No such relationship '{relationship}' on {sobject}")
                polymorphic = len(spec.reference_to) > 1
                if polymorphic and not target:
                    raise RecordError("INVALID_FIELD", f"polymorphic {relationship} needs Type:{relationship}.Field")
                if not polymorphic and target:
                    raise RecordError("INVALID_FIELD", f"type is not needed for non polymorphic foreign key {column}")
                fields[spec.name] = self._foreign_id(target or spec.reference_to[0], key_field, text)
                continue
            spec = self.schema[sobject].get(column)
            fields[column] = None if text == "#N/A" else _from_csv(spec, text)
        return fields

    # ------------------------------------------------------------ one record by Id

    def _update(self, request: Request, body: bytes) -> Response:
        """``PATCH sobjects/{X}/{Id}``: 204 No Content, or a 4xx with the error list."""
        sobject = self._sobject(request.path_params["sobject"])
        record_id = request.path_params["record_id"]
        record = self._records[sobject].get(record_id)
        if record is None:
            if record_id in self._deleted:
                raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted", [])
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        try:
            fields = json.loads(body or b"{}")
            assert isinstance(fields, dict)
        except (ValueError, AssertionError) as exc:
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object of fields") from exc
        fields.pop("attributes", None)
        try:
            self._validate(sobject, fields, creating=False)
            self._run_validation_rules(sobject, {**record, **fields})
        except RecordError as exc:
            raise exc.as_api_error() from None
        schema = self.schema[sobject]
        for name, value in fields.items():
            if value is None or not (schema[name].unique or schema[name].external_id):
                continue
            holder = self._by_key(sobject, name, value)
            if holder is not None and holder != record_id and schema[name].unique:
                raise ApiError(
                    400,
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {name} duplicates value on record with id: {holder}",
                    [name],
                )
        for (indexed, key_field), index in self._index.items():
            if indexed == sobject and key_field in fields:
                index.pop(record.get(key_field), None)
                if fields[key_field] is not None:
                    index[fields[key_field]] = record_id
        record.update(fields)
        self._touch(record)
        return Response(status_code=204, headers={"x-fake-records": "1"})

    def _delete_collection(self, request: Request, body: bytes) -> Response:
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        if len(ids) > COLLECTION_LIMIT:
            raise ApiError(
                400,
                "EXCEEDED_ID_LIMIT",
                f"record limit reached. cannot submit more than {COLLECTION_LIMIT} records into this call",
            )
        results = []
        for record_id in ids:
            sobject = next((s for s, records in self._records.items() if record_id in records), None)
            if sobject is None:
                error = RecordError("ENTITY_IS_DELETED", "entity is deleted")
                results.append({"id": record_id, "success": False, "errors": [error.as_json()]})
                continue
            if not self.object_access[sobject]["deletable"]:
                error = RecordError("INSUFFICIENT_ACCESS_OR_READONLY", f"insufficient access rights on {sobject}")
                results.append({"id": record_id, "success": False, "errors": [error.as_json()]})
                continue
            record = self._records[sobject].pop(record_id)
            self._deleted.add(record_id)
            for (indexed, key_field), index in self._index.items():
                if indexed == sobject:
                    index.pop(record.get(key_field), None)
            self._clear_references_to(record_id)
            results.append({"id": record_id, "success": True, "errors": []})
        return JSONResponse(results, headers={"x-fake-records": str(len(ids))})

    def _clear_references_to(self, record_id: str) -> None:
        """Lookups to a deleted record become empty, as lookup relationships do."""
        for sobject, records in self._records.items():
            refs = [s.name for s in self.schema[sobject].values() if s.type == "reference"]
            for record in records.values():
                for name in refs:
                    if record.get(name) == record_id:
                        record[name] = None

    # ------------------------------------------------------------ SOQL

    def _query(self, request: Request, body: bytes) -> Response:
        return JSONResponse(self._run_query(request.query_params.get("q", "")))

    def _run_query(self, text: str) -> dict[str, Any]:
        query = Soql.parse(text)
        sobject = query.sobject
        if sobject not in self.schema:
            raise ApiError(400, "INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
        for path in query.fields:
            self._check_path(sobject, path)
        for path, op, literal in query.comparisons():
            self._check_filter(sobject, path, op, literal)
        for path, _ in query.order_by:
            if not self._check_path(sobject, path).filterable:
                raise ApiError(400, "INVALID_FIELD", f"field '{path}' can not be sorted in a query call")
        rows = [r for r in self._records[sobject].values() if query.matches(partial(self._value, sobject, r))]
        for name, descending in reversed(query.order_by):
            rows.sort(key=partial(self._sort_key, sobject, name), reverse=descending)
        if query.limit is not None:
            rows = rows[: query.limit]
        records = [self._project(sobject, r, query.fields) for r in rows]
        return {"totalSize": len(records), "done": True, "records": records}

    def _sort_key(self, sobject: str, path: str, record: dict[str, Any]) -> tuple[int, Any]:
        value = self._value(sobject, record, path)
        return (0, "") if value is None else (1, value)

    def _check_path(self, sobject: str, path: str) -> FieldSpec:
        """The field at ``path``, if the integration user may read it; else SOQL's INVALID_FIELD."""
        head, _, tail = path.partition(".")
        if not tail:
            field = self.schema[sobject].get(head)
            if field is None or not field.visible:
                raise ApiError(400, "INVALID_FIELD", f"No such column '{head}' on entity '{sobject}'")
            return field
        spec = next((f for f in self.schema[sobject].values() if f.relationship_name == head), None)
        targets = [self.schema[t][tail] for t in spec.reference_to if tail in self.schema.get(t, {})] if spec else []
        if spec is None or not spec.visible or "." in tail or not any(t.visible for t in targets):
            raise ApiError(400, "INVALID_FIELD", f"Didn't understand relationship '{path}' on entity '{sobject}'")
        return next(t for t in targets if t.visible)

    def _check_filter(self, sobject: str, path: str, op: str, literal: Any) -> None:
        """A WHERE comparison SOQL would refuse: a long text area, or a literal of the wrong type
        (developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/
        sforce_api_calls_soql_select_fieldexpression.htm: "Supply a value whose data type matches
        the field type"; dates and numbers are not quoted)."""
        field = self._check_path(sobject, path)
        if not field.filterable:
            raise ApiError(400, "INVALID_FIELD", f"field '{path}' can not be filtered in a query call")
        for value in literal if op == "IN" else [literal]:
            if value is None:
                if op not in ("=", "!="):
                    raise malformed(f"null can only be compared with = or != (field {path})")
                continue
            if field.type == "datetime" and not isinstance(value, datetime):
                raise ApiError(
                    400,
                    "INVALID_FIELD",
                    f"value of filter criterion for field '{path}' must be of type dateTime and should not be "
                    "enclosed in quotes",
                )
            if field.type in ("id", "reference") and not (isinstance(value, str) and _SF_ID.fullmatch(value)):
                raise ApiError(400, "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {value}")
            if field.type in TEXT_TYPES and not isinstance(value, str):
                raise ApiError(
                    400, "INVALID_FIELD", f"value of filter criterion for field '{path}' must be of type string"
                )

    def _value(self, sobject: str, record: dict[str, Any], path: str) -> Any:
        """The value at ``path`` (a field, or ``Relationship.Field`` one level up)."""
        head, _, tail = path.partition(".")
        if not tail:
            return record.get(head)
        parent = self._parent(sobject, record, head)
        return parent[1].get(tail) if parent else None

    def _parent(self, sobject: str, record: dict[str, Any], relationship: str) -> tuple[str, dict[str, Any]] | None:
        spec = next(f for f in self.schema[sobject].values() if f.relationship_name == relationship)
        parent_id = record.get(spec.name)
        for target in spec.reference_to:
            if parent_id in self._records.get(target, {}):
                return target, self._records[target][parent_id]
        return None

    def _project(self, sobject: str, record: dict[str, Any], paths: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attributes": {"type": sobject, "url": f"/services/data/v62.0/sobjects/{sobject}/{record['Id']}"}
        }
        for path in paths:
            head, _, tail = path.partition(".")
            if not tail:
                out[head] = record.get(head)
                continue
            parent = self._parent(sobject, record, head)
            if parent is None:
                out[head] = None
                continue
            nested = out.setdefault(head, {"attributes": {"type": parent[0]}})
            nested[tail] = parent[1].get(tail)
        return out


def _from_csv(spec: FieldSpec | None, text: str) -> Any:
    if spec is None:
        return text  # unknown columns are refused by _validate with Salesforce's error
    try:
        if spec.type == "boolean":
            if text.lower() not in ("true", "false"):
                return text  # refused by the field's check: not a boolean
            return text.lower() == "true"
        if spec.type == "int":
            return int(text)
        if spec.type == "double":
            return float(text)
    except ValueError:
        return text  # refused by the field's check
    return text
