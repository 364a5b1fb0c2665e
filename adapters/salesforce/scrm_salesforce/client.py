"""One authenticated simple-salesforce connection, its failures translated into scrm's errors.

Everything here blocks; the adapter runs it through ``context.run_blocking``.

- Every response (errors and Bulk API 2.0 calls included, which simple-salesforce does not
  parse) passes a ``requests`` response hook that keeps the last rate-limit headers
  (``Sforce-Limit-Info: api-usage=N/M``, read by :func:`scrm_core.parse_rate_limit`),
  so the adapter can report them to the rate budget after each call.
- An expired session (401 ``INVALID_SESSION_ID``) logs in again once and repeats the call.
- 403 ``REQUEST_LIMIT_EXCEEDED`` becomes :class:`ApiLimitExceeded`, timeouts and 5xx a
  :class:`RetryableError`, missing objects / fields / permissions a :class:`FatalError`
  (developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from pydantic import SecretStr
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from scrm_core import FatalError, RateLimit, RetryableError, parse_rate_limit

from .auth import request_token
from .errors import ApiLimitExceeded, error_items
from .settings import SalesforceSettings

__all__ = ["ApiLimitExceeded", "SalesforceConnection", "error_items"]

T = TypeVar("T")


class _TimeoutSession(requests.Session):
    """A session whose every request has a timeout (simple-salesforce passes none of its own).

    ``verify`` is passed per request too: otherwise requests lets ``REQUESTS_CA_BUNDLE``
    from the environment override the session's ``ca_bundle``.
    """

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("verify", self.verify)
        method = method.decode() if isinstance(method, bytes) else method
        return super().request(method, url, *args, **kwargs)


def _codes(exc: SalesforceError) -> str:
    return "; ".join(f"{i.get('errorCode', '?')}: {i.get('message', '')}" for i in error_items(exc)) or str(exc.status)


class SalesforceConnection:
    """A logged-in ``Salesforce`` client that re-authenticates once when its session expires."""

    def __init__(self, settings: SalesforceSettings, private_key: SecretStr | None, logger: logging.Logger) -> None:
        self.settings = settings
        self._private_key = private_key
        self.logger = logger
        self.http = _TimeoutSession(settings.timeout_seconds)
        if settings.ca_bundle:
            self.http.verify = settings.ca_bundle
        self.http.hooks["response"].append(self._read_limit_info)
        self._usage: RateLimit | None = None
        self._usage_lock = threading.Lock()
        self._sf: Salesforce | None = None
        self.logins = 0

    def __repr__(self) -> str:
        return f"SalesforceConnection(login_url={self.settings.login_url!r}, auth={self.settings.auth!r})"

    # ------------------------------------------------------------ session

    def login(self) -> Salesforce:
        token = request_token(self.settings, self.http, self._private_key)
        self.logins += 1
        self._sf = Salesforce(
            instance_url=token.instance_url,
            session_id=token.access_token.get_secret_value(),
            version=self.settings.api_version,
            session=self.http,
        )
        return self._sf

    @property
    def sf(self) -> Salesforce:
        return self._sf or self.login()

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------ Sforce-Limit-Info

    def _read_limit_info(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        limits = parse_rate_limit(response.headers)
        if limits.quota is not None:
            with self._usage_lock:
                self._usage = limits

    def take_usage(self) -> RateLimit | None:
        """The last ``api-usage`` seen, once; None if none came since."""
        with self._usage_lock:
            usage, self._usage = self._usage, None
        return usage

    # ------------------------------------------------------------ calls

    def call(self, what: str, fn: Callable[[Salesforce], T]) -> T:
        """Run ``fn`` with the client; ``what`` names the call for the operator."""
        try:
            try:
                return fn(self.sf)
            except SalesforceExpiredSession:
                self.logger.info("salesforce: session expired, logging in again")
                self.login()
                return fn(self.sf)
        except SalesforceExpiredSession as exc:
            raise FatalError(
                f"salesforce: {what}: the session was refused right after a fresh login ({_codes(exc)}); "
                "check the connected app's session policies and the user's IP restrictions"
            ) from None
        except SalesforceError as exc:
            raise self._translate(what, exc) from None
        except SalesforceOperationError as exc:  # a Bulk API 2.0 job that failed or was aborted
            raise RetryableError(f"salesforce: {what}: {exc}") from None
        except requests.Timeout:
            raise RetryableError(f"salesforce: {what} timed out after {self.settings.timeout_seconds}s") from None
        except requests.RequestException as exc:
            raise RetryableError(f"salesforce: {what} failed: {type(exc).__name__}") from None

    def _translate(self, what: str, exc: SalesforceError) -> Exception:
        codes = {str(i.get("errorCode")) for i in error_items(exc)}
        reason = _codes(exc)
        if "REQUEST_LIMIT_EXCEEDED" in codes:
            return ApiLimitExceeded(
                f"salesforce: the org's daily API request limit is spent ({reason}); "
                f"pausing {self.settings.limit_pause_seconds:.0f}s, the outbox keeps the records",
                retry_after=self.settings.limit_pause_seconds,
            )
        if exc.status >= 500:
            return RetryableError(f"salesforce: {what}: Salesforce answered {exc.status} ({reason})")
        if isinstance(exc, SalesforceRefusedRequest):
            return FatalError(
                f"salesforce: {what} was refused ({reason}); give the integration user's profile or permission "
                "set 'API Enabled' and Read/Create/Edit/Delete on Contact, Case, Lead, SocialPersona and SocialPost"
            )
        if isinstance(exc, SalesforceResourceNotFound) or codes & {"INVALID_TYPE", "NOT_FOUND"}:
            return FatalError(
                f"salesforce: {what}: not found ({reason}); SocialPersona and SocialPost need Social Customer "
                "Service enabled (Setup > Social Customer Service) and the user needs access to each object"
            )
        if isinstance(exc, SalesforceMalformedRequest) and "INVALID_FIELD" in codes:
            return FatalError(
                f"salesforce: {what}: {reason}; create the field as docs/adapters/salesforce.md says "
                "(run `scrm check` for the exact list) and give the integration user Edit access to it"
            )
        return FatalError(f"salesforce: {what} was refused ({reason})")
