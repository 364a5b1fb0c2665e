"""Writing a batch: fit each record, decide create or update, never re-create blind.

For every batch the writer knows, per record, whether it exists:

* the engine's :class:`~scrm_core.WriteBatch` gives the CRM ids it has recorded;
* records that may have been written without an answer (``WriteBatch.uncertain``, or a
  call of this process that failed after it may have reached Salesforce) are looked up
  by external key, one SOQL query per batch (split only to keep the URL short). What the
  lookups found is kept until the batch is sent: a retry after a lookup failed part-way
  (a 503, a timeout) goes on from there instead of asking every query again, so a
  10,000-record backfill makes progress however often single requests fail;
* an agent's SocialPost that ``reply_sent`` gave a message's key is remembered in the
  adapter's durable state;
* anything else is new, and is sent with its create-only fields (``IsOutbound``,
  ``Provider``). Should it exist after all (made by hand, or by an earlier
  installation), Salesforce answers ``INVALID_FIELD_FOR_INSERT_UPDATE`` and the record is
  sent again at once as an update, without them.

Then each record is fitted to the org's describe (:mod:`.fit`) as a create or as an
update, and sent through sObject Collections (200 a call) or, for a backfill of at least
``bulk_threshold`` records, one Bulk API 2.0 job (:mod:`.bulk`), whose id is stored
before Salesforce can apply it so that a crash or a failed poll leads to reading the
job's results, not to a second job.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from scrm_core import AdapterState, CrmObject, CrmOperation, OperationResult, PlannedWrite, WriteBatch
from scrm_core.errors import RetryableError

from .bulk import BulkJobs, JobResults, cell
from .fit import Fitted, fit_fields
from .mapping import OBJECTS, Mapper
from .metadata import ObjectMeta
from .results import check_setup_errors, collection_result, record_error_result
from .settings import SalesforceSettings

if TYPE_CHECKING:
    from simple_salesforce.api import Salesforce

__all__ = ["COLLECTION_SIZE", "Writer"]

COLLECTION_SIZE = 200  # sObject Collections' cap per call
QUERY_CHARS = 6_000  # SOQL text per lookup query: the encoded URL stays far below Salesforce's 16 KB
REPLY_POST = "reply-post:"  # state key prefix: message external key -> the agent's SocialPost Id
CREATE_ONLY_REFUSED = "INVALID_FIELD_FOR_INSERT_UPDATE"

Run = Callable[[str, Callable[["Salesforce"], Any]], Awaitable[Any]]


@dataclass
class _Prepared:
    op: CrmOperation
    creating: bool
    fitted: Fitted


class Writer:
    def __init__(
        self,
        run: Run,
        mapper: Mapper,
        settings: SalesforceSettings,
        state: AdapterState,
        metadata: Callable[[], Awaitable[dict[str, ObjectMeta]]],
        logger: logging.Logger,
    ) -> None:
        self._run = run
        self.mapper = mapper
        self.settings = settings
        self.state = state
        self.metadata = metadata
        self.log = logger
        self.bulk = BulkJobs(run, state, mapper.key_field, settings.api_version, settings.bulk_poll_seconds)
        # Keys sent in a call that failed after it may have reached Salesforce: looked up next time.
        self._unanswered: dict[CrmObject, set[str]] = {}
        # Keys looked up since they were last sent: key -> Id, or None when absent.
        self._looked_up: dict[CrmObject, dict[str, str | None]] = {}

    async def _meta(self, obj: CrmObject) -> ObjectMeta:
        return (await self.metadata())[OBJECTS[obj].sobject]

    # ------------------------------------------------------------ what exists

    async def find_ids(self, obj: CrmObject, keys: Sequence[str], fields: Sequence[str] = ()) -> dict[str, Any]:
        """Records of ``obj`` whose external key is among ``keys``: key -> the record (Id and ``fields``)."""
        sobject, key_field = OBJECTS[obj].sobject, self.mapper.key_field
        columns = ", ".join(dict.fromkeys(["Id", key_field, *fields]))
        found: dict[str, Any] = {}
        from simple_salesforce.format import format_soql  # imported with the SDK, when first needed

        for chunk in _query_chunks(list(dict.fromkeys(keys))):
            soql = format_soql(f"SELECT {columns} FROM {sobject} WHERE {key_field} IN {{}}", chunk)
            records: list[dict[str, Any]] = await self._run(
                f"look up {len(chunk)} {sobject} by key", partial(_query_all, soql)
            )
            found |= {r[key_field]: r for r in records}
        return found

    async def existing(self, obj: CrmObject, batch: WriteBatch) -> dict[str, str]:
        """External key -> Id of the records of the batch known (or found) to exist."""
        known = {op.external_key: crm_id for op in batch if (crm_id := batch.known_id(op))}
        unanswered = self._unanswered.get(obj, set())
        unsure = [
            op.external_key
            for op in batch
            if op.external_key not in known and (batch.is_uncertain(op) or op.external_key in unanswered)
        ]
        if obj is CrmObject.message:
            outbound = [op.external_key for op in batch if op.fields.get("direction") == "outbound"]
            marked = await self.state.get_many([REPLY_POST + key for key in outbound]) if outbound else {}
            known |= {key.removeprefix(REPLY_POST): post_id for key, post_id in marked.items()}
        unsure = [key for key in unsure if key not in known]
        if unsure:
            looked_up = self._looked_up.setdefault(obj, {})
            for chunk in _query_chunks([key for key in dict.fromkeys(unsure) if key not in looked_up]):
                found = await self.find_ids(obj, chunk)
                looked_up.update({key: found[key]["Id"] if key in found else None for key in chunk})
            known |= {key: crm_id for key in unsure if (crm_id := looked_up.get(key))}
            unanswered.difference_update(unsure)
        return known

    def _sending(self, obj: CrmObject, keys: Sequence[str]) -> None:
        """These records go out now: what was looked up about them may be out of date after."""
        looked_up = self._looked_up.get(obj)
        if looked_up:
            for key in keys:
                looked_up.pop(key, None)

    async def remember_reply_post(self, external_key: str, post_id: str) -> None:
        await self.state.put(REPLY_POST + external_key, post_id)

    def _prepare(self, meta: ObjectMeta, op: CrmOperation, creating: bool) -> _Prepared:
        return _Prepared(op, creating, fit_fields(meta, self.mapper.fields(op), creating=creating))

    # ------------------------------------------------------------ apply

    async def apply(self, batch: WriteBatch) -> list[OperationResult]:
        obj = batch[0].object
        meta = await self._meta(obj)
        existing = await self.existing(obj, batch)
        threshold = self.settings.bulk_threshold
        if threshold is not None and len(batch) >= threshold:
            return await self._apply_bulk(obj, meta, batch, existing)
        prepared = [self._prepare(meta, op, op.external_key not in existing) for op in batch]
        self._sending(obj, [op.external_key for op in batch])
        return await self._collections(obj, meta, prepared)

    async def _collections(self, obj: CrmObject, meta: ObjectMeta, prepared: list[_Prepared]) -> list[OperationResult]:
        """Send in chunks of 200; records refused for a create-only field exist: sent again as updates."""
        results: list[OperationResult] = []
        for start in range(0, len(prepared), COLLECTION_SIZE):
            chunk = prepared[start : start + COLLECTION_SIZE]
            try:
                results += await self._upsert(obj, meta, chunk)
            except RetryableError as exc:
                self._unanswered.setdefault(obj, set()).update(p.op.external_key for p in chunk)
                if not results:
                    raise
                # What went out is settled; the rest waits for another try instead of resending it all.
                results += [
                    OperationResult(external_key=p.op.external_key, ok=False, error=f"not sent: {exc}", retryable=True)
                    for p in prepared[len(results) :]
                ]
                break
        redo = [
            i for i, (p, r) in enumerate(zip(prepared, results, strict=False)) if self._exists_after_all(meta, p, r)
        ]
        if redo:
            updates = [self._prepare(meta, prepared[i].op, creating=False) for i in redo]
            for i, result in zip(redo, await self._collections(obj, meta, updates), strict=True):
                results[i] = result
        return results

    @staticmethod
    def _exists_after_all(meta: ObjectMeta, prepared: _Prepared, result: OperationResult) -> bool:
        """A create refused because it set a create-only field: the record was there already."""
        if result.ok or not prepared.creating or result.code != CREATE_ONLY_REFUSED:
            return False
        return any(name in meta.create_only for name in prepared.fitted.fields)

    async def _upsert(self, obj: CrmObject, meta: ObjectMeta, chunk: list[_Prepared]) -> list[OperationResult]:
        sobject = meta.name
        path = f"composite/sobjects/{sobject}/{self.mapper.key_field}"
        body = {"allOrNone": False, "records": [self.mapper.json_record(p.op, p.fitted.fields) for p in chunk]}
        for p in chunk:
            for note in p.fitted.notes:
                self.log.info("salesforce: %s: %s", p.op.external_key, note)
        raw = await self._run(f"upsert {sobject}", lambda sf: sf.restful(path, method="PATCH", json=body))
        if not isinstance(raw, list) or len(raw) != len(chunk):
            raise RetryableError(f"salesforce: upsert {sobject} answered {len(raw or [])} results for {len(chunk)}")
        check_setup_errors(sobject, raw)
        return [collection_result(p.op.external_key, r, sobject) for p, r in zip(chunk, raw, strict=True)]

    # ------------------------------------------------------------ Bulk API 2.0

    def _csv_row(self, prepared: _Prepared) -> dict[str, str]:
        op = prepared.op
        row = {self.mapper.key_field: op.external_key}
        row |= {name: cell(value) for name, value in prepared.fitted.fields.items()}
        row |= {self.mapper.csv_column(ref): key for ref, key in self.mapper.references(op).items()}
        return row

    async def _apply_bulk(
        self, obj: CrmObject, meta: ObjectMeta, batch: WriteBatch, existing: dict[str, str]
    ) -> list[OperationResult]:
        sobject = meta.name
        left_behind = await self.bulk.recover(sobject)
        if left_behind is not None:
            self.log.warning(
                "salesforce: Bulk API 2.0 job %s (%s) was left by an earlier call; using its results",
                left_behind.job_id,
                left_behind.state,
            )
            existing = {**{k: row.get("sf__Id", "") for k, row in left_behind.successful.items()}, **existing}
        results: list[OperationResult | None] = [None] * len(batch)
        to_send: list[tuple[int, _Prepared]] = []
        for i, op in enumerate(batch):
            prepared = self._prepare(meta, op, op.external_key not in existing)
            done = left_behind.successful.get(op.external_key) if left_behind else None
            if done is not None and _already_written(self._csv_row(prepared), done):
                results[i] = OperationResult(external_key=op.external_key, ok=True, crm_id=done.get("sf__Id"))
            else:
                to_send.append((i, prepared))
        threshold = self.settings.bulk_threshold or COLLECTION_SIZE
        self._sending(obj, [p.op.external_key for _, p in to_send])
        if len(to_send) >= threshold:
            job = await self.bulk.upsert(sobject, [self._csv_row(p) for _, p in to_send])
            redo: list[tuple[int, _Prepared]] = []
            for i, prepared in to_send:
                result = _job_result(prepared.op.external_key, job, sobject)
                if self._exists_after_all(meta, prepared, result):
                    redo.append((i, self._prepare(meta, prepared.op, creating=False)))
                else:
                    results[i] = result
            to_send = redo
        if to_send:
            sent = await self._collections(obj, meta, [p for _, p in to_send])
            for (i, _), result in zip(to_send, sent, strict=True):
                results[i] = result
        assert all(r is not None for r in results)
        return [r for r in results if r is not None]

    # ------------------------------------------------------------ preview

    async def preview(self, batch: WriteBatch) -> list[PlannedWrite]:
        """What apply() would send, with the current values of the fields it would change (read-only)."""
        obj = batch[0].object
        meta = await self._meta(obj)
        names = sorted({name for op in batch for name in self.mapper.fields(op)} & set(meta.fields))
        current = await self.find_ids(obj, [op.external_key for op in batch], names)
        planned = []
        for op in batch:
            now = current.get(op.external_key)
            prepared = self._prepare(meta, op, creating=now is None)
            changes = {
                name: (None if now is None else now.get(name), value)
                for name, value in prepared.fitted.fields.items()
                if now is None or now.get(name) != value
            }
            planned.append(
                PlannedWrite(
                    object=obj,
                    external_key=op.external_key,
                    action="create" if now is None else "update",
                    crm_object=meta.name,
                    crm_id=None if now is None else now.get("Id"),
                    changes=changes,
                    notes=prepared.fitted.notes,
                )
            )
        return planned


def _already_written(row: dict[str, str], written: dict[str, str]) -> bool:
    """Whether a job's successful row carries every value ``row`` would set."""
    return all(value == "" or written.get(column) == value for column, value in row.items())


def _job_result(key: str, job: JobResults, sobject: str) -> OperationResult:
    if (row := job.successful.get(key)) is not None:
        return OperationResult(external_key=key, ok=True, crm_id=row.get("sf__Id"))
    if (row := job.failed.get(key)) is not None:
        code, _, message = str(row.get("sf__Error") or "UNKNOWN_EXCEPTION:no reason given").partition(":")
        return record_error_result(key, [{"statusCode": code, "message": message}], sobject)
    return OperationResult(
        external_key=key,
        ok=False,
        error=f"not processed by Bulk API 2.0 job {job.job_id} ({job.state})",
        retryable=True,
    )


def _query_chunks(keys: list[str]) -> list[list[str]]:
    chunks: list[list[str]] = []
    size = 0
    for key in keys:
        cost = len(key) + 4
        if not chunks or size + cost > QUERY_CHARS:
            chunks.append([])
            size = 0
        chunks[-1].append(key)
        size += cost
    return chunks


def _query_all(soql: str, sf: Salesforce) -> list[dict[str, Any]]:
    return list(sf.query_all(soql)["records"])
