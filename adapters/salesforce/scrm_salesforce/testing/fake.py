"""A stateful fake Salesforce org: OAuth, sObject Collections, SOQL, Bulk API 2.0, limits.

Serve it with :class:`~scrm_core.testing.fakes.FakeServer` over TLS (simple-salesforce
only builds ``https://`` URLs) and point a client at it::

    private_pem, public_pem = make_rsa_key_pair()
    fake = FakeSalesforce(jwt_public_key=public_pem)
    with FakeServer(fake.app, tls=True) as server:
        ...  # login_url = server.url, trust server.ca_file

What it speaks, in Salesforce's own shapes (the pages it follows are cited where used):

- ``POST /services/oauth2/token``: the JWT bearer flow (RS256 assertion checked against
  ``jwt_public_key``: ``iss`` = consumer key, ``sub`` = username, ``aud``, ``exp``), the
  client credentials flow and the legacy username-password flow. Sessions expire after
  ``session_seconds`` (or :meth:`FakeSalesforce.expire_sessions`) and are then refused
  with 401 ``INVALID_SESSION_ID``.
- ``GET sobjects/{X}/describe``: fields with ``externalId``, ``unique``, ``createable``,
  ``updateable``, ``nillable``, ``referenceTo``, ``relationshipName`` and picklist values.
- ``PATCH composite/sobjects/{X}/{ExternalIdField}``: upsert up to 200 records (more is a
  400 ``EXCEEDED_ID_LIMIT``), per-record results and errors (``REQUIRED_FIELD_MISSING``,
  ``INVALID_FIELD``, a foreign external id not found, ``DUPLICATE_VALUE``,
  ``INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST``), relationship references by external id.
- ``DELETE composite/sobjects?ids=...``: up to 200 ids.
- ``PATCH sobjects/{X}/{Id}``: update one record by Id, 204 No Content; errors as
  ``[{"message", "errorCode", "fields"}]`` (404 ``NOT_FOUND`` / ``ENTITY_IS_DELETED``, 400
  ``INVALID_FIELD``, ``DUPLICATE_VALUE`` for a unique field's value another record holds;
  developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_update_fields.htm).
- ``GET query?q=...``: the simple SOQL the adapter issues (one object, a field list with
  one level of parent relationship, ``WHERE`` with ``= != < <= > >= IN`` joined by ``AND``
  / ``OR`` and parentheses, ``ORDER BY``, ``LIMIT``); anything else is a 400
  ``MALFORMED_QUERY``.
- Bulk API 2.0 ingest jobs for ``upsert``: create, upload CSV, ``UploadComplete`` (the job
  is processed at once), job info, successful / failed / unprocessed results.
- ``Sforce-Limit-Info: api-usage=N/M`` on every data response; once the daily budget is
  spent every call is a 403 ``REQUEST_LIMIT_EXCEEDED``.

``faults`` (a :class:`FaultInjector`) is rolled once per data request: ``rate_limited``
answers 403 ``REQUEST_LIMIT_EXCEEDED``, ``server_error`` a 503, ``timeout`` applies the
request then sleeps ``faults.timeout_seconds`` before answering, ``lost_response`` applies
it then answers 502; ``partial_rate`` fails single collection records with the transient
``UNABLE_TO_LOCK_ROW``.

Tests read the org with :meth:`FakeSalesforce.find`, :meth:`FakeSalesforce.count` and
:meth:`FakeSalesforce.records`, write as an agent would with :meth:`FakeSalesforce.insert`
(or :meth:`FakeSalesforce.agent_reply`, an outbound SocialPost answering a post), and count
calls in :attr:`FakeSalesforce.requests`.
"""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import operator
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import parse_qs

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from scrm_core.testing.fakes.faults import Fault, FaultInjector

__all__ = [
    "COLLECTION_LIMIT",
    "FakeSalesforce",
    "FieldSpec",
    "SalesforceRequest",
    "make_rsa_key_pair",
]

