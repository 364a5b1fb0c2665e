"""A thin async client for the Discourse JSON API, mapping its answers to scrm's errors.

Auth is two headers, ``Api-Key`` and ``Api-Username`` (https://docs.discourse.org,
"Authentication"). Error bodies are ``{"errors": [...], "error_type": ...}``
(``ApplicationController#render_json_error`` in discourse/discourse). Rate limits are a
429 with ``Retry-After: <seconds>`` and ``extras.wait_seconds``
(``ApplicationController#render_rate_limit_error``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx

from scrm_core import FatalError, RetryableError, SkippableError
from scrm_core.redaction import printable, redact

from .settings import DiscourseSettings

__all__ = ["DiscourseClient", "NotFound", "error_text"]


class NotFound(Exception):
    """A 404: the post or topic is gone (or never was visible to this user)."""


def error_text(body: Any) -> str:
    """Discourse's ``errors`` list as one short line, after the core's redaction layer: a
    server (or a proxy in front of it) may echo the request, ``Api-Key`` header included."""
    text = ""
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            text = "; ".join(str(e) for e in errors)
        elif isinstance(body.get("error"), str):
            text = str(body["error"])
    return printable(redact(text), 300) if text else ""


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _retry_after(response: httpx.Response, body: Any) -> float | None:
    header = response.headers.get("retry-after")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass  # an HTTP date: Discourse sends seconds, fall through to the body
    if isinstance(body, dict):
        wait = (body.get("extras") or {}).get("wait_seconds")
        if isinstance(wait, int | float):
            return max(0.0, float(wait))
    return None


class DiscourseClient:
    """One forum's API. Uses the host's ``httpx.AsyncClient`` when given, else its own."""

    def __init__(self, settings: DiscourseSettings, http: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._given = http
        self._own: httpx.AsyncClient | None = None

    async def __aenter__(self) -> DiscourseClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def http(self) -> httpx.AsyncClient:
        if self._given is not None:
            return self._given
        if self._own is None:
            self._own = httpx.AsyncClient(timeout=self.settings.timeout, follow_redirects=False)
        return self._own

    async def close(self) -> None:
        if self._own is not None:
            await self._own.aclose()
            self._own = None

    def _headers(self) -> dict[str, str]:
        return {
            "Api-Key": self.settings.api_key.get_secret_value(),
            "Api-Username": self.settings.api_username,
            "Accept": "application/json",
        }

    async def request(
        self, method: str, path: str, *, params: Any = None, json: Mapping[str, Any] | None = None
    ) -> Any:
        """The decoded JSON answer, or the scrm error that says what to do next."""
        url = f"{self.settings.base_url}{path}"
        try:
            response = await self.http.request(
                method, url, params=params, json=json, headers=self._headers(), timeout=self.settings.timeout
            )
        except httpx.TimeoutException:
            raise RetryableError(f"discourse: {method} {path} timed out") from None
        except httpx.TransportError as exc:
            raise RetryableError(f"discourse: {method} {path} failed: {type(exc).__name__}") from None
        body = _json(response)
        status = response.status_code
        if status < 300:
            if body is None:
                raise RetryableError(f"discourse: {method} {path} answered {status} without JSON")
            return body
        text = error_text(body)
        if status == 429:
            raise RetryableError(
                f"discourse: rate limited on {method} {path}: {text or 'too many requests'}",
                retry_after=_retry_after(response, body),
            )
        if status in (401, 403):
            # Discourse answers a wrong key, an unknown Api-Username and a missing scope alike:
            # 403 {"error_type": "invalid_access"}.
            raise FatalError(
                f"discourse: {self.settings.base_url} refused {method} {path} ({status}: {text or 'forbidden'}); "
                "check the api_key and api_username settings: the key must exist, be active, allow that "
                "user, and have the scopes for reading posts and topics and writing posts"
            )
        if status in (404, 410):
            raise NotFound(path)
        if status == 422:
            raise SkippableError(f"discourse refused it: {text or 'unprocessable'}")
        if status >= 500 or status == 408:
            raise RetryableError(f"discourse: {method} {path} answered {status}")
        raise FatalError(f"discourse: {method} {path} answered {status}: {text or 'unexpected answer'}")

    async def get(self, path: str, params: Any = None) -> Any:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, body: Mapping[str, Any]) -> Any:
        return await self.request("POST", path, json=body)
