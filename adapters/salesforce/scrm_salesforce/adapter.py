"""``SalesforceCrm``: scrm's records in Salesforce's social objects, upserted by external id.

Writes go through sObject Collections (``PATCH composite/sobjects/{X}/{ExternalIdField}``,
up to 200 records a call, ``allOrNone: false`` so one bad record fails alone;
developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-sobjects-collections-upsert.html).

Backfills: with ``bulk_threshold`` set (the default), ``limits.max_batch`` is raised to
10,000 so the sink can hand over a backlog in one call. A call with at least
``bulk_threshold`` records becomes one Bulk API 2.0 ingest job (a handful of API requests
for up to 10,000 records); a smaller one is sent as collections of 200. Live traffic keeps
the sink's short batch window, so it still goes out as small collection calls.

Limits: after every call the ``Sforce-Limit-Info`` usage is reported to the rate budget
(``observe_quota``, a rolling 24 h quota); a 403 ``REQUEST_LIMIT_EXCEEDED`` pauses the
budget and raises ``RetryableError`` so the sink stops sending and the outbox keeps the
records until the budget allows again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from pydantic import SecretStr
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound
from simple_salesforce.format import format_soql

from scrm_core import (
    AdapterContext,
    AdapterSettings,
    CheckProblem,
    CrmAdapter,
    CrmCapability,
    CrmLimits,
    CrmObject,
    CrmOperation,
    OperationResult,
    PendingReply,
)
from scrm_core.errors import FatalError, RetryableError

from .bulk import bulk_results, csv_rows, read_csv
from .check import problems_in_describe
from .client import ApiLimitExceeded, SalesforceConnection, error_items
from .mapping import OBJECTS, Mapper
from .results import check_setup_errors, collection_result
from .settings import BULK_MAX_BATCH, SalesforceSettings

__all__ = ["SalesforceCrm"]

T = TypeVar("T")

COLLECTION_SIZE = 200  # sObject Collections' cap per call
QUERY_KEYS = 100  # external keys per SOQL IN (...) list, to keep the query URL short
REPLY_PAGE = 200
DAY_SECONDS = 86_400
SF_DATETIME = "%Y-%m-%dT%H:%M:%S.%f%z"
_SF_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class SalesforceCrm(CrmAdapter):
    """Salesforce: Contact, SocialPersona, Case, Lead and SocialPost, via simple-salesforce."""

    name = "salesforce"
    Settings = SalesforceSettings
    capabilities = frozenset(CrmCapability)
    limits = CrmLimits(max_batch=COLLECTION_SIZE)

    def __init__(self, settings: AdapterSettings, context: AdapterContext) -> None:
        if not isinstance(settings, SalesforceSettings):
            raise TypeError(f"SalesforceCrm needs SalesforceCrm.Settings, got {type(settings).__name__}")
        super().__init__(settings, context)
        self.settings: SalesforceSettings = settings
        if settings.bulk_threshold is not None:
            self.limits = CrmLimits(max_batch=BULK_MAX_BATCH)
        self.mapper = Mapper(settings)
        self._connection: SalesforceConnection | None = None

    # ------------------------------------------------------------ life cycle

    async def start(self) -> None:
        if self.settings.auth == "password":
            self.context.logger.warning(
                "salesforce: auth = 'password' uses the username-password flow Salesforce is retiring; "
                "move to auth = 'jwt' or 'client_credentials' (docs/adapters/salesforce.md)"
            )
        await self._run("login", lambda sf: None)

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    @property
    def connection(self) -> SalesforceConnection:
        if self._connection is None:
            self._connection = SalesforceConnection(self.settings, self._private_key(), self.context.logger)
        return self._connection

    def _private_key(self) -> SecretStr | None:
        if self.settings.auth != "jwt" or not self.settings.private_key_file:
            return None
        path = self.context.resolve_path(self.settings.private_key_file)
        try:
            return SecretStr(path.read_text())
        except OSError as exc:
            raise FatalError(
                f"salesforce: cannot read private_key_file {str(path)!r} ({exc.strerror}); point it at the PEM "
                "private key of the certificate uploaded to the connected app"
            ) from None

    async def _run(self, what: str, fn: Callable[[Salesforce], T]) -> T:
        """One blocking library call in a worker thread; its rate signals go to the budget."""
        connection = self.connection
        try:
            return await self.context.run_blocking(connection.call, what, fn)
        except ApiLimitExceeded as exc:
            self.budget.pause(exc.retry_after or self.settings.limit_pause_seconds, reason="REQUEST_LIMIT_EXCEEDED")
            raise
        finally:
            if (usage := connection.take_usage()) is not None:
                self.budget.observe_quota(used=usage[0], limit=usage[1], period_seconds=DAY_SECONDS)

    # ------------------------------------------------------------ writes

    async def apply(self, ops: Sequence[CrmOperation]) -> list[OperationResult]:
        if not ops:
            return []
        obj = ops[0].object
        if any(op.object is not obj for op in ops):
            raise FatalError("salesforce: apply() got several object types in one batch", detail=str(obj))
        await self._learn_providers(obj)
        threshold = self.settings.bulk_threshold
        if threshold is not None and len(ops) >= threshold:
            return await self._apply_bulk(obj, ops)
        results: list[OperationResult] = []
        for chunk in _chunks(ops, COLLECTION_SIZE):
            try:
                results += await self._upsert_collection(obj, chunk)
            except RetryableError as exc:
                if not results:
                    raise
                # What went out is settled; the rest waits for another try instead of resending it all.
                results += [
                    OperationResult(external_key=op.external_key, ok=False, error=f"not sent: {exc}", retryable=True)
                    for op in ops[len(results) :]
                ]
                break
        return results

    async def _upsert_collection(self, obj: CrmObject, ops: Sequence[CrmOperation]) -> list[OperationResult]:
        sobject = OBJECTS[obj].sobject
        path = f"composite/sobjects/{sobject}/{self.mapper.key_field}"
        body = {"allOrNone": False, "records": [self.mapper.json_record(op) for op in ops]}
        raw = await self._run(f"upsert {sobject}", lambda sf: sf.restful(path, method="PATCH", json=body))
        if not isinstance(raw, list) or len(raw) != len(ops):
            raise RetryableError(f"salesforce: upsert {sobject} answered {len(raw or [])} results for {len(ops)}")
        check_setup_errors(sobject, raw)
        return [collection_result(op.external_key, r) for op, r in zip(ops, raw, strict=True)]

    async def _apply_bulk(self, obj: CrmObject, ops: Sequence[CrmOperation]) -> list[OperationResult]:
        sobject = OBJECTS[obj].sobject
        rows = csv_rows(self.mapper, ops)
        key_field, wait = self.mapper.key_field, self.settings.bulk_poll_seconds

        def run_job(sf: Salesforce) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
            job_type = getattr(sf.bulk2, sobject)
            (job,) = job_type.upsert(records=rows, external_id_field=key_field, batch_size=len(rows), wait=wait)
            job_id = job["job_id"]
            return read_csv(job_type.get_successful_records(job_id)), read_csv(job_type.get_failed_records(job_id))

        successful, failed = await self._run(f"Bulk API 2.0 upsert of {len(ops)} {sobject}", run_job)
        check_setup_errors(sobject, [{"errors": [_bulk_error(row)]} for row in failed])
        return bulk_results(self.mapper, ops, successful, failed)

    async def _learn_providers(self, obj: CrmObject) -> None:
        """Read the org's Provider picklist once, so an unknown network becomes "Other", not an error."""
        if obj not in (CrmObject.profile, CrmObject.message) or self.mapper.allowed_providers is not None:
            return
        describe = await self._describe("SocialPost")
        provider: dict[str, Any] = next((f for f in describe.get("fields", []) if f.get("name") == "Provider"), {})
        self.mapper.allowed_providers = {v["value"] for v in provider.get("picklistValues", []) if v.get("active")}

    async def _describe(self, sobject: str) -> dict[str, Any]:
        def describe(sf: Salesforce) -> dict[str, Any]:
            return dict(sf.restful(f"sobjects/{sobject}/describe") or {})

        return await self._run(f"describe {sobject}", describe)

    # ------------------------------------------------------------ erase

    async def erase(self, records: Mapping[CrmObject, Sequence[str]]) -> int:
        """Delete by external key, referrers first (messages before the contact they name)."""
        erased = 0
        for obj in sorted(records, key=lambda o: list(CrmObject).index(o), reverse=True):
            ids = await self._ids_for(obj, records[obj])
            for chunk in _chunks(ids, COLLECTION_SIZE):
                raw = await self._run(f"delete {OBJECTS[obj].sobject}", partial(_delete, chunk))
                erased += sum(1 for r in raw if r.get("success"))
        return erased

    async def _ids_for(self, obj: CrmObject, keys: Sequence[str]) -> list[str]:
        sobject, key_field = OBJECTS[obj].sobject, self.mapper.key_field
        ids: list[str] = []
        for chunk in _chunks(list(keys), QUERY_KEYS):
            soql = format_soql("SELECT Id FROM {:literal} WHERE {:literal} IN {}", sobject, key_field, list(chunk))
            found = await self._run(f"find {sobject} to erase", partial(_query_all, soql))
            ids += [r["Id"] for r in found]
        return ids

    # ------------------------------------------------------------ replies

    async def pending_replies(self, cursor: str | None) -> tuple[list[PendingReply], str | None]:
        """Outbound SocialPosts an agent wrote as a reply and that have not been posted yet.

        The cursor is ``CreatedDate|Id`` of the last one handed out; Salesforce datetimes
        have whole seconds, so ``(CreatedDate, Id)`` orders them without ties or repeats.
        """
        query = (
            "SELECT Id, Content, CreatedDate, ReplyTo.ExternalPostId, ReplyTo.Scrm_Conversation_Key__c "
            "FROM SocialPost WHERE IsOutbound = true AND ExternalPostId = null AND ReplyToId != null"
        )
        if cursor:
            created, _, last_id = cursor.partition("|")
            after = datetime.strptime(created, SF_DATETIME)
            query += format_soql(" AND (CreatedDate > {0} OR (CreatedDate = {0} AND Id > {1}))", after, last_id)
        query += f" ORDER BY CreatedDate, Id LIMIT {REPLY_PAGE}"
        found = await self._run("read pending replies", lambda sf: sf.query(query))
        replies: list[PendingReply] = []
        for record in found["records"]:
            cursor = f"{record['CreatedDate']}|{record['Id']}"
            parent = record.get("ReplyTo") or {}
            if record.get("Content") and parent.get("ExternalPostId") and parent.get("Scrm_Conversation_Key__c"):
                replies.append(
                    PendingReply(
                        crm_id=record["Id"],
                        conversation_key=parent["Scrm_Conversation_Key__c"],
                        in_reply_to=parent["ExternalPostId"],
                        text=record["Content"],
                    )
                )
        return replies, cursor

    async def reply_sent(self, reply: PendingReply, external_key: str, network_message_id: str) -> None:
        """Give the agent's SocialPost the sent message's external key and ExternalPostId.

        One ``PATCH sobjects/SocialPost/{Id}`` (204 No Content): with ``ExternalPostId`` set
        the post is no longer pending, and the sync-back upsert by ``Scrm_Key__c`` then
        updates this same record instead of adding a second one. Writing the same values
        again is harmless, so a repeat after a crash costs one more request and changes
        nothing. Two rare cases cost more:

        - the post was deleted in Salesforce (404): logged; the sync-back creates the message anew;
        - another SocialPost already holds the key (``DUPLICATE_VALUE``: scrm had copied the
          sent message from the network before this call): that copy is deleted and the
          PATCH repeated, so the agent's record stays the one record of the message.
        """
        if not _SF_ID.fullmatch(reply.crm_id):
            self.context.logger.warning("salesforce: %r is not a SocialPost Id; reply not marked sent", reply.crm_id)
            return
        path = f"sobjects/SocialPost/{reply.crm_id}"
        body = {self.mapper.key_field: external_key, "ExternalPostId": network_message_id}

        def update(sf: Salesforce) -> str:
            try:
                sf.restful(path, method="PATCH", json=body)
            except SalesforceResourceNotFound:
                return "gone"
            except SalesforceMalformedRequest as exc:
                if any(item.get("errorCode") == "DUPLICATE_VALUE" for item in error_items(exc)):
                    return "duplicate"
                raise
            return "ok"

        outcome = await self._run("mark the agent's reply sent", update)
        if outcome == "duplicate":
            copies = [i for i in await self._ids_for(CrmObject.message, [external_key]) if i != reply.crm_id]
            if copies:
                await self._run("delete the copy of the agent's reply", partial(_delete, copies))
            outcome = await self._run("mark the agent's reply sent", update)
        if outcome == "gone":
            self.context.logger.warning(
                "salesforce: SocialPost %s was deleted after its reply was sent (%s); the sent message "
                "comes back as a new SocialPost",
                reply.crm_id,
                network_message_id,
            )
        elif outcome != "ok":
            raise RetryableError(f"salesforce: SocialPost {reply.crm_id} could not take the key {external_key}")

    # ------------------------------------------------------------ set-up

    async def check(self) -> list[CheckProblem]:
        try:
            await self._run("login", lambda sf: None)
        except FatalError as exc:
            return [CheckProblem(problem=exc.operator_message, fix="correct the [crm.settings] named above")]
        problems: list[CheckProblem] = []
        for spec in OBJECTS.values():
            try:
                describe = await self._describe(spec.sobject)
            except FatalError as exc:
                problems.append(
                    CheckProblem(
                        problem=f"{spec.sobject} cannot be described: {exc.operator_message}",
                        fix=f"enable {spec.sobject} for the integration user (Social Customer Service for "
                        "SocialPersona / SocialPost) and grant Read/Create/Edit/Delete on it",
                    )
                )
                continue
            problems += problems_in_describe(spec.sobject, describe, self.mapper.key_field)
        return problems


def _delete(ids: Sequence[str], sf: Salesforce) -> list[dict[str, Any]]:
    params = {"ids": ",".join(ids), "allOrNone": "false"}
    return list(sf.restful("composite/sobjects", params=params, method="DELETE") or [])


def _query_all(soql: str, sf: Salesforce) -> list[dict[str, Any]]:
    return list(sf.query_all(soql)["records"])


def _bulk_error(row: dict[str, Any]) -> dict[str, Any]:
    code, _, message = str(row.get("sf__Error", "")).partition(":")
    return {"statusCode": code, "message": message}
