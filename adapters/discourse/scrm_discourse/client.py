"""The Discourse JSON API through the kit's :class:`~scrm_core.HttpApi`, with Discourse's own answers mapped.

Auth is two headers, ``Api-Key`` and ``Api-Username`` (https://docs.discourse.org,
"Authentication"). Error bodies are ``{"errors": [...], "error_type": ...}``
(``ApplicationController#render_json_error`` in discourse/discourse). Rate limits are a
429 with ``Retry-After: <seconds>`` and ``extras.wait_seconds``
(``ApplicationController#render_rate_limit_error``): the kit reads both. Discourse answers
a wrong key, an unknown Api-Username and a missing scope alike: 403 ``invalid_access``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from scrm_core import FatalError, HttpApi, RetryableError, SkippableError
from scrm_core.redaction import printable, redact

from .settings import DiscourseSettings

if TYPE_CHECKING:
    import httpx

__all__ = ["DiscourseClient", "NotFound", "error_text"]

_CREDENTIALS = (
    "the api_key and api_username settings: the key must exist, be active, allow that user, and have "
    "the scopes for reading posts and topics and writing posts"
)


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


class DiscourseClient:
    """One forum's API, through the host's shared client when there is one."""

    def __init__(self, settings: DiscourseSettings, http: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        headers = {
            "Api-Key": settings.api_key.get_secret_value(),
            "Api-Username": settings.api_username,
            "Accept": "application/json",
        }
        self.api = HttpApi(
            "discourse",
            settings.base_url,
            http=http,
            timeout_seconds=settings.timeout_seconds,
            headers=headers,
            credentials=_CREDENTIALS,
        )

    async def close(self) -> None:
        await self.api.aclose()

    async def request(
        self, method: str, path: str, *, params: Any = None, json: Mapping[str, Any] | None = None
    ) -> Any:
        """The decoded JSON answer, or the scrm error that says what to do next."""
        response = await self.api.request(method, path, params=params, json=json)
        try:
            body = response.json()
        except ValueError:
            body = None
        status = response.status_code
        if status < 300:
            if body is None:
                raise RetryableError(f"discourse: {method} {path} answered {status} without JSON")
            return body
        text = error_text(body)
        if status in (404, 410):
            raise NotFound(path)
        if status == 422:
            raise SkippableError(f"discourse refused it: {text or 'unprocessable'}")
        raise FatalError(f"discourse: {method} {path} answered {status}: {text or 'unexpected answer'}")

    async def get(self, path: str, params: Any = None) -> Any:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, body: Mapping[str, Any]) -> Any:
        return await self.request("POST", path, json=body)
