"""``SalesforceCrm``: scrm's records in Salesforce's social objects, upserted by external id.

Writes go through sObject Collections (``PATCH composite/sobjects/{X}/{ExternalIdField}``,
up to 200 records a call, ``allOrNone: false`` so one bad record fails alone;
developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-sobjects-collections-upsert.html),
each record fitted first to the org's own describe metadata, read once per run in one
composite request (:mod:`.metadata`, :mod:`.fit`), and never created twice: records that
may have been written without an answer are looked up first (:mod:`.writer`).

Backfills: with ``bulk_threshold`` set (the default), ``limits.max_batch`` is raised to
10,000 so the sink can hand over a backlog in one call. A call with at least
``bulk_threshold`` records becomes one Bulk API 2.0 ingest job (a handful of API requests
for up to 10,000 records) whose id is stored before it can be applied (:mod:`.bulk`); a
smaller one is sent as collections of 200.

Agents correct scrm's intent label in the ``Scrm_Intent_Correction__c`` picklist on a
Case or a SocialPost; :meth:`SalesforceCrm.label_corrections` reads them back
(:mod:`.corrections`).

Limits: after every call the ``Sforce-Limit-Info`` usage is reported to the rate budget
(``observe_quota``, a rolling 24 h quota); a 403 ``REQUEST_LIMIT_EXCEEDED`` pauses the
budget and raises ``RetryableError`` so the sink stops sending and the outbox keeps the
records until the budget allows again.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote_plus

from pydantic import SecretStr

from scrm_core import (
    AdapterContext,
    AdapterSettings,
    CheckProblem,
    CrmAdapter,
    CrmCapability,
    CrmLimits,
    CrmObject,
    CrmOperation,
    LabelCorrection,
    OperationResult,
    PendingReply,
    PlannedWrite,
    WriteBatch,
)
from scrm_core.errors import FatalError, RetryableError

from .check import correction_warnings, picklist_warnings, problems_in_describe
from .corrections import CorrectionReader
from .errors import ApiLimitExceeded, error_items
from .mapping import OBJECTS, Mapper
from .metadata import ObjectMeta, composite_describe, parse_composite
from .settings import BULK_MAX_BATCH, SalesforceSettings
from .writer import COLLECTION_SIZE, Writer

if TYPE_CHECKING:
    from simple_salesforce.api import Salesforce

    from .client import SalesforceConnection

__all__ = ["SalesforceCrm"]

T = TypeVar("T")

REPLY_PAGE = 200
PENDING_REPLIES = (
    "SELECT Id, Content, CreatedDate, ReplyTo.ExternalPostId, ReplyTo.Scrm_Conversation_Key__c "
    "FROM SocialPost WHERE IsOutbound = true AND ExternalPostId = null AND ReplyToId != null"
)
SF_DATETIME = "%Y-%m-%dT%H:%M:%S.%f%z"
_SF_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class SalesforceCrm(CrmAdapter):
    """Salesforce: Contact, SocialPersona, Case, Lead and SocialPost, via simple-salesforce."""

    name = "salesforce"
    Settings = SalesforceSettings
    capabilities = frozenset(
        {
            CrmCapability.contacts,
            CrmCapability.personas,
            CrmCapability.cases,
            CrmCapability.leads,
            CrmCapability.messages,
            CrmCapability.outbound_replies,
            CrmCapability.erase,
            CrmCapability.bulk,
            CrmCapability.label_corrections,
        }
    )
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
        self._metadata: dict[str, ObjectMeta] | None = None
        self._prefetched_replies: list[dict[str, Any]] | None = None  # read with the describes at start
        self._metadata_lock = asyncio.Lock()
        self.writer = Writer(self._run, self.mapper, settings, context.state, self.metadata, context.logger)
        self.corrections = CorrectionReader(
            self._run,
            self.metadata,
            lambda keys: self.writer.find_ids(CrmObject.message, keys, ("Content", "Language")),
            self.mapper.key_field,
            context.logger,
        )

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
            # simple-salesforce (with zeep, requests, jwt) is imported when a connection is built.
            from .client import SalesforceConnection

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
                usage.feed(self.budget, pace=True)

    # ------------------------------------------------------------ metadata

    async def metadata(self) -> dict[str, ObjectMeta]:
        """The describe of every object scrm writes, read once per run in ONE composite request.

        Raises FatalError naming the objects the org does not have or the user cannot see."""
        async with self._metadata_lock:
            if self._metadata is None:
                metas, missing = await self._describe_all()
                if missing:
                    raise FatalError(
                        "salesforce: "
                        + "; ".join(f"{name} cannot be described ({why})" for name, why in missing.items())
                        + ". Run `scrm check` for the fix"
                    )
                self._metadata = metas
                self.mapper.allowed_providers = set(metas["SocialPost"].fields.get("Provider", _NO_FIELD).picklist)
            return self._metadata

    async def _describe_all(self, *, replies: bool = False) -> tuple[dict[str, ObjectMeta], dict[str, str]]:
        """Every object's describe in one composite request; with ``replies`` (the check at the
        start of a run) also the first pages of agents' replies and label corrections, which
        the run asks for next."""
        names = [spec.sobject for spec in OBJECTS.values()]
        body = composite_describe(self.settings.api_version, names)
        if replies:
            first_page = f"{PENDING_REPLIES} ORDER BY CreatedDate, Id LIMIT {REPLY_PAGE}"
            body["compositeRequest"].append(
                {
                    "method": "GET",
                    "url": f"/services/data/v{self.settings.api_version}/query/?q={quote_plus(first_page)}",
                    "referenceId": "PendingReplies",
                }
            )
            body["compositeRequest"] += [
                {
                    "method": "GET",
                    "url": f"/services/data/v{self.settings.api_version}/query/?q={quote_plus(soql)}",
                    "referenceId": reference,
                }
                for reference, soql in self.corrections.first_pages().items()
            ]
        answer = await self._run(
            f"describe {', '.join(names)}", lambda sf: sf.restful("composite", method="POST", json=body)
        )
        metas: dict[str, ObjectMeta] = {}
        missing: dict[str, str] = {}
        answers = parse_composite(answer)
        for reference in self.corrections.first_pages():
            self.corrections.prefetched(reference, *answers.pop(reference, (0, None)))
        status, page = answers.pop("PendingReplies", (0, None))
        if status == 200 and isinstance(page, dict) and page.get("done"):
            records = list(page.get("records") or [])
            self._prefetched_replies = records if len(records) < REPLY_PAGE else None  # complete pages only
        for name, (status, raw) in answers.items():
            if status == 200 and isinstance(raw, dict):
                metas[name] = ObjectMeta.from_describe(raw)
            else:
                errors = raw if isinstance(raw, list) else [raw]
                missing[name] = (
                    "; ".join(f"{e.get('errorCode')}: {e.get('message')}" for e in errors if isinstance(e, dict))
                    or f"HTTP {status}"
                )
        for name in names:
            if name not in metas and name not in missing:
                missing[name] = "no answer"
        return metas, missing

    # ------------------------------------------------------------ writes

    async def apply(self, ops: Sequence[CrmOperation]) -> list[OperationResult]:
        if not ops:
            return []
        obj = ops[0].object
        if any(op.object is not obj for op in ops):
            raise FatalError("salesforce: apply() got several object types in one batch", detail=str(obj))
        return await self.writer.apply(WriteBatch.of(ops))

    async def preview(self, ops: Sequence[CrmOperation]) -> list[PlannedWrite]:
        if not ops:
            return []
        return await self.writer.preview(WriteBatch.of(ops))

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
        return [record["Id"] for record in (await self.writer.find_ids(obj, keys)).values()]

    # ------------------------------------------------------------ replies

    async def pending_replies(self, cursor: str | None) -> tuple[list[PendingReply], str | None]:
        """Outbound SocialPosts an agent wrote as a reply and that have not been posted yet.

        The cursor is ``CreatedDate|Id`` of the last one handed out; Salesforce datetimes
        have whole seconds, so ``(CreatedDate, Id)`` orders them without ties or repeats.
        The first call after ``check()`` (which ``scrm run`` calls first) is answered from
        the page read with the describes in the same composite request: a complete page,
        so the cursor filters it exactly; a reply written in the moment between comes with
        the next poll (it is after the new cursor).
        """
        records = self._take_prefetched(cursor)
        if records is None:
            query = PENDING_REPLIES
            if cursor:
                created, _, last_id = cursor.partition("|")
                after = datetime.strptime(created, SF_DATETIME)
                from simple_salesforce.format import format_soql

                query += format_soql(" AND (CreatedDate > {0} OR (CreatedDate = {0} AND Id > {1}))", after, last_id)
            query += f" ORDER BY CreatedDate, Id LIMIT {REPLY_PAGE}"
            found = await self._run("read pending replies", lambda sf: sf.query(query))
            records = list(found["records"])
        replies: list[PendingReply] = []
        for record in records:
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

    def _take_prefetched(self, cursor: str | None) -> list[dict[str, Any]] | None:
        """The prefetched page after ``cursor`` (once), or None when it must be queried."""
        page, self._prefetched_replies = self._prefetched_replies, None
        if page is None:
            return None
        if not cursor:
            return page
        created, _, last_id = cursor.partition("|")
        after = (datetime.strptime(created, SF_DATETIME), last_id)
        return [r for r in page if (datetime.strptime(r["CreatedDate"], SF_DATETIME), r["Id"]) > after]

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

        from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

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
        if outcome in ("ok", "duplicate"):  # the sync-back updates this post: it exists
            await self.writer.remember_reply_post(external_key, reply.crm_id)
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

    # ------------------------------------------------------------ label corrections

    async def label_corrections(self, cursor: str | None) -> tuple[list[LabelCorrection], str | None]:
        """Intent labels agents set in ``Scrm_Intent_Correction__c`` on SocialPosts and Cases
        since ``cursor`` (one page per object; see :mod:`.corrections`)."""
        return await self.corrections.read(cursor)

    # ------------------------------------------------------------ set-up

    async def check(self) -> list[CheckProblem]:
        """Login, the objects and fields scrm writes, access to them, the picklist values configured."""
        try:
            await self._run("login", lambda sf: None)
            metas, missing = await self._describe_all(replies=True)
        except FatalError as exc:
            return [CheckProblem(problem=exc.operator_message, fix="correct the [crm.settings] named above")]
        problems = [
            CheckProblem(
                problem=f"{name} cannot be described: {why}",
                fix=f"enable {name} for the integration user (Social Customer Service for SocialPersona / "
                "SocialPost: Setup > Social Customer Service) and grant Read/Create/Edit/Delete on it",
            )
            for name, why in missing.items()
        ]
        for name, meta in metas.items():
            problems += problems_in_describe(name, meta, self.mapper.key_field)
        if not missing:
            self._metadata = metas  # the run that checked goes on with what it read
            self.mapper.allowed_providers = set(metas["SocialPost"].fields.get("Provider", _NO_FIELD).picklist)
        return problems + picklist_warnings(metas, self.settings) + correction_warnings(metas)


def _delete(ids: Sequence[str], sf: Salesforce) -> list[dict[str, Any]]:
    params = {"ids": ",".join(ids), "allOrNone": "false"}
    return list(sf.restful("composite/sobjects", params=params, method="DELETE") or [])


def _query_all(soql: str, sf: Salesforce) -> list[dict[str, Any]]:
    return list(sf.query_all(soql)["records"])


class _NoField:
    picklist: tuple[str, ...] = ()


_NO_FIELD: Any = _NoField()
