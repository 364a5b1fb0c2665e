"""Backfills through Bulk API 2.0 upsert jobs, whose id survives a crash.

A job's life (developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/
walkthrough_upsert.htm): ``POST jobs/ingest`` (``operation: upsert``,
``externalIdFieldName``) -> ``PUT .../batches`` with the CSV -> ``PATCH`` ``state:
UploadComplete`` -> Salesforce processes it (``InProgress``) -> ``JobComplete`` (or
``Failed`` / ``Aborted``) -> ``successfulResults/``, ``failedResults/``,
``unprocessedrecords/``, whose rows repeat the uploaded columns.

Once ``UploadComplete`` is sent, Salesforce applies the job whatever happens to the
client. So the job id is stored in the adapter's durable state (:class:`AdapterState`)
*before* the upload, and removed only once the results are read. On the next apply
after a crash, a timeout or a failed poll, the stored job is looked at first: still
``Open`` (the upload never completed) it is aborted, nothing of it applied; otherwise it
is polled to its end and its results are used, so the job is never submitted twice.

CSV rules that differ from JSON (developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/
api_asynch/datafiles_csv_valid_record_rows.htm): an empty cell leaves the field unchanged
and ``#N/A`` sets it to null.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from scrm_core import AdapterState
from scrm_core.errors import RetryableError

if TYPE_CHECKING:
    from simple_salesforce.api import Salesforce

__all__ = ["NULL", "BulkJobs", "JobResults", "cell", "read_csv", "write_csv"]

T = TypeVar("T")
NULL = "#N/A"
DONE_STATES = frozenset({"JobComplete", "Failed", "Aborted"})
#: How long one apply() waits for a job before handing back (the job id stays stored).
MAX_WAIT_SECONDS = 600.0

Run = Callable[[str, Callable[["Salesforce"], T]], Awaitable[T]]


def cell(value: Any) -> str:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def write_csv(rows: Sequence[Mapping[str, str]]) -> str:
    """Rows as CSV with every column in every row (an empty cell: leave the field unchanged)."""
    columns = sorted({name for row in rows for name in row})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@dataclass
class JobResults:
    """A finished job's rows, by external key."""

    job_id: str
    state: str
    successful: dict[str, dict[str, str]] = field(default_factory=dict)
    failed: dict[str, dict[str, str]] = field(default_factory=dict)


class BulkJobs:
    def __init__(
        self, run: Run[Any], state: AdapterState, key_field: str, api_version: str, poll_seconds: float
    ) -> None:
        self._run = run
        self.state = state
        self.key_field = key_field
        self.api_version = api_version
        self.poll_seconds = poll_seconds

    def _slot(self, sobject: str) -> str:
        return f"bulk-job:{sobject}"

    def _url(self, sf: Salesforce, job_id: str = "", tail: str = "") -> str:
        url = f"{sf.base_url}jobs/ingest"
        return f"{url}/{job_id}{tail}" if job_id else url

    async def upsert(self, sobject: str, rows: Sequence[Mapping[str, str]]) -> JobResults:
        """Run one job; its id is durable before Salesforce can start applying it."""
        body = {
            "object": sobject,
            "operation": "upsert",
            "externalIdFieldName": self.key_field,
            "contentType": "CSV",
            "lineEnding": "LF",
        }
        job = await self._run(f"create a Bulk API 2.0 job for {sobject}", lambda sf: sf.restful(
            "jobs/ingest", method="POST", json=body
        ))  # fmt: skip
        job_id = str(job["id"])
        await self.state.put(self._slot(sobject), json.dumps({"id": job_id, "rows": len(rows)}))
        data = write_csv(rows).encode("utf-8")

        def upload(sf: Salesforce) -> None:
            headers = {"Content-Type": "text/csv"}
            sf._call_salesforce("PUT", self._url(sf, job_id, "/batches"), name="upload", data=data, headers=headers)

        await self._run(f"upload {len(rows)} {sobject} rows", upload)
        await self._run(f"complete the upload of job {job_id}", lambda sf: sf.restful(
            f"jobs/ingest/{job_id}", method="PATCH", json={"state": "UploadComplete"}
        ))  # fmt: skip
        return await self._finish(sobject, job_id)

    async def recover(self, sobject: str) -> JobResults | None:
        """The results of a job an earlier call left behind (None if there is none, or it never started)."""
        stored = await self.state.get(self._slot(sobject))
        if stored is None:
            return None
        job_id = str(json.loads(stored)["id"])
        info = await self._info(job_id)
        if info is None:  # deleted meanwhile: its results are gone; the caller looks records up
            await self.state.delete([self._slot(sobject)])
            return None
        if info.get("state") == "Open":  # the upload never completed: nothing of it was applied
            await self._run(f"abort job {job_id}", lambda sf: sf.restful(
                f"jobs/ingest/{job_id}", method="PATCH", json={"state": "Aborted"}
            ))  # fmt: skip
            await self.state.delete([self._slot(sobject)])
            return None
        return await self._finish(sobject, job_id)

    def _results(self, job_id: str, kind: str, sf: Salesforce) -> str:
        return str(sf._call_salesforce("GET", self._url(sf, job_id, f"/{kind}/"), name=kind).text)

    async def _info(self, job_id: str) -> dict[str, Any] | None:
        from simple_salesforce.exceptions import SalesforceResourceNotFound

        def read(sf: Salesforce) -> dict[str, Any] | None:
            try:
                return dict(sf.restful(f"jobs/ingest/{job_id}") or {})
            except SalesforceResourceNotFound:
                return None

        info: dict[str, Any] | None = await self._run(f"read job {job_id}", read)
        return info

    async def _finish(self, sobject: str, job_id: str) -> JobResults:
        """Poll until the job ends, read its results, forget it. A failure leaves it stored."""
        started = time.monotonic()
        while True:
            info = await self._info(job_id)
            state = str((info or {}).get("state", "Deleted"))
            if info is None or state in DONE_STATES:
                break
            if time.monotonic() - started > MAX_WAIT_SECONDS:
                raise RetryableError(f"salesforce: Bulk API 2.0 job {job_id} is still {state}; it is looked at again")
            await asyncio.sleep(self.poll_seconds)
        results = JobResults(job_id, state)
        if info is not None:
            for kind, target in (("successfulResults", results.successful), ("failedResults", results.failed)):
                text: str = await self._run(f"read the {kind} of job {job_id}", partial(self._results, job_id, kind))
                for row in read_csv(text):
                    target[row.get(self.key_field, "")] = row
        await self.state.delete([self._slot(sobject)])
        return results
