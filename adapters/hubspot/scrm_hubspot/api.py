"""The one door to HubSpot: every request goes through :meth:`HubSpotApi.call`.

It uses the official ``hubspot-api-client`` (its ``*_with_http_info`` methods with
``_preload_content=False``, which hand back the raw response so the rate-limit headers
and the JSON body are both at hand), and around each request it:

* spends from the account's :class:`~scrm_core.ratelimit.RateBudget` (the sink already
  paid for the first request of an ``apply``; see :attr:`HubSpotApi.prepaid`);
* reports ``X-HubSpot-RateLimit-Max / -Remaining / -Interval-Milliseconds`` and
  ``-Daily / -Daily-Remaining`` (read by :func:`scrm_core.parse_rate_limit`) to the
  budget, from every answer, errors included
  (https://developers.hubspot.com/docs/api/usage-details);
* turns a 429 into a budget pause and a :class:`RetryableError` with the wait, using the
  body's ``policyName`` (``TEN_SECONDLY_ROLLING``: one window; ``SECONDLY``: a second;
  ``DAILY``: until midnight UTC); 5xx, timeouts and dropped connections into
  :class:`RetryableError`; 401/403
  into :class:`FatalError` naming the missing scope or the setting to fix;
* refreshes an OAuth access token before it expires and once on a 401, then retries
  (https://developers.hubspot.com/docs/api/oauth/tokens).

Searches (:meth:`HubSpotApi.search`) also keep to the search API's own limit, a few requests
a second per account apart from the general one (https://developers.hubspot.com/docs/api/crm/search,
"Limitations"; four a second per token by https://developers.hubspot.com/changelog/crm-search-api-rate-limit-increase,
five per account in the current page): scrm sends at most :data:`SEARCHES_PER_SECOND`.

The client's own urllib3 retries are left at their default, which never re-sends a POST
after it reached the server: the sink retries, and a second layer would double-count.
Other 4xx answers are returned to the caller, which knows which records they concern.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from pydantic import SecretStr

from scrm_core import FatalError, RateBudget, RetryableError, parse_rate_limit

from .settings import HubSpotSettings

__all__ = ["HubSpotApi", "Reply", "error_category"]

T = TypeVar("T")
RunBlocking = Callable[..., Awaitable[Any]]

log = logging.getLogger("scrm.hubspot")

#: Search requests a second: under both limits HubSpot has documented (4 per token, 5 per account).
SEARCHES_PER_SECOND = 4.0
#: Refresh an OAuth token this long before HubSpot says it expires.
_REFRESH_MARGIN = 60.0


@dataclass
class Reply:
    """An answer HubSpot gave (2xx, or a 4xx the caller handles), its body parsed."""

    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def error_category(body: Any) -> tuple[str, str]:
    """(category, message) of a HubSpot error body."""
    if not isinstance(body, dict):
        return "UNKNOWN", str(body)[:200]
    return str(body.get("category") or body.get("status") or "UNKNOWN"), str(body.get("message") or "")


def _parse(raw: bytes | str | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return {"message": (raw.decode(errors="replace") if isinstance(raw, bytes) else raw)[:200]}


def _until_midnight_utc() -> float:
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - now).total_seconds()


class HubSpotApi:
    """The vendor client's API objects, built once, with the token kept in one place."""

    def __init__(self, settings: HubSpotSettings, budget: RateBudget, run_blocking: RunBlocking) -> None:
        self.settings = settings
        self.budget = budget
        self.run_blocking = run_blocking
        #: Requests already paid for by the caller (the sink takes one token per apply()).
        self.prepaid = 0
        self._token: SecretStr | None = settings.access_token
        self._refresh_token = settings.refresh_token
        self._expires_at = 0.0 if settings.access_token is None else float("inf")
        self._apis: list[Any] = []
        self.search_budget = RateBudget(SEARCHES_PER_SECOND, 1, margin=0.0)

    def start(self) -> None:
        """Build the API objects (blocking imports; call it in a worker thread)."""
        from hubspot import HubSpot  # type: ignore[import-untyped]

        # Each discovery property builds a new ApiClient (and connection pool): keep them.
        client = HubSpot(host=self.settings.base_url.rstrip("/"))
        self.objects = client.crm.objects.batch_api
        self.search_api = client.crm.objects.search_api
        self.associations = client.crm.associations.v4.batch_api
        self.properties = client.crm.properties.core_api
        self.property_batches = client.crm.properties.batch_api
        self.property_groups = client.crm.properties.groups_api
        self.tokens = client.oauth.tokens_api
        self._apis = [self.objects, self.search_api, self.associations, self.properties]
        self._apis += [self.property_batches, self.property_groups]
        self._install_token()

    def _install_token(self) -> None:
        token = self._token.get_secret_value() if self._token else None
        for api in self._apis:
            api.api_client.configuration.access_token = token

    # ------------------------------------------------------------ requests

    async def call(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Reply:
        """Send one request (``what`` names it in errors, e.g. "upsert contacts")."""
        if self.settings.oauth and time.monotonic() >= self._expires_at - _REFRESH_MARGIN:
            await self.refresh()
        import urllib3  # with the SDK (it is the SDK's transport), not at plugin load

        for attempt in (1, 2):
            await self._spend()
            try:
                response = await self.run_blocking(
                    partial(
                        method, *args, _preload_content=False, _request_timeout=self.settings.timeout_seconds, **kwargs
                    )
                )
            except urllib3.exceptions.HTTPError as e:  # timeout, refused or reset connection
                raise RetryableError(
                    f"HubSpot did not answer {what} ({type(e).__name__}); the call will be retried",
                    detail=f"{self.settings.base_url}: {type(e).__name__}",
                ) from None
            except Exception as e:
                # Each API package of the client has its own ApiException class: match by shape.
                status = getattr(e, "status", None)
                if status is None:
                    raise
                headers, body = getattr(e, "headers", None), _parse(getattr(e, "body", None))
                self._observe(headers)
                if status == 401 and attempt == 1 and self.settings.oauth:
                    await self.refresh()
                    continue
                return self._refusal(what, int(status), headers, body)
            self._observe(response.headers)
            try:
                return Reply(response.status, _parse(response.data))
            finally:
                response.release_conn()
        raise FatalError(f"HubSpot kept refusing the refreshed access token for {what}; check the OAuth app")

    async def search(self, what: str, object_type: str, body: dict[str, Any]) -> Reply:
        """One CRM search request (``POST /crm/v3/objects/{type}/search``), paced to the search limit."""
        await self.search_budget.acquire()
        return await self.call(what, self.search_api.do_search_with_http_info, object_type, body)

    async def _spend(self) -> None:
        if self.prepaid > 0:
            self.prepaid -= 1
        else:
            await self.budget.acquire()

    def _observe(self, headers: Any) -> None:
        if headers is not None:
            parse_rate_limit(headers).feed(self.budget, pace=True)

    def _refusal(self, what: str, status: int, headers: Any, body: Any) -> Reply:
        """A 4xx the caller handles as a Reply, or the error this refusal means."""
        category, message = error_category(body)
        if status == 429:
            policy = str(body.get("policyName", "")) if isinstance(body, dict) else ""
            limits = parse_rate_limit(headers or {})
            if policy == "DAILY":
                wait = limits.quota.resets_in if limits.quota and limits.quota.resets_in else _until_midnight_utc()
            elif policy == "SECONDLY":
                wait = 1.0
            else:
                wait = limits.window_seconds or self.settings.window_seconds
            self.budget.pause(wait, reason=f"HubSpot rate limit {policy or '429'}")
            raise RetryableError(
                f"HubSpot's {policy or 'rate'} limit was reached during {what}; waiting {wait:.3g}s",
                retry_after=wait,
            )
        if status == 401:
            fix = (
                "re-authorize the OAuth app and set [crm.settings] refresh_token"
                if self.settings.oauth
                else "create a new private app token and set [crm.settings] access_token"
            )
            raise FatalError(f"HubSpot refused the credentials ({category}) for {what}: {fix}")
        if status == 403:
            scopes = _required_scopes(body)
            if category == "MISSING_SCOPES" or scopes:
                raise FatalError(
                    f"HubSpot refused {what}: the token lacks the scope(s) {', '.join(scopes) or '(unnamed)'}; "
                    "add them to the private app (Settings > Integrations > Private Apps > Scopes) or re-install "
                    "the OAuth app with them, then run `scrm hubspot setup --dry-run` to check"
                )
            raise FatalError(f"HubSpot forbade {what} ({category}: {message})")
        if status >= 500 or status == 0:
            raise RetryableError(f"HubSpot failed {what} with {status} {category}; the call will be retried")
        return Reply(status, body)

    # ------------------------------------------------------------ OAuth

    async def refresh(self) -> None:
        """Trade the refresh token for a new access token (POST /oauth/v1/token)."""
        import urllib3

        settings = self.settings
        assert settings.client_secret is not None and self._refresh_token is not None
        try:
            response = await self.run_blocking(
                partial(
                    self.tokens.create_with_http_info,
                    grant_type="refresh_token",
                    client_id=settings.client_id,
                    client_secret=settings.client_secret.get_secret_value(),
                    refresh_token=self._refresh_token.get_secret_value(),
                    _preload_content=False,
                    _request_timeout=settings.timeout_seconds,
                )
            )
        except urllib3.exceptions.HTTPError as e:
            raise RetryableError(f"HubSpot did not answer the token refresh ({type(e).__name__})") from None
        except Exception as e:
            status = getattr(e, "status", None)
            if status is None:
                raise
            if int(status) >= 500:
                raise RetryableError(f"HubSpot failed the token refresh with {status}") from None
            category, _ = error_category(_parse(getattr(e, "body", None)))
            raise FatalError(
                f"HubSpot refused the OAuth refresh ({category}): check [crm.settings] client_id, client_secret "
                "and refresh_token, or re-authorize the app to get a new refresh token"
            ) from None
        body = _parse(response.data)
        response.release_conn()
        self._token = SecretStr(body["access_token"])
        if body.get("refresh_token"):
            self._refresh_token = SecretStr(body["refresh_token"])
        self._expires_at = time.monotonic() + float(body.get("expires_in", 1800))
        self._install_token()
        log.info("HubSpot access token refreshed; valid for %ss", body.get("expires_in"))


def _required_scopes(body: Any) -> list[str]:
    scopes: list[str] = []
    errors = body.get("errors") if isinstance(body, dict) else None
    for error in errors or []:
        context = error.get("context") or {}
        for name in ("requiredGranularScopes", "requiredScopes"):
            scopes += [s for s in context.get(name) or [] if s not in scopes]
    return scopes
