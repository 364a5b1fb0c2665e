"""The adapter kit's HTTP half: one client factory, one rate-limit reader, one retry policy.

Every network adapter that speaks HTTP needs the same few things, and they live here once:

* :func:`make_client`: an ``httpx.AsyncClient`` with scrm's timeouts and user agent. The
  engine makes one and hands it to every adapter as :attr:`AdapterContext.http
  <scrm_core.AdapterContext.http>`; :class:`HttpApi` makes its own only when an adapter
  runs outside the engine (a test, a script). Log records go through the ``scrm`` loggers
  and so through the core's redaction filter; nothing here logs a URL or a header.
* :func:`retry_after_seconds`: the ``Retry-After`` header in both of its forms (seconds,
  or an HTTP date: RFC 9110, section 10.2.3).
* :func:`parse_rate_limit`: the rate-limit headers networks send (``Retry-After``,
  ``RateLimit-*``, ``X-RateLimit-*``, ``X-Rate-Limit-*``), as one :class:`RateLimit`
  that :meth:`RateLimit.feed` turns into waits on a :class:`~scrm_core.ratelimit.RateBudget`.
* :func:`~scrm_core.retry.retrying`: the one retry policy (tenacity), the sink's and the
  engine's too: retries :class:`~scrm_core.errors.RetryableError` only, waits what the
  service asked for when it said, else an exponential back-off with jitter, capped.
* :class:`HttpApi`: requests to one service (base URL, timeout, auth headers) that map
  transport failures, 429, 5xx, 401 and 403 to scrm's three errors, and feed the budget.

>>> retry_after_seconds("120")
120.0
>>> from datetime import UTC, datetime, timedelta
>>> retry_after_seconds("Wed, 21 Oct 2026 07:28:00 GMT", now=datetime(2026, 10, 21, 7, 27, 30, tzinfo=UTC))
30.0
>>> limits = parse_rate_limit({"x-ratelimit-limit": "300", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "42"})
>>> limits.remaining, limits.reset_seconds
(0, 42.0)
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from .errors import FatalError, RetryableError
from .ratelimit import RateBudget
from .retry import backoff, retrying

if TYPE_CHECKING:
    import httpx

__all__ = [
    "USER_AGENT",
    "HttpApi",
    "Quota",
    "RateLimit",
    "body_retry_after",
    "error_text",
    "make_client",
    "parse_rate_limit",
    "retry_after_seconds",
    "retrying",
]

log = logging.getLogger("scrm.http")

USER_AGENT = "scrm/0.1 (social CRM integration; +https://pypi.org/project/scrm-core/)"
#: Seconds; every adapter's ``timeout_seconds`` setting overrides it per request.
DEFAULT_TIMEOUT = 30.0
#: A reset time above this is a Unix time, below it a number of seconds (no window lasts 30 years).
_EPOCH_THRESHOLD = 1e9


def make_client(
    *,
    base_url: str = "",
    timeout_seconds: float = DEFAULT_TIMEOUT,
    user_agent: str = USER_AGENT,
    headers: Mapping[str, str] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` as scrm uses them: bounded connect/read timeouts, scrm's user
    agent, no redirects followed (a redirect to another host would carry the credentials)."""
    import httpx  # here, not at the top: loading a plugin or `scrm status` needs no HTTP client

    timeout = httpx.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds))
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=timeout,
        headers={"User-Agent": user_agent, **(headers or {})},
        follow_redirects=False,
        transport=transport,
    )


# ---------------------------------------------------------------- rate-limit headers


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: ``delay-seconds`` or an ``HTTP-date``.

    None when absent or unreadable; never negative (a date in the past means now).
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _number(headers: Mapping[str, str], *names: str) -> float | None:
    for name in names:
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return float(raw.split(",")[0].strip())
        except ValueError:
            continue
    return None


@dataclass(frozen=True)
class Quota:
    """A long quota: ``used`` of ``limit`` calls per ``period_seconds``; ``resets_in`` when the
    service's period is a calendar one (None for a rolling period)."""

    used: int
    limit: int
    period_seconds: float
    resets_in: float | None = None


