"""Salesforce's two error shapes, as the fake org answers them.

A whole request refused: HTTP 4xx/5xx with ``[{"message", "errorCode", "fields"?}]``; one
record of a collection or Bulk job refused: ``{"statusCode", "message", "fields"}``
(developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm; the
codes are Salesforce's ``StatusCode`` values,
developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_concepts_core_data_objects.htm).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

__all__ = ["ApiError", "RecordError", "malformed"]


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

    def as_api_error(self) -> ApiError:
        """The same refusal for a single-record request (a 400 with the REST error list)."""
        return ApiError(400, self.code, self.message, self.fields)


def malformed(message: str) -> ApiError:
    return ApiError(400, "MALFORMED_QUERY", message)
