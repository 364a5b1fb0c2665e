"""The one door to the homeserver: every client-server API request goes through :meth:`MatrixApi.call`.

Plain ``httpx`` over the client-server API (no SDK). Around each request it maps the
answer to scrm's error classes:

* 429 ``M_LIMIT_EXCEEDED`` -> :class:`RetryableError` with ``retry_after`` from the body's
  ``retry_after_ms`` or the ``Retry-After`` header (seconds), whichever is given
  (https://spec.matrix.org/v1.15/client-server-api/#rate-limiting; Synapse sends both,
  ``synapse/api/errors.py`` ``LimitExceededError``);
* 5xx, timeouts and dropped connections -> :class:`RetryableError`;
* 401 ``M_UNKNOWN_TOKEN`` / ``M_MISSING_TOKEN`` -> :class:`FatalError` naming the setting;
* any other 4xx -> :class:`MatrixRequestError` carrying the standard error body
  ``{"errcode": ..., "error": ...}`` (https://spec.matrix.org/v1.15/client-server-api/#standard-error-response),
  for the caller, which knows what a 403 or a 404 means for its request.

The access token is only ever put in the ``Authorization`` header; no message built
here contains it.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from scrm_core import FatalError, HttpApi, RetryableError, body_retry_after, retry_after_seconds

from .settings import MatrixSettings

if TYPE_CHECKING:
    import httpx

__all__ = ["MatrixApi", "MatrixRequestError", "q"]

log = logging.getLogger("scrm.matrix")

CLIENT = "/_matrix/client/v3"


def q(segment: str) -> str:
    """A room id, alias, event id or user id as one URL path segment (``!``, ``$``, ``#``, ``:`` escaped)."""
    return quote(segment, safe="")


class MatrixRequestError(Exception):
    """A 4xx answer other than 401 and 429, with the homeserver's ``errcode``."""

    def __init__(self, status: int, errcode: str, error: str) -> None:
        super().__init__(f"{status} {errcode}: {error}")
        self.status = status
        self.errcode = errcode
        self.error = error


class MatrixApi:
    """Requests to one homeserver as one account (``access_token`` after :meth:`log_in`)."""

    def __init__(self, settings: MatrixSettings, http: httpx.AsyncClient | None) -> None:
        self.settings = settings
        # map_errors=False: a 403 or 404 means something different for each request (see _answer).
        self.api = HttpApi(
            "Matrix", settings.base_url, http=http, timeout_seconds=settings.timeout_seconds, map_errors=False
        )
        self._token: str | None = settings.access_token.get_secret_value() if settings.access_token else None

    @property
    def _credential_setting(self) -> str:
        return "access_token" if self.settings.access_token is not None else "user/password"

    async def call(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        seconds: float | None = None,
        auth: bool = True,
    ) -> Any:
        """The parsed JSON of a 2xx answer to ``method path``; ``what`` names the request in errors."""
        headers = {"Authorization": f"Bearer {self._token}"} if auth and self._token else {}
        timeout = seconds or self.settings.timeout_seconds
        response = await self.api.request(
            method, path, what=what, params=params, json=body, headers=headers, timeout=timeout
        )
        return self._answer(response, what)

    def _answer(self, response: httpx.Response, what: str) -> Any:
        status = response.status_code
        try:
            data = response.json() if response.content else {}
        except ValueError:
            data = None
        if 200 <= status < 300:
            if data is None:
                raise RetryableError(f"Matrix {what}: the answer was not JSON (a proxy in the way?)")
            return data
        errcode, error = _error_fields(data)
        if status == 429:
            raise RetryableError(f"Matrix {what}: rate limited ({errcode})", retry_after=_retry_after(response, data))
        if status >= 500:
            raise RetryableError(f"Matrix {what}: homeserver error {status} {errcode}".rstrip())
        if status == 401:
            raise FatalError(
                f"Matrix {what}: the homeserver refused the credentials ({errcode}); "
                f"check the {self._credential_setting} setting of this source"
            )
        raise MatrixRequestError(status, errcode, error)

    # ------------------------------------------------------------ account

    async def log_in(self) -> None:
        """Password login on ``device_id`` unless an access token is configured.

        ``POST /login`` with an ``m.id.user`` identifier; passing an existing ``device_id``
        keeps the device, and with it the transaction-id scope
        (https://spec.matrix.org/v1.15/client-server-api/#post_matrixclientv3login).
        """
        if self._token is not None:
            return
        assert self.settings.user is not None and self.settings.password is not None  # settings validator
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": self.settings.user},
            "password": self.settings.password.get_secret_value(),
            "device_id": self.settings.device_id,
            "initial_device_display_name": "scrm",
        }
        try:
            data = await self.call("POST", f"{CLIENT}/login", "login", body=body, auth=False)
        except MatrixRequestError as exc:
            raise FatalError(
                f"Matrix login refused ({exc.errcode}); check the user and password settings of this source"
            ) from None
        self._token = str(data["access_token"])

    async def whoami(self) -> str:
        """The account's user id (``GET /account/whoami``)."""
        try:
            data = await self.call("GET", f"{CLIENT}/account/whoami", "whoami")
        except MatrixRequestError as exc:
            raise FatalError(
                f"Matrix whoami failed ({exc.errcode}); check the {self._credential_setting} setting"
            ) from None
        return str(data["user_id"])

    async def resolve_alias(self, alias: str) -> str:
        """The room id behind ``#alias:server`` (``GET /directory/room/{roomAlias}``)."""
        try:
            data = await self.call("GET", f"{CLIENT}/directory/room/{q(alias)}", f"resolve {alias}")
        except MatrixRequestError as exc:
            raise FatalError(
                f"Matrix room alias {alias!r} from the rooms setting does not resolve ({exc.errcode})"
            ) from None
        return str(data["room_id"])

    async def joined_rooms(self) -> set[str]:
        data = await self.call("GET", f"{CLIENT}/joined_rooms", "joined rooms")
        return {str(r) for r in data.get("joined_rooms", [])}

    async def direct_rooms(self, user_id: str) -> set[str]:
        """Rooms the account's ``m.direct`` account data marks as direct chats
        (https://spec.matrix.org/v1.15/client-server-api/#direct-messaging); none if unset."""
        try:
            data = await self.call("GET", f"{CLIENT}/user/{q(user_id)}/account_data/m.direct", "read m.direct")
        except MatrixRequestError as exc:
            if exc.status == 404:
                return set()
            raise
        return {str(room) for rooms in data.values() if isinstance(rooms, list) for room in rooms}

    async def profile(self, user_id: str) -> dict[str, Any]:
        """``GET /profile/{userId}``: ``displayname`` and ``avatar_url``."""
        data = await self.call("GET", f"{CLIENT}/profile/{q(user_id)}", "profile")
        return dict(data)

    # ------------------------------------------------------------ rooms

    async def sync(self, since: str | None, filter_json: str, timeout_ms: int) -> dict[str, Any]:
        """``GET /sync`` with an inline filter (https://spec.matrix.org/v1.15/client-server-api/#get_matrixclientv3sync)."""
        params: dict[str, Any] = {"filter": filter_json, "timeout": timeout_ms}
        if since is not None:
            params["since"] = since
        data = await self.call("GET", f"{CLIENT}/sync", "sync", params=params, seconds=timeout_ms / 1000 + 30)
        return dict(data)

    async def messages(
        self,
        room_id: str,
        *,
        start: str | None,
        direction: str,
        limit: int,
        types: list[str],
        stop: str | None = None,
    ) -> dict[str, Any]:
        """One page of ``GET /rooms/{roomId}/messages`` (``from``, ``to``, ``dir``, ``limit``, a
        RoomEventFilter), https://spec.matrix.org/v1.15/client-server-api/#get_matrixclientv3roomsroomidmessages."""
        params: dict[str, Any] = {"dir": direction, "limit": limit, "filter": json.dumps({"types": types})}
        if start is not None:
            params["from"] = start
        if stop is not None:
            params["to"] = stop
        data = await self.call("GET", f"{CLIENT}/rooms/{q(room_id)}/messages", "room messages", params=params)
        return dict(data)

    async def event(self, room_id: str, event_id: str) -> dict[str, Any]:
        """``GET /rooms/{roomId}/event/{eventId}``; MatrixRequestError 404 if it is not there (or not visible)."""
        data = await self.call("GET", f"{CLIENT}/rooms/{q(room_id)}/event/{q(event_id)}", "read event")
        return dict(data)

    async def context_end(self, room_id: str, event_id: str) -> str | None:
        """The pagination token right after an event (``GET /rooms/{roomId}/context/{eventId}``, ``end``)."""
        data = await self.call(
            "GET", f"{CLIENT}/rooms/{q(room_id)}/context/{q(event_id)}", "event context", params={"limit": 0}
        )
        end = data.get("end")
        return str(end) if end else None

    async def send_message(self, room_id: str, txn_id: str, content: dict[str, Any]) -> str:
        """``PUT /rooms/{roomId}/send/m.room.message/{txnId}``: the ``event_id``. The same txnId
        from the same device returns the first event instead of posting again
        (https://spec.matrix.org/v1.15/client-server-api/#put_matrixclientv3roomsroomidsendeventtypetxnid)."""
        path = f"{CLIENT}/rooms/{q(room_id)}/send/m.room.message/{q(txn_id)}"
        data = await self.call("PUT", path, "send message", body=content)
        return str(data["event_id"])


def _error_fields(data: Any) -> tuple[str, str]:
    if isinstance(data, dict):
        return str(data.get("errcode") or "M_UNKNOWN"), str(data.get("error") or "")[:200]
    return "M_UNKNOWN", ""


def _retry_after(response: httpx.Response, data: Any) -> float | None:
    """Seconds to wait: ``retry_after_ms`` in the body, else the ``Retry-After`` header (either form)."""
    from_body = body_retry_after(response)
    return from_body if from_body is not None else retry_after_seconds(response.headers.get("retry-after"))