@dataclass(frozen=True)
class RateLimit:
    """What a response said about the caller's rate: all optional, in seconds from now."""

    limit: int | None = None
    remaining: int | None = None
    reset_seconds: float | None = None
    retry_after: float | None = None
    #: The length of the window ``limit`` counts in, when the service says (HubSpot does).
    window_seconds: float | None = None
    quota: Quota | None = None

    @property
    def spent(self) -> bool:
        """No call is left in the current window."""
        return self.remaining is not None and self.remaining <= 0

    @property
    def wait(self) -> float | None:
        """How long the service asked for no calls: ``Retry-After``, or the reset of a spent window."""
        if self.retry_after is not None:
            return self.retry_after
        return self.reset_seconds if self.spent else None

    @property
    def refused_wait(self) -> float | None:
        """How long to wait after the service refused a call for its rate (429): ``Retry-After``,
        else the window's reset, else the window's length."""
        for wait in (self.retry_after, self.reset_seconds, self.window_seconds):
            if wait is not None:
                return wait
        return None

    def feed(self, budget: RateBudget, *, pace: bool = False) -> None:
        """Tell ``budget`` what the service said: a pause when it asked for one or the window is
        spent; with ``pace``, also spread the calls left over the rest of the window, and
        keep within the long quota."""
        wait = self.wait
        if wait is not None and wait > 0:
            budget.pause(wait, reason="rate limit reached")
        elif pace and self.limit is not None and self.remaining is not None and self.window_seconds:
            budget.observe_window(limit=self.limit, remaining=self.remaining, window_seconds=self.window_seconds)
        elif pace and self.remaining is not None and self.reset_seconds:
            budget.observe_window(limit=self.remaining, remaining=self.remaining, window_seconds=self.reset_seconds)
        if pace and self.quota is not None:
            q = self.quota
            budget.observe_quota(used=q.used, limit=q.limit, period_seconds=q.period_seconds, resets_in=q.resets_in)


_DAY = 86_400.0
# Salesforce: "Sforce-Limit-Info: api-usage=25/15000", the org's rolling 24 h API requests
# (developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm).
_SFORCE_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


def _until_midnight_utc(clock: float) -> float:
    now = datetime.fromtimestamp(clock, UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - now).total_seconds()


def _quota(headers: Mapping[str, str], clock: float) -> Quota | None:
    daily, daily_left = (
        _number(headers, "x-hubspot-ratelimit-daily"),
        _number(headers, "x-hubspot-ratelimit-daily-remaining"),
    )
    if daily is not None and daily_left is not None:
        # HubSpot resets the daily count at midnight in the account's time zone; UTC is the guess.
        return Quota(int(daily - daily_left), int(daily), _DAY, _until_midnight_utc(clock))
    match = _SFORCE_USAGE.search(headers.get("sforce-limit-info") or "")
    if match:
        return Quota(int(match.group(1)), int(match.group(2)), _DAY)
    return None


