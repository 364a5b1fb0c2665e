"""tweepy's ``Client`` pointed at a configurable base URL, and its errors mapped to scrm's.

tweepy 4.x builds every URL in ``BaseClient.request`` as ``"https://api.twitter.com" +
route``, with the host in a local variable, and sends it through ``self.session`` (a
``requests.Session``). Rather than copy that 60-line method to change one string, the
client gets a session that swaps the prefix for ``api_base_url``. The swap happens before
requests prepares the request, so an OAuth 1.0a signature covers the URL actually called.
tweepy passes no timeout, so the session adds one too.

tweepy logs each request's headers at DEBUG, Authorization included; the core's redaction
filter on its logger blanks them, even where the process did not install scrm's logging.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
import tweepy

from scrm_core import FatalError, RetryableError, ScrmError, SkippableError, parse_rate_limit
from scrm_core.redaction import RedactingFilter

__all__ = ["TWEEPY_HOST", "XClient", "translate"]

TWEEPY_HOST = "https://api.twitter.com"


class _RebasedSession(requests.Session):
    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        url = url.decode() if isinstance(url, bytes) else url
        if url.startswith(TWEEPY_HOST):
            url = self.base_url + url[len(TWEEPY_HOST) :]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


class XClient(tweepy.Client):  # type: ignore[misc]  # tweepy ships no type hints
    """``tweepy.Client`` answering raw JSON dicts, never sleeping on a rate limit, at ``base_url``."""

    def __init__(self, base_url: str, timeout: float, **credentials: str | None) -> None:
        super().__init__(**credentials, return_type=dict, wait_on_rate_limit=False)
        self.session = _RebasedSession(base_url, timeout)


# The core's redaction (the credentials in X's settings, and any "Bearer ..." shape).
logging.getLogger("tweepy.client").addFilter(RedactingFilter())


def problem(exc: tweepy.HTTPException) -> str:
    """X's own words for a refusal (``detail`` or ``errors[].message``), never the request."""
    try:
        body = exc.response.json()
    except ValueError:
        return f"{exc.response.status_code} {exc.response.reason}"
    parts = [str(body.get("title", "")), str(body.get("detail", ""))]
    parts += [str(e.get("message", "")) for e in body.get("errors", []) if isinstance(e, dict)]
    return ": ".join(p for p in parts if p) or str(exc.response.status_code)


def problem_type(exc: tweepy.HTTPException) -> str:
    try:
        return str(exc.response.json().get("type", ""))
    except (ValueError, AttributeError):
        return ""


def translate(exc: Exception, credentials: str, what: str) -> ScrmError:
    """The scrm error for a failed call; ``credentials`` names the settings that were used.

    Rate limits: 429 with ``x-rate-limit-reset``, the Unix time the window resets
    (https://docs.x.com/fundamentals/rate-limits).
    """
    if isinstance(exc, tweepy.TooManyRequests):
        wait = parse_rate_limit(exc.response.headers).refused_wait
        return RetryableError(f"x: rate limit reached while {what}", retry_after=wait)
    if isinstance(exc, tweepy.Unauthorized):
        return FatalError(f"x: X refused the credentials in {credentials} while {what} (401); check or renew them")
    if isinstance(exc, tweepy.Forbidden):
        return FatalError(
            f"x: X refused {what} with the credentials in {credentials} (403: {problem(exc)}); check the app's "
            "access level and the token's scopes (tweet.read, tweet.write, users.read)"
        )
    if isinstance(exc, tweepy.TwitterServerError):
        return RetryableError(f"x: X answered {exc.response.status_code} while {what}")
    if isinstance(exc, tweepy.NotFound):
        return SkippableError(f"x: X found nothing while {what} (404: {problem(exc)})")
    if isinstance(exc, tweepy.HTTPException):
        return FatalError(f"x: X refused the request while {what} ({exc.response.status_code}: {problem(exc)})")
    if isinstance(exc, requests.RequestException):
        return RetryableError(f"x: no answer from X while {what} ({type(exc).__name__})")
    raise exc
