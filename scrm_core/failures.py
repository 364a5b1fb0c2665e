"""What a failure means, decided in one place: this item's, or its source's for now.

The engine reads items (stored webhook payloads, replay lines, network items) through
adapters it does not trust to raise the right exception type: a hostile payload makes
``json`` recurse too deep (``RecursionError``), a field of the wrong type makes a loop
fail (``TypeError``), a timestamp out of range overflows (``OverflowError``, ``OSError``).
Whatever the type, the rule is:

* :func:`is_transient` failures (:class:`~scrm_core.errors.RetryableError`, a network
  error, a timeout) are the *source's*, for now: the item is read again after a back-off
  (:func:`backoff_seconds`, the sink's: exponential, capped, with jitter);
* every other failure is the *item's*: it becomes one dead letter naming the source and
  the item (inbox id, file:line, network id) with :func:`item_reason`, and the rest goes
  on. Never an engine stop.

Adapters that turn many network items into events map each one under :func:`parse_each`,
which applies the same rule item by item.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import httpx

from .errors import RetryableError, ScrmError
from .models import Event, MessageDeleted, ProfileUpdated
from .redaction import printable, redact

__all__ = ["MAX_REASON", "backoff_seconds", "event_locator", "is_transient", "item_reason", "parse_each"]

T = TypeVar("T")

#: Longest reason kept in a dead letter.
MAX_REASON = 300


def is_transient(exc: BaseException) -> bool:
    """True when trying the same item again later may work: the source, not the item, failed."""
    return isinstance(exc, RetryableError | httpx.TransportError | ConnectionError | TimeoutError)


def item_reason(exc: BaseException) -> str:
    """One short line for a dead letter: the adapter's own message for an scrm error, else
    the exception's type and text; redacted, control characters escaped, bounded."""
    if isinstance(exc, ScrmError):
        text = exc.operator_message
    else:
        detail = str(exc)
        text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return printable(redact(text), MAX_REASON)


def event_locator(event: Event) -> str:
    """Where an event came from, by its network id: ``message mastodon:1099``."""
    if isinstance(event, MessageDeleted):
        return f"deleted message {event.message_key}"
    if isinstance(event, ProfileUpdated):
        return f"profile {event.profile.key}"
    return f"message {event.message.key}"


def backoff_seconds(attempt: int, asked: float | None, cap: float) -> float:
    """The wait before attempt ``attempt + 1``: what the service asked for (capped), else
    0.5 s doubling per attempt up to ``cap``, with jitter (50-100%) so that many waiting
    processes do not retry in step. The same policy as the sink's."""
    if asked is not None:
        return max(0.0, min(asked, cap))
    exponential: float = min(0.5 * 2.0 ** (attempt - 1), cap)
    return exponential * (0.5 + random.random() / 2)


async def parse_each(
    items: Iterable[T], parse: Callable[[T], Awaitable[list[Event]]], locate: Callable[[T], str]
) -> tuple[list[Event], list[tuple[str, str]]]:
    """Events from each item, and ``(locator, reason)`` rejects for items that fail: the rule
    above, item by item. A transient failure is raised (the page is read again later)."""
    events: list[Event] = []
    rejects: list[tuple[str, str]] = []
    for item in items:
        try:
            events += await parse(item)
        except Exception as exc:
            if is_transient(exc):
                raise
            rejects.append((locate(item), item_reason(exc)))
    return events, rejects
