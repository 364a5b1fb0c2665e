"""The XRPC calls the adapter makes, through MarshalX's ``atproto`` SDK, with errors mapped.

* 429 ``RateLimitExceeded`` -> :class:`RetryableError` with ``retry_after`` from the
  ``ratelimit-reset`` header (epoch seconds; https://docs.bsky.app/docs/advanced-guides/rate-limits).
* transport failures, timeouts, 502 and 5xx -> :class:`RetryableError`.
* ``400 ExpiredToken`` (an access token past its ~2 h life or revoked; MarshalX/atproto#514)
  -> one ``refreshSession``, then the call again; a refresh token that is gone too -> one
  ``createSession``.
* 401/403 -> :class:`FatalError` naming the credentials settings.
* other 400s are left to the caller (``RecordNotFound``, ``NotFound`` mean something there).

Responses come back as plain dicts in the wire's JSON shape (camelCase, ``$type``), so the
same mapping code reads AppView views and Jetstream records.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from atproto_client import AsyncClient
from atproto_client.client.session import Session, SessionEvent
from atproto_client.exceptions import (
    BadRequestError,
    LoginRequiredError,
    NetworkError,
    RateLimitExceededError,
    RequestErrorBase,
    UnauthorizedError,
)
from atproto_client.models.utils import get_model_as_dict
from atproto_client.request import AsyncRequest
from atproto_core.exceptions import AtProtocolError

from scrm_core.errors import FatalError, RetryableError

from .session_store import SessionFile
from .settings import BlueskySettings

__all__ = ["BadRequestError", "BlueskyApi", "xrpc_error"]

Json = dict[str, Any]
_TOKEN_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})


def xrpc_error(exc: BaseException) -> str:
    """The XRPC ``error`` name of a failed call (``ExpiredToken``, ``RecordNotFound``), or ''."""
    response = getattr(exc, "response", None)
    content = getattr(response, "content", None)
    return str(getattr(content, "error", "") or "")


def _status(exc: BaseException) -> int:
    return int(getattr(getattr(exc, "response", None), "status_code", 0) or 0)


def _retry_after(exc: RateLimitExceededError) -> float:
    if exc.retry_after is not None:
        return float(exc.retry_after)
    if exc.reset_at is not None:
        return max(0.0, float(exc.reset_at.timestamp()) - time.time())
    return 60.0


def _as_dict(model: Any) -> Json:
    return cast(Json, get_model_as_dict(model))


class BlueskyApi:
    """One logged-in account. :meth:`start` reuses the saved session when there is one."""

    def __init__(self, settings: BlueskySettings, store: SessionFile, logger: logging.Logger) -> None:
        self.settings = settings
        self.store = store
        self.log = logger
        self.did = ""
        self.handle = ""
        self._client = self._new_client(settings.base_url)
        self._client.on_session_change(self._on_session_change)
        self._public = self._new_client(settings.appview_url) if settings.appview_url else None

    def _new_client(self, base_url: str) -> Any:
        return AsyncClient(base_url=base_url, request=AsyncRequest(timeout=self.settings.timeout_seconds))

    # ------------------------------------------------------------ session

    def _on_session_change(self, event: Any, session: Any) -> None:
        if event in (SessionEvent.CREATE, SessionEvent.REFRESH):
            self.store.save(session.export())
            self.did, self.handle = session.did, session.handle
            self.log.info("bluesky session %s for %s saved to %s", event.value, session.did, self.store.path)

    async def start(self) -> None:
        saved = self.store.load()
        if saved is not None:
            try:
                # no network call: the SDK refreshes before the first call if the access token is near expiry
                await self._client.login(session_string=saved, fetch_bsky_profile=False)
            except (ValueError, AtProtocolError):
                saved = None
        if saved is None:
            await self._create_session()
        session = Session.decode(self._client.export_session_string())
        self.did, self.handle = session.did, session.handle

    async def _create_session(self) -> None:
        s = self.settings
        try:
            await self._client.login(s.identifier, s.app_password.get_secret_value(), fetch_bsky_profile=False)
        except (UnauthorizedError, BadRequestError) as exc:
            raise FatalError(
                f"Bluesky refused the login of {s.identifier!r} ({xrpc_error(exc) or _status(exc)}): check the "
                "`app_password` setting (an app password from Settings > Privacy and security > App passwords) "
                "and `identifier`",
            ) from None
        except AtProtocolError as exc:
            raise self._transient(exc, "createSession") from None

    async def _refresh(self) -> None:
        try:
            # the SDK's own refresh path (what AsyncClient._invoke calls near expiry)
            await self._client._refresh_and_set_session()
        except (BadRequestError, UnauthorizedError, LoginRequiredError):
            self.log.info("bluesky refresh token refused; creating a new session")
            await self._create_session()
        except AtProtocolError as exc:
            raise self._transient(exc, "refreshSession") from None

    async def close(self) -> None:
        await self._client.request.close()
        if self._public is not None:
            await self._public.request.close()

    # ------------------------------------------------------------ calling

    def _transient(self, exc: BaseException, what: str) -> RetryableError | FatalError:
        if isinstance(exc, RateLimitExceededError):
            return RetryableError(f"Bluesky rate limit on {what}", retry_after=_retry_after(exc))
        if isinstance(exc, UnauthorizedError):
            return FatalError(
                f"Bluesky refused {what} ({xrpc_error(exc) or _status(exc)}): check the `identifier` and "
                "`app_password` settings and that the app password may do this"
            )
        if isinstance(exc, NetworkError) or _status(exc) >= 500 or not isinstance(exc, RequestErrorBase):
            return RetryableError(f"Bluesky {what} failed: {type(exc).__name__} {_status(exc) or ''}".rstrip())
        return FatalError(f"Bluesky {what} failed: {exc}")

    async def call(self, what: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        """``fn()``, refreshing the session once on ExpiredToken; 400s other than that are re-raised."""
        for attempt in (1, 2):
            try:
                return await fn()
            except (BadRequestError, UnauthorizedError) as exc:
                if attempt == 1 and xrpc_error(exc) in _TOKEN_ERRORS:
                    await self._refresh()
                    continue
                if isinstance(exc, BadRequestError):
                    raise
                raise self._transient(exc, what) from None
            except AtProtocolError as exc:
                raise self._transient(exc, what) from None
        raise AssertionError("unreachable")

    @property
    def _reader(self) -> Any:
        return self._public or self._client

    # ------------------------------------------------------------ methods

    async def list_notifications(self, cursor: str | None, limit: int) -> Json:
        params = {"limit": limit, "cursor": cursor, "reasons": ["mention", "reply", "quote"]}
        ns = self._client.app.bsky.notification
        return _as_dict(await self.call("listNotifications", lambda: ns.list_notifications(params)))

    async def search_posts(self, q: str, cursor: str | None, limit: int, since: str | None) -> Json:
        params = {"q": q, "sort": "latest", "limit": limit, "cursor": cursor, "since": since}
        ns = self._client.app.bsky.feed
        return _as_dict(await self.call("searchPosts", lambda: ns.search_posts(params)))

    async def get_posts(self, uris: list[str]) -> list[Json]:
        """Post views of ``uris`` (25 per request); a deleted post is simply absent."""
        ns = self._reader.app.bsky.feed
        out: list[Json] = []
        for i in range(0, len(uris), 25):
            chunk = uris[i : i + 25]
            answer = _as_dict(await self.call("getPosts", lambda c=chunk: ns.get_posts({"uris": c})))  # type: ignore[misc]
            out += answer.get("posts", [])
        return out

    async def get_post_thread(self, uri: str, depth: int) -> Json:
        ns = self._reader.app.bsky.feed
        params = {"uri": uri, "depth": depth, "parentHeight": 0}
        return _as_dict(await self.call("getPostThread", lambda: ns.get_post_thread(params)))

    async def get_profiles(self, actors: list[str]) -> list[Json]:
        ns = self._reader.app.bsky.actor
        out: list[Json] = []
        for i in range(0, len(actors), 25):
            chunk = actors[i : i + 25]
            answer = _as_dict(await self.call("getProfiles", lambda c=chunk: ns.get_profiles({"actors": c})))  # type: ignore[misc]
            out += answer.get("profiles", [])
        return out

    async def get_profile(self, actor: str) -> Json:
        ns = self._reader.app.bsky.actor
        return _as_dict(await self.call("getProfile", lambda: ns.get_profile({"actor": actor})))

    async def get_record(self, collection: str, rkey: str) -> Json | None:
        """A record of the account's own repo, or None when there is none at that key."""
        ns = self._client.com.atproto.repo
        params = {"repo": self.did, "collection": collection, "rkey": rkey}
        try:
            return _as_dict(await self.call("getRecord", lambda: ns.get_record(params)))
        except BadRequestError as exc:
            if xrpc_error(exc) == "RecordNotFound":
                return None
            raise

    async def create_record(self, collection: str, rkey: str, record: Json) -> Json:
        ns = self._client.com.atproto.repo
        data = {"repo": self.did, "collection": collection, "rkey": rkey, "record": record}
        return _as_dict(await self.call("createRecord", lambda: ns.create_record(data)))