#: Records per sObject Collections call (developer.salesforce.com/docs/platform/api-rest/guide/
#: resources-composite-sobjects-collections-upsert.html).
COLLECTION_LIMIT = 200
API_VERSION_PATH = re.compile(r"^/services/data/v(\d+\.\d+)/(.*)$")
ID_PREFIX = {"Contact": "003", "Case": "500", "Lead": "00Q", "SocialPersona": "0SP", "SocialPost": "0ST"}
SCRM_KEY = "Scrm_Key__c"
PROVIDERS = ["Facebook", "Instagram", "LinkedIn", "Other", "Twitter", "WhatsApp", "YouTube"]


def make_rsa_key_pair() -> tuple[str, str]:
    """A throwaway RSA key pair for the JWT bearer flow: (private PEM, public PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private.decode(), public.decode()


# ---------------------------------------------------------------- schema


@dataclass
class FieldSpec:
    """One field of a describe result."""

    name: str
    type: str = "string"
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

    @property
    def required_on_create(self) -> bool:
        return self.createable and not self.nillable and not self.defaulted

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "externalId": self.external_id,
            "unique": self.unique,
            "createable": self.createable,
            "updateable": self.updateable,
            "nillable": self.nillable,
            "defaultedOnCreate": self.defaulted,
            "referenceTo": self.reference_to,
            "relationshipName": self.relationship_name,
            "restrictedPicklist": self.restricted,
            "picklistValues": [
                {"value": v, "label": v, "active": True, "defaultValue": False} for v in self.picklist or []
            ],
        }


def _system_fields() -> list[FieldSpec]:
    return [
        FieldSpec("Id", "id", createable=False, updateable=False, nillable=False, defaulted=True),
        FieldSpec("CreatedDate", "datetime", createable=False, updateable=False, nillable=False, defaulted=True),
        FieldSpec("LastModifiedDate", "datetime", createable=False, updateable=False, nillable=False, defaulted=True),
    ]


def _ref(name: str, relationship: str, *targets: str, nillable: bool = True) -> FieldSpec:
    return FieldSpec(name, "reference", reference_to=list(targets), relationship_name=relationship, nillable=nillable)


def _picklist(name: str, values: list[str], *, restricted: bool = False, defaulted: bool = False) -> FieldSpec:
    return FieldSpec(name, "picklist", picklist=values, restricted=restricted, defaulted=defaulted)


def standard_schema() -> dict[str, list[FieldSpec]]:
    """The standard fields scrm uses, as the object reference describes them."""
    return {
        "Contact": [
            FieldSpec("FirstName"),
            FieldSpec("LastName", nillable=False),
            FieldSpec("Email", "email"),
            FieldSpec("Description", "textarea"),
        ],
        "SocialPersona": [
            FieldSpec("Name", nillable=False),
            _ref("ParentId", "Parent", "Account", "Contact", "Lead", nillable=False),
            _picklist("Provider", PROVIDERS, restricted=True),
            FieldSpec("ExternalId"),
            FieldSpec("ProfileUrl", "url"),
            FieldSpec("Followers", "int"),
            FieldSpec("IsVerified", "boolean", nillable=False, defaulted=True),
            FieldSpec("RealName"),
            FieldSpec("Bio", "textarea"),
        ],
        "SocialPost": [
            FieldSpec("Name", nillable=False),
            _picklist("Provider", PROVIDERS, restricted=True),
            FieldSpec("Handle"),
            FieldSpec("ExternalPostId"),
            FieldSpec("Posted", "datetime", nillable=False),
            FieldSpec("PostUrl", "url"),
            _picklist("MessageType", ["Comment", "Direct", "Post", "PrivateMessage", "Reply"], restricted=True),
            FieldSpec("IsOutbound", "boolean", nillable=False, defaulted=True),
            _ref("ParentId", "Parent", "Case", "Account", "Contact", "Lead"),
            _ref("PersonaId", "Persona", "SocialPersona"),
            _ref("WhoId", "Who", "Contact", "Lead", "Account"),
            _ref("ReplyToId", "ReplyTo", "SocialPost"),
            FieldSpec("Content", "textarea"),
            FieldSpec("Headline"),
            FieldSpec("Language"),
            _picklist("Sentiment", ["Positive", "Neutral", "Negative"]),
            _picklist("Status", ["Sending", "Sent", "Failed", "Deleted"]),
        ],
        "Case": [
            FieldSpec("Subject"),
            _picklist("Status", ["New", "Working", "Escalated", "Closed"], defaulted=True),
            _picklist("Priority", ["High", "Medium", "Low"], defaulted=True),
            _picklist("Origin", ["Phone", "Email", "Web", "Social"]),
            _ref("ContactId", "Contact", "Contact"),
            FieldSpec("Description", "textarea"),
        ],
        "Lead": [
            FieldSpec("LastName", nillable=False),
            FieldSpec("Company", nillable=False),
            _picklist("Status", ["Open - Not Contacted", "Working - Contacted", "Closed - Converted"], defaulted=True),
            _picklist("LeadSource", ["Web", "Phone Inquiry", "Partner Referral", "Other"]),
            FieldSpec("Email", "email"),
        ],
    }


def scrm_custom_fields() -> dict[str, list[FieldSpec]]:
    """The custom fields docs/adapters/salesforce.md asks an admin to create."""
    key = [FieldSpec(SCRM_KEY, external_id=True, unique=True)]
    return {
        "Contact": key,
        "SocialPersona": key,
        "Case": key,
        "Lead": key,
        "SocialPost": [
            *key,
            FieldSpec("Scrm_Conversation_Key__c"),
            FieldSpec("Scrm_Deleted__c", "boolean", nillable=False, defaulted=True),
            FieldSpec("Scrm_Labels__c", "textarea"),
            FieldSpec("Scrm_Sentiment_Score__c", "double"),
        ],
    }


# ---------------------------------------------------------------- errors


class ApiError(Exception):
    """A whole-request refusal, in REST API's ``[{"message", "errorCode"}]`` shape (``fields`` when given)."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def response(self) -> JSONResponse:
        item: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            item["fields"] = self.fields
        return JSONResponse([item], status_code=self.status)