def parse_rate_limit(headers: Mapping[str, str], *, now: float | None = None) -> RateLimit:
    """The rate-limit headers of a response, whichever family the service uses.

    * ``Retry-After`` (seconds or an HTTP date);
    * ``RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` (IETF draft; reset in seconds);
    * ``X-RateLimit-*`` (Mastodon, Reddit, GitHub-style) and ``X-Rate-Limit-*`` (X); a reset
      above 10^9 is read as a Unix time, below as seconds (Reddit sends seconds, X and
      Bluesky's ``ratelimit-reset`` a Unix time, Mastodon an ISO date);
    * HubSpot's ``X-HubSpot-RateLimit-Max`` / ``-Remaining`` / ``-Interval-Milliseconds``
      (the window) and ``-Daily`` / ``-Daily-Remaining`` (a quota reset at midnight);
    * Salesforce's ``Sforce-Limit-Info: api-usage=N/M`` (a rolling 24 h quota).

    ``headers`` must look names up case-insensitively (``httpx.Headers``, requests' and
    urllib3's headers do).
    """
    clock = time.time() if now is None else now
    limit = _number(headers, "ratelimit-limit", "x-ratelimit-limit", "x-rate-limit-limit", "x-hubspot-ratelimit-max")
    remaining = _number(
        headers,
        "ratelimit-remaining",
        "x-ratelimit-remaining",
        "x-rate-limit-remaining",
        "x-hubspot-ratelimit-remaining",
    )
    reset = _number(headers, "ratelimit-reset", "x-ratelimit-reset", "x-rate-limit-reset")
    if reset is None:
        iso = headers.get("x-ratelimit-reset")
        if iso:
            try:
                reset = datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
            except ValueError:
                reset = None
    if reset is not None and reset > _EPOCH_THRESHOLD:
        reset = reset - clock
    interval_ms = _number(headers, "x-hubspot-ratelimit-interval-milliseconds")
    return RateLimit(
        limit=int(limit) if limit is not None else None,
        remaining=int(remaining) if remaining is not None else None,
        reset_seconds=max(0.0, reset) if reset is not None else None,
        retry_after=retry_after_seconds(headers.get("retry-after")),
        window_seconds=interval_ms / 1000 if interval_ms else None,
        quota=_quota(headers, clock),
    )


# ---------------------------------------------------------------- one service


