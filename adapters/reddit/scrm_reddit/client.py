"""A blocking praw client with scrm's error classes; the adapter runs it in a worker thread.

Two things praw/prawcore do on their own are kept from happening:

* **Blind retries.** prawcore retries any request (POSTs too) on 5xx and on connection
  errors (``Session.RETRY_STATUSES`` / ``RETRY_EXCEPTIONS`` in ``prawcore/sessions.py``).
  A POST /api/comment whose answer was lost would then be posted twice. The
  :class:`GuardedRequestor` (praw's documented ``requestor_class`` hook) reports those
  failures as exceptions prawcore does not retry; scrm retries, and ``send_reply`` looks
  for the earlier reply first.
* **Long sleeps.** prawcore sleeps until ``X-Ratelimit-Reset`` when
  ``X-Ratelimit-Remaining`` reaches 0 (``prawcore/rate_limit.py``). The requestor keeps
  the last headers, and :meth:`RedditClient.call` raises ``RetryableError(retry_after)``
  instead, so the engine waits and the worker thread is never parked for minutes.
  Short, proportional delays prawcore adds while budget remains (10 s at most) are kept.

Headers (https://github.com/reddit-archive/reddit/wiki/API, "Rules"): ``X-Ratelimit-Used``,
``X-Ratelimit-Remaining`` (sent as a float, e.g. ``595.0``), ``X-Ratelimit-Reset`` (seconds).
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import praw
import prawcore
import requests
from praw.exceptions import ClientException, RedditAPIException
from prawcore.exceptions import (
    Forbidden,
    InsufficientScope,
    NotFound,
    OAuthException,
    Redirect,
    RequestException,
    ResponseException,
)

from scrm_core import FatalError, RateLimit, RetryableError, SkippableError, parse_rate_limit

from .settings import RedditSettings

__all__ = ["GuardedRequestor", "RedditClient", "Transient"]

T = TypeVar("T")
_RETRY_STATUSES = frozenset({500, 502, 503, 504, 520, 522, 408})
_MINUTES = re.compile(r"(\d+) (millisecond|second|minute)")
#: Reddit's error codes for a reply it will never take (api_type=json errors; from memory
#: of reddit's r2/r2/lib/errors.py): the parent is gone, locked, or the text is refused.
_NEVER = frozenset(
    {
        "DELETED_COMMENT",
        "DELETED_LINK",
        "THREAD_LOCKED",
        "TOO_LONG",
        "NO_TEXT",
        "NO_THING_ID",
        "TOO_OLD",
        "BANNED_FROM_SUBREDDIT",
    }
)


class Transient(Exception):
    """A failure prawcore must not retry by itself: 5xx, 429 or a lost connection."""

    def __init__(self, why: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(why)
        self.status, self.retry_after = status, retry_after


class RateState:
    """The last rate-limit headers seen (shared by the requestor and the client)."""

    def __init__(self) -> None:
        self.remaining: float | None = None
        self.reset_at: float | None = None  # time.monotonic() when the window ends
        self.lock = threading.Lock()

    def observe(self, headers: Any) -> RateLimit:
        limits = parse_rate_limit(headers)
        if limits.remaining is not None and limits.reset_seconds is not None:
            with self.lock:
                self.remaining, self.reset_at = limits.remaining, time.monotonic() + limits.reset_seconds
        return limits

    def wait_needed(self) -> float | None:
        with self.lock:
            if self.remaining is None or self.reset_at is None or self.remaining > 0:
                return None
            left = self.reset_at - time.monotonic()
        return left if left > 0 else None


class GuardedRequestor(prawcore.Requestor):
    """prawcore's Requestor, but 5xx, 429 and transport errors end the call (see module doc)."""

    def __init__(self, *args: Any, rate: RateState, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rate = rate

    def request(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> requests.Response:
        try:
            response = super().request(*args, timeout=timeout, **kwargs)
        except RequestException as exc:
            why = type(exc.original_exception).__name__
            raise RequestException(Transient(f"connection failed ({why})"), args, kwargs) from None
        limits = self.rate.observe(response.headers)
        status = response.status_code
        if status == 429:
            retry_after = limits.refused_wait
            raise RequestException(Transient("rate limited (429)", status=429, retry_after=retry_after), args, kwargs)
        if status in _RETRY_STATUSES:
            raise RequestException(Transient(f"Reddit answered {status}", status=status), args, kwargs)
        return response


class RedditClient:
    """praw, configured from :class:`RedditSettings`; every call goes through :meth:`call`."""

    def __init__(self, settings: RedditSettings) -> None:
        self.settings = settings
        self.rate = RateState()
        self.session = requests.Session()
        secret = settings.client_secret.get_secret_value() if settings.client_secret else None
        self.reddit = praw.Reddit(
            client_id=settings.client_id,
            client_secret=secret,
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            refresh_token=settings.refresh_token.get_secret_value() if settings.refresh_token else None,
            user_agent=settings.user_agent,
            oauth_url=settings.base_url,
            reddit_url=settings.reddit_url,
            short_url=settings.reddit_url,
            timeout=max(1, round(settings.timeout_seconds)),
            check_for_updates=False,  # update_checker would call PyPI
            check_for_async=False,  # calls run in a worker thread on purpose
            requestor_class=GuardedRequestor,
            requestor_kwargs={"session": self.session, "rate": self.rate},
        )
        self._me: tuple[str, str] | None = None

    def close(self) -> None:
        self.session.close()

    # ------------------------------------------------------------ error mapping

    def call(self, what: str, fn: Callable[[], T], *, replying: bool = False) -> T:
        """Run one praw call; map its failures to FatalError / RetryableError / SkippableError."""
        wait = self.rate.wait_needed()
        if wait is not None:
            raise RetryableError(f"reddit: rate limit spent, window resets in {wait:.0f}s", retry_after=wait)
        try:
            return fn()
        except RequestException as exc:
            original = exc.original_exception
            if isinstance(original, Transient):
                raise RetryableError(f"reddit: {what}: {original}", retry_after=original.retry_after) from None
            raise RetryableError(f"reddit: {what}: request failed ({type(original).__name__})") from None
        except OAuthException as exc:
            grant = "password" if self.settings.password is not None else "refresh_token"
            raise FatalError(
                f"reddit: Reddit refused to log in ({exc.error}): check the settings username and {grant}"
            ) from None
        except InsufficientScope:
            raise FatalError(
                f"reddit: {what}: the token lacks an OAuth scope this needs (identity, read, privatemessages, submit); "
                "authorize the app again with those scopes"
            ) from None
        except Redirect as exc:
            raise FatalError(f"reddit: {what}: Reddit redirected to {exc.path}; check the subreddits setting") from None
        except (Forbidden, NotFound) as exc:
            status = exc.response.status_code
            if replying:
                raise SkippableError(f"reddit: {what}: Reddit answered {status}; the reply cannot be posted") from None
            raise FatalError(
                f"reddit: {what}: Reddit answered {status}; check that u/{self.settings.username} may read it "
                "(subreddits setting, private or banned subreddit)"
            ) from None
        except ResponseException as exc:
            status = exc.response.status_code
            if status == 401 and "access_token" in exc.response.url:
                raise FatalError(
                    "reddit: Reddit refused the app's credentials (401 from the token endpoint): check the "
                    "settings client_id and client_secret"
                ) from None
            if status == 401:
                raise FatalError(f"reddit: {what}: Reddit refused the access token (401)") from None
            raise RetryableError(f"reddit: {what}: unexpected answer {status}") from None
        except RedditAPIException as exc:
            codes = [item.error_type for item in exc.items]
            if "RATELIMIT" in codes:
                raise RetryableError(f"reddit: {what}: RATELIMIT", retry_after=_ratelimit_seconds(exc)) from None
            if replying and set(codes) & _NEVER:
                raise SkippableError(f"reddit: {what}: Reddit refused the reply ({', '.join(codes)})") from None
            raise SkippableError(f"reddit: {what}: Reddit answered {', '.join(codes)}") from None
        except ClientException as exc:
            raise SkippableError(f"reddit: {what}: {exc}") from None

    # ------------------------------------------------------------ calls (blocking)

    def me(self) -> tuple[str, str]:
        """(``t2_`` fullname, username) of the configured account, fetched once."""
        if self._me is None:
            user = self.call("who am I (/api/v1/me)", lambda: self.reddit.user.me())
            if user is None:
                raise FatalError("reddit: /api/v1/me gave no account; the credentials are not a user's")
            self._me = (f"t2_{user.id}", str(user.name))
        return self._me

    def listing(self, path: str, params: dict[str, str | int]) -> tuple[list[Any], str | None]:
        """One page of a listing: (children newest first, ``after``)."""
        result = self.call(f"GET {path}", lambda: self.reddit.get(path, params=params))
        return list(result.children), result.after

    def info(self, fullnames: list[str]) -> list[Any]:
        """``GET /api/info``: the things, up to 100 fullnames per call (see ``Reddit.info``)."""
        found: list[Any] = []
        for i in range(0, len(fullnames), 100):
            params: dict[str, str | int] = {"id": ",".join(fullnames[i : i + 100])}
            result = self.call("GET /api/info", functools.partial(self.reddit.get, "/api/info", params=params))
            found += list(result.children)
        return found


def _ratelimit_seconds(exc: RedditAPIException) -> float | None:
    for item in exc.items:
        match = _MINUTES.search(item.message or "")
        if match:
            n, unit = int(match.group(1)), match.group(2)
            return n * 60.0 if unit == "minute" else 0.0 if unit == "millisecond" else float(n)
    return None