class RecordError(Exception):
    """One record refused, in the ``{"statusCode", "message", "fields"}`` shape."""

    def __init__(self, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.fields = code, message, fields or []

    def as_json(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


def malformed(message: str) -> ApiError:
    return ApiError(400, "MALFORMED_QUERY", message)


# ---------------------------------------------------------------- request log


@dataclass(frozen=True)
class SalesforceRequest:
    """One request the fake answered: ``records`` is how many the call carried (0 if none)."""

    method: str
    path: str
    status: int
    records: int = 0
    error_code: str | None = None


# ---------------------------------------------------------------- the org


class FakeSalesforce:
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
        self.faults = faults or FaultInjector()
        self.clock = clock
        self.requests: list[SalesforceRequest] = []
        self.token_requests: list[str] = []  # grant types asked for, successful or not
        self.schema: dict[str, dict[str, FieldSpec]] = {
            name: {f.name: f for f in [*_system_fields(), *fields]} for name, fields in standard_schema().items()
        }
        if scrm_fields:
            for sobject, fields in scrm_custom_fields().items():
                for spec in fields:
                    self.add_field(sobject, spec)
        self.object_access: dict[str, dict[str, bool]] = {
            name: {"createable": True, "updateable": True, "deletable": True, "queryable": True} for name in self.schema
        }
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

    def remove_field(self, sobject: str, name: str) -> None:
        """As if an admin deleted the field (e.g. the external id), to exercise ``check()``."""
        self.schema[sobject].pop(name, None)

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
        return [
            Route("/services/oauth2/token", self._token, methods=["POST"]),
            Route("/services/data/{version}/sobjects/{sobject}/describe", data(self._describe), methods=["GET"]),
            Route(
                "/services/data/{version}/composite/sobjects/{sobject}/{ext_field}",
                data(self._upsert_collection),
                methods=["PATCH"],
            ),
            Route("/services/data/{version}/composite/sobjects", data(self._delete_collection), methods=["DELETE"]),
            Route("/services/data/{version}/sobjects/{sobject}/{record_id}", data(self._update), methods=["PATCH"]),
            Route("/services/data/{version}/query", data(self._query), methods=["GET"]),
            Route("/services/data/{version}/query/", data(self._query), methods=["GET"]),
            Route("/services/data/{version}/jobs/ingest", data(self._create_job), methods=["POST"]),
            Route("/services/data/{version}/jobs/ingest/", data(self._create_job), methods=["POST"]),
            Route("/services/data/{version}/jobs/ingest/{job_id}", data(self._job), methods=["GET", "PATCH"]),
            Route("/services/data/{version}/jobs/ingest/{job_id}/batches", data(self._upload_job), methods=["PUT"]),
            Route("/services/data/{version}/jobs/ingest/{job_id}/{results}", data(self._job_results), methods=["GET"]),
        ]

    def _data_endpoint(self, handler: Callable[[Request, Any], Response]) -> Callable[[Request], Any]:
        """Session check, API budget, fault injection, ``Sforce-Limit-Info`` and the request log."""

        async def endpoint(request: Request) -> Response:
            body = await request.body()
            fault = Fault.none
            count = 0
            try:
                with self._lock:
                    self._authorize(request)
                    self.api_used += 1
                    if self.api_used > self.api_limit:
                        raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
                    fault = self.faults.roll()
                    if fault is Fault.rate_limited:
                        raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
                    if fault is Fault.server_error:
                        raise ApiError(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable.")
                    response = handler(request, body)
                    count = int(response.headers.get("x-fake-records", "0"))
            except ApiError as exc:
                response = exc.response()
            if fault is Fault.lost_response:
                response = PlainTextResponse("Bad Gateway", status_code=502)
            elif fault is Fault.timeout:
                await asyncio.sleep(self.faults.timeout_seconds)
            response.headers["Sforce-Limit-Info"] = f"api-usage={min(self.api_used, self.api_limit)}/{self.api_limit}"
            self._log(request, response, count)
            return response

        return endpoint

    def _log(self, request: Request, response: Response, records: int) -> None:
        code = None
        if response.status_code >= 400 and isinstance(response, JSONResponse):
            body = bytes(response.body)
            match = re.search(rb'"errorCode":\s*"([A-Z_]+)"', body)
            code = match.group(1).decode() if match else None
        with self._lock:
            self.requests.append(
                SalesforceRequest(request.method, request.url.path, response.status_code, records, code)
            )

    def _authorize(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip()
        expires = self._sessions.get(token)
        if not token or expires is None or expires < self.clock():
            raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")

    # ------------------------------------------------------------ OAuth

    async def _token(self, request: Request) -> Response:
        # Parsed by hand: starlette's request.form() needs python-multipart, which is not a dependency.
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode(), keep_blank_values=True).items()}
        grant = form.get("grant_type", "")
        with self._lock:
            self.token_requests.append(grant)
        try:
            if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
                self._check_assertion(form.get("assertion", ""), request)
            elif grant == "client_credentials":
                self._check_client(form.get("client_id", ""), form.get("client_secret", ""))
            elif grant == "password":
                self._check_client(form.get("client_id", ""), form.get("client_secret", ""))
                if form.get("username") != self.username or form.get("password") != self.password:
                    raise OAuthError("invalid_grant", "authentication failure")
            else:
                raise OAuthError("unsupported_grant_type", "grant type not supported")
        except OAuthError as exc:
            return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=400)
        token = "00Dfake!" + secrets.token_urlsafe(24)
        with self._lock:
            self._sessions[token] = self.clock() + self.session_seconds
        instance = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "access_token": token,
                "instance_url": instance,
                "id": f"{instance}/id/00Dfake/005fake",
                "token_type": "Bearer",
                "issued_at": str(int(self.clock() * 1000)),
                "scope": "api",
            }
        )

    def _check_client(self, client_id: str, secret: str) -> None:
        if client_id != self.consumer_key or not secrets.compare_digest(secret, self.client_secret):
            raise OAuthError("invalid_client", "invalid client credentials")

    def _check_assertion(self, assertion: str, request: Request) -> None:
        if self.jwt_public_key is None:
            raise OAuthError("invalid_grant", "no certificate is configured for this connected app")
        audiences = [*self.audiences, str(request.base_url).rstrip("/")]
        try:
            claims = jwt.decode(
                assertion,
                self.jwt_public_key,
                algorithms=["RS256"],
                audience=audiences,
                issuer=self.consumer_key,
                options={"require": ["iss", "sub", "aud", "exp"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise OAuthError("invalid_grant", "expired authorization code") from exc
        except jwt.InvalidAudienceError as exc:
            raise OAuthError("invalid_grant", "audience is invalid") from exc
        except jwt.InvalidIssuerError as exc:
            raise OAuthError("invalid_client_id", "client identifier invalid") from exc
        except jwt.PyJWTError as exc:
            raise OAuthError("invalid_grant", "invalid assertion") from exc
        if claims.get("sub") != self.username:
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")

    # ------------------------------------------------------------ describe

    def _describe(self, request: Request, body: bytes) -> Response:
        sobject = self._sobject(request.path_params["sobject"])
        access = self.object_access[sobject]
        return JSONResponse(
            {
                "name": sobject,
                **access,
                "fields": [spec.describe() for spec in self.schema[sobject].values()],
            }
        )

    def _sobject(self, name: str) -> str:
        if name not in self.schema:
            raise ApiError(404, "NOT_FOUND", f"The requested resource does not exist: sObject type '{name}'")
        return name

    # ------------------------------------------------------------ collections

    def _upsert_collection(self, request: Request, body: bytes) -> Response:
        sobject = self._sobject(request.path_params["sobject"])
        ext_field = request.path_params["ext_field"]
        spec = self.schema[sobject].get(ext_field)
        if spec is None or not spec.external_id:
            raise ApiError(
                400,
                "INVALID_FIELD",
                f"Field name provided, {ext_field} is not an External ID or indexed field for {sobject}",
            )
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
        if existing is None:
            return self._create(sobject, {**fields, ext_field: key}), True
        record = self._records[sobject][existing]
        record.update(fields)
        record["LastModifiedDate"] = self._now()
        return existing, False

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
            if spec is None:
                raise RecordError("INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}", [name])
            if not (spec.createable if creating else spec.updateable):
                raise RecordError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {name}. Please check the security settings of this field.",
                    [name],
                )
            if spec.picklist is not None and spec.restricted and value not in spec.picklist:
                raise RecordError(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{spec.name}: bad value for restricted picklist field: {value}",
                    [name],
                )
        if creating:
            missing = [s.name for s in schema.values() if s.required_on_create and fields.get(s.name) in (None, "")]
            if missing:
                raise RecordError(
                    "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
                )

    def _by_key(self, sobject: str, key_field: str, value: Any) -> str | None:
        """The Id of the record whose (external id) ``key_field`` is ``value``; indexed, as Salesforce does."""
        index = self._index.get((sobject, key_field))
        if index is None:
            index = self._index[(sobject, key_field)] = {
                r[key_field]: rid for rid, r in self._records[sobject].items() if r.get(key_field) is not None
            }
        return index.get(value)

    def _create(self, sobject: str, fields: dict[str, Any]) -> str:
        prefix = ID_PREFIX.get(sobject, "a00")
        record_id = f"{prefix}{'0' * 6}{next(self._ids):06d}AAA"
        defaults = {
            s.name: (False if s.type == "boolean" else None)
            for s in self.schema[sobject].values()
            if s.name not in ("Id", "CreatedDate", "LastModifiedDate")
        }
        now = self._now()
        record = {**defaults, **fields, "Id": record_id, "CreatedDate": now, "LastModifiedDate": now}
        self._records[sobject][record_id] = record
        for (indexed, key_field), index in self._index.items():
            if indexed == sobject and record.get(key_field) is not None:
                index[record[key_field]] = record_id
        return record_id

    def _now(self) -> str:
        """Salesforce datetimes have second precision; never earlier than the last one given."""
        second = max(int(self.clock()), self._last_created)
        self._last_created = second
        return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")

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
        except RecordError as exc:
            raise ApiError(400, exc.code, exc.message, exc.fields) from None
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
        record["LastModifiedDate"] = self._now()
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
        query = Soql.parse(request.query_params.get("q", ""))
        sobject = query.sobject
        if sobject not in self.schema:
            raise ApiError(400, "INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
        for path in [*query.fields, *query.condition_fields(), *(f for f, _ in query.order_by)]:
            self._check_path(sobject, path)
        rows = [r for r in self._records[sobject].values() if query.matches(partial(self._value, sobject, r))]
        for name, descending in reversed(query.order_by):
            rows.sort(key=partial(self._sort_key, sobject, name), reverse=descending)
        if query.limit is not None:
            rows = rows[: query.limit]
        records = [self._project(sobject, r, query.fields) for r in rows]
        return JSONResponse({"totalSize": len(records), "done": True, "records": records})

    def _sort_key(self, sobject: str, path: str, record: dict[str, Any]) -> tuple[int, Any]:
        value = self._value(sobject, record, path)
        return (0, "") if value is None else (1, value)

    def _check_path(self, sobject: str, path: str) -> None:
        head, _, tail = path.partition(".")
        if not tail:
            if head not in self.schema[sobject]:
                raise ApiError(400, "INVALID_FIELD", f"No such column '{head}' on entity '{sobject}'")
            return
        spec = next((f for f in self.schema[sobject].values() if f.relationship_name == head), None)
        if spec is None or "." in tail or not any(tail in self.schema.get(t, {}) for t in spec.reference_to):
            raise ApiError(400, "INVALID_FIELD", f"Didn't understand relationship '{path}' on entity '{sobject}'")

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

    # ------------------------------------------------------------ Bulk API 2.0 ingest

    def _create_job(self, request: Request, body: bytes) -> Response:
        spec = json.loads(body or b"{}")
        sobject = self._sobject(str(spec.get("object", "")))
        if spec.get("operation") != "upsert":
            raise ApiError(400, "FEATURENOTENABLED", "this fake only runs upsert ingest jobs")
        ext_field = spec.get("externalIdFieldName") or ""
        if not (field_spec := self.schema[sobject].get(ext_field)) or not field_spec.external_id:
            raise ApiError(400, "INVALIDJOB", f"externalIdFieldName {ext_field!r} is not an External ID of {sobject}")
        if spec.get("columnDelimiter", "COMMA") != "COMMA" or spec.get("lineEnding", "LF") != "LF":
            raise ApiError(400, "INVALIDJOB", "this fake reads COMMA-delimited, LF-ended CSV only")
        job_id = f"750{next(self._ids):012d}"
        self._jobs[job_id] = {
            "id": job_id,
            "object": sobject,
            "operation": "upsert",
            "externalIdFieldName": ext_field,
            "state": "Open",
            "contentType": "CSV",
            "columnDelimiter": "COMMA",
            "lineEnding": "LF",
            "numberRecordsProcessed": 0,
            "numberRecordsFailed": 0,
            "csv": "",
            "successful": [],
            "failed": [],
            "header": [],
        }
        return JSONResponse(self._job_info(job_id))

    def _job_info(self, job_id: str) -> dict[str, Any]:
        return {k: v for k, v in self._jobs[job_id].items() if k not in ("csv", "successful", "failed", "header")}

    def _get_job(self, job_id: str) -> dict[str, Any]:
        if job_id not in self._jobs:
            raise ApiError(404, "NOT_FOUND", f"Job {job_id} not found")
        return self._jobs[job_id]

    def _upload_job(self, request: Request, body: bytes) -> Response:
        job = self._get_job(request.path_params["job_id"])
        if job["state"] != "Open":
            raise ApiError(409, "INVALIDJOBSTATE", "Job data can only be uploaded to an Open job")
        job["csv"] += body.decode("utf-8")
        rows = max(0, job["csv"].count("\n") - 1)
        return Response(status_code=201, headers={"x-fake-records": str(rows)})

    def _job(self, request: Request, body: bytes) -> Response:
        job_id = request.path_params["job_id"]
        job = self._get_job(job_id)
        if request.method == "PATCH":
            state = json.loads(body or b"{}").get("state")
            if state == "Aborted":
                job["state"] = "Aborted"
            elif state == "UploadComplete" and job["state"] == "Open":
                job["state"] = "UploadComplete"
                response = JSONResponse(self._job_info(job_id))
                self._run_job(job)
                return response
            else:
                raise ApiError(400, "INVALIDJOBSTATE", f"cannot move job from {job['state']} to {state}")
        return JSONResponse(self._job_info(job_id))

    def _run_job(self, job: dict[str, Any]) -> None:
        """Process the uploaded CSV as Salesforce would once the upload is complete."""
        sobject, ext_field = job["object"], job["externalIdFieldName"]
        reader = csv.reader(io.StringIO(job["csv"]))
        header = next(reader, [])
        job["header"] = header
        seen: set[str] = set()
        for row in reader:
            values = dict(zip(header, row, strict=False))
            key = values.get(ext_field, "")
            try:
                if key in seen:
                    raise RecordError("DUPLICATE_VALUE", f"Duplicate external id specified: {key}", [ext_field])
                seen.add(key)
                fields = self._csv_fields(sobject, values, ext_field)
                record_id, created = self._upsert(sobject, ext_field, key, fields)
                job["successful"].append([record_id, "true" if created else "false", *row])
            except RecordError as exc:
                job["failed"].append(["", f"{exc.code}:{exc.message}", *row])
        job["numberRecordsProcessed"] = len(job["successful"]) + len(job["failed"])
        job["numberRecordsFailed"] = len(job["failed"])
        job["state"] = "JobComplete"

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

    def _job_results(self, request: Request, body: bytes) -> Response:
        job = self._get_job(request.path_params["job_id"])
        kind = request.path_params["results"]
        columns = {
            "successfulResults": (["sf__Id", "sf__Created"], job["successful"]),
            "failedResults": (["sf__Id", "sf__Error"], job["failed"]),
            "unprocessedrecords": ([], []),
        }
        if kind not in columns:
            raise ApiError(404, "NOT_FOUND", f"no such job resource: {kind}")
        prefix, rows = columns[kind]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([*prefix, *job["header"]])
        writer.writerows(rows)
        return PlainTextResponse(out.getvalue(), media_type="text/csv")


class OAuthError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


def _from_csv(spec: FieldSpec | None, text: str) -> Any:
    if spec is None:
        return text  # unknown columns are refused by _validate with Salesforce's error
    if spec.type == "boolean":
        return text.lower() == "true"
    if spec.type == "int":
        return int(text)
    if spec.type == "double":
        return float(text)
    return text


# ---------------------------------------------------------------- a small SOQL reader

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*')
      | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op><=|>=|!=|=|<|>|\(|\)|,)
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_ORDERING: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_UNESCAPE = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}
_KEYWORDS = {
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "IN",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "LIMIT",
    "NULL",
    "TRUE",
    "FALSE",
}


def _tokens(text: str) -> Iterator[tuple[str, Any]]:
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise malformed(f"unexpected token at position {pos}: {text[pos : pos + 20]!r}")
        pos = match.end()
        kind = match.lastgroup or ""
        raw = match.group(kind)
        if kind == "string":
            yield "value", re.sub(r"\\(.)", lambda m: _unescape(m.group(1)), raw[1:-1])
        elif kind == "datetime":
            yield "value", datetime.fromisoformat(raw.replace("Z", "+00:00"))
        elif kind == "number":
            yield "value", float(raw) if "." in raw else int(raw)
        elif kind == "word" and raw.upper() in ("NULL", "TRUE", "FALSE"):
            yield "value", {"NULL": None, "TRUE": True, "FALSE": False}[raw.upper()]
        elif kind == "word" and raw.upper() in _KEYWORDS:
            yield "keyword", raw.upper()
        else:
            yield kind, raw


def _unescape(char: str) -> str:
    if char not in _UNESCAPE:
        raise malformed(f"invalid escape sequence \\{char}")
    return _UNESCAPE[char]


Condition = tuple[str, Any, Any]  # ("cmp", path, (op, value)) | ("and"/"or", left, right)


@dataclass
class Soql:
    """``SELECT paths FROM X [WHERE ...] [ORDER BY ...] [LIMIT n]``, nothing more."""

    fields: list[str]
    sobject: str
    where: Condition | None
    order_by: list[tuple[str, bool]]
    limit: int | None

    @classmethod
    def parse(cls, text: str) -> Soql:
        tokens = list(_tokens(text))
        reader = _Reader(tokens)
        reader.expect("keyword", "SELECT")
        fields = [reader.expect("word")]
        while reader.accept("op", ","):
            fields.append(reader.expect("word"))
        reader.expect("keyword", "FROM")
        sobject = reader.expect("word")
        where = None
        if reader.accept("keyword", "WHERE"):
            where = reader.disjunction()
        order_by: list[tuple[str, bool]] = []
        if reader.accept("keyword", "ORDER"):
            reader.expect("keyword", "BY")
            while True:
                name = reader.expect("word")
                descending = bool(reader.accept("keyword", "DESC"))
                if not descending:
                    reader.accept("keyword", "ASC")
                order_by.append((name, descending))
                if not reader.accept("op", ","):
                    break
        limit = None
        if reader.accept("keyword", "LIMIT"):
            value = reader.expect("value")
            if not isinstance(value, int) or value < 0:
                raise malformed("LIMIT needs a whole number")
            limit = value
        if not reader.done():
            raise malformed(f"unexpected {reader.peek()[1]!r} (this fake reads simple queries only)")
        return cls(fields, sobject, where, order_by, limit)

    def condition_fields(self) -> list[str]:
        out: list[str] = []

        def walk(node: Condition | None) -> None:
            if node is None:
                return
            if node[0] == "cmp":
                out.append(node[1])
            else:
                walk(node[1])
                walk(node[2])

        walk(self.where)
        return out

    def matches(self, value_of: Callable[[str], Any]) -> bool:
        def test(node: Condition | None) -> bool:
            if node is None:
                return True
            if node[0] == "and":
                return test(node[1]) and test(node[2])
            if node[0] == "or":
                return test(node[1]) or test(node[2])
            op, literal = node[2]
            return _compare(value_of(node[1]), op, literal)

        return test(self.where)


class _Reader:
    def __init__(self, tokens: list[tuple[str, Any]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> tuple[str, Any]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", None)

    def done(self) -> bool:
        return self.pos >= len(self.tokens)

    def accept(self, kind: str, value: Any = None) -> Any:
        token = self.peek()
        if token[0] == kind and (value is None or token[1] == value):
            self.pos += 1
            return token[1] if token[1] is not None else True
        return None

    def expect(self, kind: str, value: Any = None) -> Any:
        token = self.peek()
        if token[0] != kind or (value is not None and token[1] != value):
            raise malformed(f"expected {value or kind}, found {token[1]!r}")
        self.pos += 1
        return token[1]

    def disjunction(self) -> Condition:
        node = self.conjunction()
        while self.accept("keyword", "OR"):
            node = ("or", node, self.conjunction())
        return node

    def conjunction(self) -> Condition:
        node = self.comparison()
        while self.accept("keyword", "AND"):
            node = ("and", node, self.comparison())
        return node

    def comparison(self) -> Condition:
        if self.accept("op", "("):
            node = self.disjunction()
            self.expect("op", ")")
            return node
        path = self.expect("word")
        if self.accept("keyword", "IN"):
            self.expect("op", "(")
            values = [self.expect("value")]
            while self.accept("op", ","):
                values.append(self.expect("value"))
            self.expect("op", ")")
            return ("cmp", path, ("IN", values))
        op = self.expect("op")
        if op not in ("=", "!=", "<", "<=", ">", ">="):
            raise malformed(f"unsupported operator {op!r}")
        return ("cmp", path, (op, self.expect("value")))


def _compare(value: Any, op: str, literal: Any) -> bool:
    if op == "IN":
        return value in literal
    if isinstance(literal, datetime) and isinstance(value, str):
        value = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    if op == "=":
        return bool(value == literal)
    if op == "!=":
        return bool(value != literal)
    if value is None or literal is None:
        return False  # SOQL: null is neither less nor greater than anything
    return bool(_ORDERING[op](value, literal))