class HttpApi:
    """Requests to one HTTP service: ``base_url`` + path, a per-request timeout, auth headers.

    Uses the host's shared client (``context.http``) when there is one, else a client of its
    own made by :func:`make_client` and closed by :meth:`aclose`. Around each request:

    * timeouts and connection failures -> :class:`RetryableError` (for the engine, which
      retries a source with its one policy: ``engine.max_attempts``, back-off with jitter);
    * 429 and 503 -> :class:`RetryableError` with the wait from :func:`parse_rate_limit`,
      after pausing :attr:`budget`; other 5xx and 408 -> :class:`RetryableError`;
    * 401 and 403 -> :class:`FatalError` naming ``credentials`` (the settings to check);
    * every answer's rate-limit headers feed :attr:`budget`, and :meth:`request` waits on
      the budget first, so a spent window is waited out instead of refused.

    Any other answer (2xx, and 4xx the adapter knows the meaning of) is returned as it is;
    with ``map_errors=False`` every answer is (for an API whose error bodies carry codes the
    adapter maps itself, such as Meta's Graph API).
    ``name`` prefixes every error message (``"telegram: getUpdates answered 500"``).
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        credentials: str = "the credentials",
        budget: RateBudget | None = None,
        map_errors: bool = True,
        retries: int = 0,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.headers = dict(headers or {})
        self.credentials = credentials
        self.budget = budget or RateBudget(None, 1)
        self.map_errors = map_errors
        self.retries = retries
        self._given = http
        self._own: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._given is not None:
            return self._given
        if self._own is None:
            self._own = make_client(timeout_seconds=self.timeout_seconds)
        return self._own

    async def aclose(self) -> None:
        """Close the client this object made (never the host's)."""
        if self._own is not None:
            await self._own.aclose()
            self._own = None

    async def request(self, method: str, path: str, *, what: str | None = None, **kwargs: Any) -> httpx.Response:
        """``method base_url+path`` (``kwargs`` as for ``httpx.AsyncClient.request``).

        A read (GET, HEAD) that fails for a reason that may pass (a timeout, a dropped
        connection, a 5xx) is tried ``retries`` more times with the kit's policy
        (:func:`retrying`); a rate limit is raised at once, with its wait, for the engine.
        ``retries`` is 0 by default: the engine already retries a failing source with
        ``engine.max_attempts`` and its back-off, and retries stacked on retries would
        multiply the attempts an operator configured (an unreachable source must give up
        after ``max_attempts`` requests).
        """
        if method.upper() not in ("GET", "HEAD") or self.retries <= 0:
            return await self._request(method, path, what, kwargs)
        # The policy of retrying(rate_limited=False), as a plain loop: a tenacity policy per
        # request is a reference cycle of ~40 objects left for the (rare) collector.
        for attempt in range(1, self.retries + 2):
            try:
                return await self._request(method, path, what, dict(kwargs))
            except RetryableError as exc:
                if attempt > self.retries or exc.retry_after is not None:
                    raise  # the last attempt, or a wait the service named: the engine waits it
            await asyncio.sleep(backoff(attempt, initial=0.2, cap=5.0))
        raise AssertionError("unreachable: the last attempt re-raises")

    async def _request(self, method: str, path: str, what: str | None, kwargs: dict[str, Any]) -> httpx.Response:
        what = what or f"{method} {path.split('?')[0]}"
        headers = {**self.headers, **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", self.timeout_seconds)
        import httpx

        await self.budget.acquire()
        try:
            response = await self.client.request(method, self.base_url + path, headers=headers, **kwargs)
        except httpx.TimeoutException:
            raise RetryableError(f"{self.name}: {what}: no answer within {kwargs['timeout']}s") from None
        except httpx.TransportError as exc:
            raise RetryableError(f"{self.name}: {what}: connection failed ({type(exc).__name__})") from None
        limits = parse_rate_limit(response.headers)
        limits.feed(self.budget)
        status = response.status_code
        if status < 400 or not self.map_errors:
            return response
        said = f" ({reason})" if (reason := error_text(response)) else ""
        if status in (429, 503):
            wait = limits.refused_wait if status == 429 else limits.wait
            if wait is None:
                wait = body_retry_after(response)
            if wait is None and status == 429:
                wait = 60.0  # refused for its rate, without saying how long: a minute is the usual window
            if wait is not None:
                self.budget.pause(wait, reason=f"{self.name} answered {status}")
            raise RetryableError(f"{self.name}: {what}: {status}, slow down{said}", retry_after=wait)
        if status >= 500 or status == 408:
            raise RetryableError(f"{self.name}: {what}: the service answered {status}{said}")
        if status in (401, 403):
            raise FatalError(f"{self.name}: {what}: refused ({status}{said}); check {self.credentials}")
        return response

    async def get_json(self, path: str, *, what: str | None = None, **kwargs: Any) -> Any:
        return _json(await self.request("GET", path, what=what, **kwargs), self.name, what or f"GET {path}")

    async def post_json(self, path: str, *, what: str | None = None, **kwargs: Any) -> Any:
        return _json(await self.request("POST", path, what=what, **kwargs), self.name, what or f"POST {path}")


def error_text(response: httpx.Response) -> str:
    """The service's own words for a refusal, from the usual JSON error bodies (``description``,
    ``error``, ``errors``, ``detail``, ``title``, ``message``), at most 300 characters; never
    the request."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    nested = body.get("error")
    holders = [body, nested] if isinstance(nested, dict) else [body]
    for holder in holders:
        for key in ("description", "detail", "message", "error", "title", "errors"):
            value = holder.get(key)
            if isinstance(value, list) and value:
                value = "; ".join(str(v) for v in value)
            if isinstance(value, str) and value:
                return value[:300]
    return ""


def body_retry_after(response: httpx.Response) -> float | None:
    """The wait a JSON error body names: ``retry_after`` (seconds; Telegram nests it in
    ``parameters``), ``retry_after_ms`` (Matrix) or ``wait_seconds`` (Discourse's ``extras``),
    at the top level or one level down."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    for holder in (body, *(v for v in body.values() if isinstance(v, dict))):
        for key, scale in (("retry_after", 1.0), ("retry_after_ms", 0.001), ("wait_seconds", 1.0)):
            value = holder.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return max(0.0, float(value) * scale)
    return None


def _json(response: httpx.Response, name: str, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise RetryableError(f"{name}: {what}: answered {response.status_code} without JSON") from None
