"""Bulk API 2.0 ingest jobs of the fake org (a mixin of :class:`~scrm_salesforce.testing.FakeSalesforce`).

As developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/ describes them:

* ``POST jobs/ingest`` creates a job (``operation: upsert``, ``externalIdFieldName``;
  state ``Open``); ``PUT jobs/ingest/{id}/batches`` uploads CSV (to an Open job only);
  ``PATCH jobs/ingest/{id}`` with ``{"state": "UploadComplete"}`` queues it, or
  ``"Aborted"``; ``DELETE jobs/ingest/{id}`` deletes a finished job.
* Salesforce works on the job after ``UploadComplete``, whether or not the client is
  still there: the fake applies every row at once (what a crashed client leaves
  behind), but ``GET jobs/ingest/{id}`` shows ``UploadComplete`` / ``InProgress`` for
  ``bulk_polls`` more looks before ``JobComplete``.
* ``successfulResults/`` (``sf__Id``, ``sf__Created`` + the uploaded columns),
  ``failedResults/`` (``sf__Id``, ``sf__Error`` as ``CODE:message``, + the columns) and
  ``unprocessedrecords/`` once the job is complete; a 409 ``INVALIDJOBSTATE`` before.
* CSV: an empty cell leaves a field unchanged, ``#N/A`` sets it to null; a reference is
  a column ``Relationship.ExternalIdField`` (``Type:Relationship.Field`` when
  polymorphic); a column that is no field of the object fails the whole job
  (``InvalidBatch : Field name not found``). Each row is checked like any write (lengths,
  create-only fields, restricted picklists).
"""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from .errors import ApiError, RecordError
from .schema import FieldSpec

__all__ = ["BulkIngest"]

_HIDDEN = ("csv", "successful", "failed", "header", "polls_left")


class BulkIngest:
    schema: dict[str, dict[str, FieldSpec]]
    bulk_polls: int
    _jobs: dict[str, dict[str, Any]]
    _lock: threading.RLock
    _next_id: Callable[[str], str]
    _sobject: Callable[[str], str]
    _bulk_row: Callable[[str, str, dict[str, str]], tuple[str, bool]]

    def jobs(self) -> list[dict[str, Any]]:
        """Every ingest job the org has seen (its info, as ``GET jobs/ingest/{id}`` shows it)."""
        with self._lock:
            return [self._job_info(job_id, look=False) for job_id in self._jobs]

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
        job_id = self._next_id("750")
        version = request.path_params.get("version", "v62.0")
        self._jobs[job_id] = {
            "id": job_id,
            "object": sobject,
            "operation": "upsert",
            "externalIdFieldName": ext_field,
            "state": "Open",
            "contentType": "CSV",
            "columnDelimiter": "COMMA",
            "lineEnding": "LF",
            "contentUrl": f"services/data/{version}/jobs/ingest/{job_id}/batches",
            "numberRecordsProcessed": 0,
            "numberRecordsFailed": 0,
            "csv": "",
            "successful": [],
            "failed": [],
            "header": [],
            "polls_left": 0,
        }
        return JSONResponse(self._job_info(job_id, look=False))

    def _job_info(self, job_id: str, *, look: bool) -> dict[str, Any]:
        job = self._jobs[job_id]
        info = {k: v for k, v in job.items() if k not in _HIDDEN}
        if job["state"] == "JobComplete" and job["polls_left"] > 0:
            info["state"] = "InProgress" if job["polls_left"] == 1 else "UploadComplete"
            if look:
                job["polls_left"] -= 1
        return info

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
        if request.method == "DELETE":
            if job["state"] not in ("JobComplete", "Failed", "Aborted"):
                raise ApiError(409, "INVALIDJOBSTATE", f"cannot delete a job in state {job['state']}")
            del self._jobs[job_id]
            return Response(status_code=204)
        if request.method == "PATCH":
            state = json.loads(body or b"{}").get("state")
            if state == "Aborted" and job["state"] in ("Open", "UploadComplete"):
                job["state"] = "Aborted"
            elif state == "UploadComplete" and job["state"] == "Open":
                response = JSONResponse({**self._job_info(job_id, look=False), "state": "UploadComplete"})
                self._run_job(job)
                return response
            else:
                raise ApiError(409, "INVALIDJOBSTATE", f"cannot move job from {job['state']} to {state}")
        return JSONResponse(self._job_info(job_id, look=request.method == "GET"))

    def _run_job(self, job: dict[str, Any]) -> None:
        """Process the uploaded CSV as Salesforce does once the upload is complete."""
        sobject, ext_field = job["object"], job["externalIdFieldName"]
        reader = csv.reader(io.StringIO(job["csv"]))
        header = next(reader, [])
        job["header"] = header
        unknown = [c for c in header if "." not in c and c not in self.schema[sobject]]
        if unknown:
            job["state"] = "Failed"
            job["errorMessage"] = f"InvalidBatch : Field name not found : {unknown[0]}"
            return
        seen: set[str] = set()
        for row in reader:
            values = dict(zip(header, row, strict=False))
            key = values.get(ext_field, "")
            try:
                if key in seen:
                    raise RecordError("DUPLICATE_VALUE", f"Duplicate external id specified: {key}", [ext_field])
                seen.add(key)
                record_id, created = self._bulk_row(sobject, ext_field, values)
                job["successful"].append([record_id, "true" if created else "false", *row])
            except RecordError as exc:
                job["failed"].append(["", f"{exc.code}:{exc.message}", *row])
        job["numberRecordsProcessed"] = len(job["successful"]) + len(job["failed"])
        job["numberRecordsFailed"] = len(job["failed"])
        job["state"] = "JobComplete"
        job["polls_left"] = self.bulk_polls

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
        if job["state"] not in ("JobComplete", "Failed", "Aborted") or job["polls_left"] > 0:
            raise ApiError(409, "INVALIDJOBSTATE", f"job {job['id']} is not complete yet")
        prefix, rows = columns[kind]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([*prefix, *job["header"]])
        writer.writerows(rows)
        return PlainTextResponse(out.getvalue(), media_type="text/csv")
