"""Mastodon.py, configured never to sleep, with its exceptions turned into scrm's three kinds.

``ratelimit_method="throw"`` makes Mastodon.py raise ``MastodonRatelimitError`` on a 429
instead of sleeping; it has already read ``X-RateLimit-Reset`` into ``ratelimit_reset``
(epoch seconds, adjusted to the local clock with the ``Date`` header), which becomes
``retry_after`` (https://docs.joinmastodon.org/api/rate-limits/). Every method blocks: the
adapter runs them through ``AdapterContext.run_blocking``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from scrm_core.errors import FatalError, RetryableError, SkippableError

from .settings import MastodonSettings

__all__ = ["DEFAULT_RETRY_AFTER", "MastodonApi", "NotFound"]

T = TypeVar("T")
#: Used when a 429 came without a usable reset time: Mastodon's windows are 5 minutes.
DEFAULT_RETRY_AFTER = 60.0


class NotFound(Exception):
    """404: the status or account is gone (deleted, or no longer visible to the brand)."""


class MastodonApi:
    def __init__(self, settings: MastodonSettings) -> None:
        # Mastodon.py is imported here, when a client is built, not when the plugin loads.
        from mastodon import Mastodon

        self.client = Mastodon(
            access_token=settings.access_token.get_secret_value(),
            api_base_url=settings.base_url,
            ratelimit_method="throw",
            request_timeout=settings.timeout_seconds,
            version_check_mode="none",
            user_agent="scrm-mastodon",
        )

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` with Mastodon.py's errors mapped; ``what`` names the call in messages."""
        from mastodon.errors import (
            MastodonAPIError,
            MastodonNetworkError,
            MastodonNotFoundError,
            MastodonRatelimitError,
            MastodonServerError,
            MastodonUnauthorizedError,
        )

        try:
            return fn(*args, **kwargs)
        except MastodonRatelimitError:
            reset = self.client.ratelimit_reset
            wait = max(reset - time.time(), 0.0) if reset else DEFAULT_RETRY_AFTER
            raise RetryableError(
                f"Mastodon rate limit reached ({what}); retry in {wait:.0f} s", retry_after=wait
            ) from None
        except MastodonUnauthorizedError as exc:
            raise FatalError(
                f"Mastodon refused the access_token setting ({what}: {_reason(exc)}); create a new token for the "
                "brand account with scopes read:statuses read:notifications read:accounts write:statuses"
            ) from None
        except MastodonNotFoundError as exc:
            raise NotFound(_reason(exc)) from None
        except (MastodonServerError, MastodonNetworkError) as exc:
            raise RetryableError(f"Mastodon did not answer ({what}): {_reason(exc)}") from None
        except MastodonAPIError as exc:
            status = _status(exc)
            if status == 403:
                raise FatalError(
                    f"Mastodon refused {what} (403: {_reason(exc)}); the access_token lacks a scope "
                    "(read:statuses, read:notifications, read:accounts, write:statuses) or the action is not allowed"
                ) from None
            if status == 422:
                raise SkippableError(f"Mastodon will not take this ({what}): {_reason(exc)}") from None
            if status is not None and status >= 500:
                raise RetryableError(f"Mastodon failed ({what}): {_reason(exc)}") from None
            raise FatalError(f"Mastodon answered {status} to {what}: {_reason(exc)}") from None


def _status(exc: Exception) -> int | None:
    """Mastodon.py raises ``(message, status code, reason, error text)``."""
    return exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None


def _reason(exc: Exception) -> str:
    args = exc.args
    if len(args) >= 4:
        return str(args[3] or args[2])
    return str(args[0]) if args else type(exc).__name__
