"""A small async Graph API client over httpx, and the mapping of Graph errors to scrm's.

Meta publishes no maintained official Python SDK for the Graph API (the old
``facebook-sdk`` package is unmaintained), so this speaks HTTP directly.

Error shape (https://developers.facebook.com/docs/graph-api/guides/error-handling)::

    {"error": {"message", "type": "OAuthException", "code", "error_subcode", "fbtrace_id"}}

* codes 4 (app), 17 (user), 32 (Page), 613 and 80001..80014 (business use case) are rate
  limits (https://developers.facebook.com/docs/graph-api/overview/rate-limiting); the
  wait is read from ``X-Business-Use-Case-Usage`` (``estimated_time_to_regain_access``,
  in minutes) when present; ``X-App-Usage`` carries only percentages;
* 190 and 102: the token is invalid or expired; 10 and 200..299: a missing permission;
* 100 with subcode 33: the object does not exist (deleted) or cannot be seen;
* 1, 2 and ``is_transient: true``: try again.

The HTTP status of these answers (400 or 403) is from memory; the mapping goes by the
``code`` in the body, as the error-handling guide says to.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from scrm_core import FatalError, HttpApi, RetryableError, SkippableError

from .settings import MetaSettings

if TYPE_CHECKING:
    import httpx

__all__ = ["GraphClient", "GraphError", "retry_after_from_headers"]

RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
TOKEN_CODES = frozenset({102, 190})
TRANSIENT_CODES = frozenset({1, 2})
DEFAULT_RATE_LIMIT_WAIT = 60.0  # seconds, when no header names a wait
PERMISSIONS = {  # (read, write) permissions: https://developers.facebook.com/docs/permissions
    "facebook": ("pages_read_engagement and pages_read_user_content", "pages_manage_engagement"),
    "instagram": ("instagram_basic and instagram_manage_comments", "instagram_manage_comments"),
}


class GraphError(Exception):
    """A Graph error the caller may want to handle itself (a missing object)."""

    def __init__(self, status: int, code: int | None, subcode: int | None, message: str) -> None:
        super().__init__(f"Graph error {code}/{subcode} (HTTP {status}): {message}")
        self.status, self.code, self.subcode, self.message = status, code, subcode, message

    @property
    def gone(self) -> bool:
        """The object was deleted (or never was): code 100, subcode 33."""
        return self.code == 100 and self.subcode == 33


def retry_after_from_headers(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``X-Business-Use-Case-Usage`` (minutes per business use case)."""
    raw = headers.get("x-business-use-case-usage")
    if not raw:
        return None
    try:
        usage = json.loads(raw)
        minutes = [
            float(entry.get("estimated_time_to_regain_access") or 0)
            for entries in usage.values()
            for entry in entries
            if isinstance(entry, dict)
        ]
    except (ValueError, AttributeError, TypeError):
        return None
    return max(minutes, default=0.0) * 60.0 or None


class GraphClient:
    """GET / POST against ``<base_url>/<version>/...`` with the Page token in the Authorization header.

    The token goes in ``Authorization: Bearer`` rather than the ``access_token`` query
    parameter so that it never lands in a URL, a log line or an error (the Graph API
    accepts both; from memory). ``read_permission`` / ``write_permission`` name what a
    permission error should tell the operator to grant.
    """

    def __init__(self, settings: MetaSettings, http: httpx.AsyncClient | None) -> None:
        self._token = token = settings.page_access_token
        auth = {"Authorization": f"Bearer {token.get_secret_value()}"}
        root, timeout = f"{settings.base_url}/{settings.api_version}", settings.timeout_seconds
        # map_errors=False: Graph errors are told apart by the code in the body, below.
        self.api = HttpApi("meta", root, http=http, timeout_seconds=timeout, headers=auth, map_errors=False)
        self._read_permission, self._write_permission = PERMISSIONS[settings.platform]

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        return await self._call("GET", path, params=params)

    async def post(self, path: str, **data: Any) -> dict[str, Any]:
        return await self._call("POST", path, data=data)

    async def pages(self, path: str, **params: Any) -> AsyncIterator[list[dict[str, Any]]]:
        """Each page of an edge, following ``paging.cursors.after`` while ``paging.next`` is set.

        (https://developers.facebook.com/docs/graph-api/results: cursor-based pagination.)
        The ``next`` URL itself is not followed: it repeats the access token and the host.
        """
        after: str | None = None
        while True:
            body = await self.get(path, **params, **({"after": after} if after else {}))
            yield list(body.get("data") or [])
            paging = body.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            if not paging.get("next") or not after:
                return

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self.api.request(method, f"/{path.lstrip('/')}", what=f"{method} /{path}", **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code < 400 and isinstance(body, dict) and "error" not in body:
            return body
        raise self._error(method, path, response, body)

    def _error(self, method: str, path: str, response: httpx.Response, body: Any) -> Exception:
        status = response.status_code
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            if status >= 500 or status in (408, 429):
                return RetryableError(f"meta: {method} /{path} answered HTTP {status}")
            return FatalError(f"meta: {method} /{path} answered HTTP {status} without a Graph error")
        code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
        message = self._scrub(str(error.get("message") or ""))
        trace = f"fbtrace_id={error.get('fbtrace_id')}" if error.get("fbtrace_id") else None
        if code in RATE_LIMIT_CODES:
            wait = retry_after_from_headers(response.headers) or DEFAULT_RATE_LIMIT_WAIT
            return RetryableError(f"meta: rate limited (Graph code {code}): {message}", retry_after=wait, detail=trace)
        if code in TOKEN_CODES:
            return FatalError(
                f"meta: the page_access_token setting was refused (Graph code {code}: {message}); "
                "generate a new Page access token",
                detail=trace,
            )
        if code == 10 or (code is not None and 200 <= code <= 299):
            permission = self._write_permission if method == "POST" else self._read_permission
            return FatalError(
                f"meta: the Page access token lacks a permission for {method} /{path} (Graph code {code}: {message}); "
                f"grant {permission} to the app and issue a new token",
                detail=trace,
            )
        if code in TRANSIENT_CODES or error.get("is_transient") or status >= 500:
            return RetryableError(f"meta: {method} /{path}: temporary Graph error {code}: {message}", detail=trace)
        return GraphError(status, code, subcode, message)

    async def aclose(self) -> None:
        await self.api.aclose()

    def _scrub(self, text: str) -> str:
        secret = self._token.get_secret_value()
        return text.replace(secret, "***") if secret else text


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def as_skippable(error: GraphError, what: str) -> SkippableError:
    """A Graph refusal of one object (gone, not allowed) as a reason to skip it."""
    reason = "it no longer exists" if error.gone else f"Graph code {error.code}: {error.message}"
    return SkippableError(f"meta: {what}: {reason}")
