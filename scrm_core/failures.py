"""What a failure means, decided in one place: this item's, or its source's for now.

The engine reads items (stored webhook payloads, replay lines, network items) through
adapters it does not trust to raise the right exception type: a hostile payload makes
``json`` recurse too deep (``RecursionError``), a field of the wrong type makes a loop
fail (``TypeError``), a timestamp out of range overflows (``OverflowError``, ``OSError``).
Whatever the type, the rule is:

* :func:`is_transient` failures (:class:`~scrm_core.errors.RetryableError`, a network
  error, a timeout) are the *source's*, for now: the item is read again after the one
  back-off (:func:`scrm_core.retry.backoff`: exponential, capped, with jitter);
* every other failure is the *item's*: it becomes one dead letter naming the source and
  the item (inbox id, file:line, network id) with :func:`item_reason`, and the rest goes
  on. Never an engine stop.

Adapters that turn many network items into events map each one under :func:`guarded`
(:class:`~scrm_core.PollingAdapter` does it for them), which applies the rule item by item.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Awaitable, Callable, Sequence

from .errors import FatalError, RetryableError, ScrmError
from .models import Event, MessageDeleted, ProfileUpdated
from .redaction import printable, redact

__all__ = ["MAX_REASON", "event_locator", "guarded", "is_transient", "item_reason"]

#: Longest reason kept in a dead letter.
MAX_REASON = 300


def is_transient(exc: BaseException) -> bool:
    """True when trying the same item again later may work: the source, not the item, failed."""
    if isinstance(exc, RetryableError | ConnectionError | TimeoutError):
        return True
    httpx = sys.modules.get("httpx")  # not imported: the error cannot be one of its
    return httpx is not None and isinstance(exc, httpx.TransportError)


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


async def guarded(
    locator: str,
    make: Callable[[], Sequence[Event] | Awaitable[Sequence[Event]]],
    rejects: list[tuple[str, str]],
    *,
    fatal_stops: bool = True,
) -> list[Event]:
    """The events of one item: ``make()``, sync or async. The rule above, for one item: a
    transient failure is raised (the page is read again later), and so is a
    :class:`~scrm_core.errors.FatalError` (the credentials', not the item's), unless
    ``fatal_stops`` is False (a stored payload: nothing but the payload can be wrong with it);
    any other failure appends ``(locator, reason)`` to ``rejects`` and gives no event."""
    try:
        result = make()
        if inspect.isawaitable(result):
            result = await result
        return list(result)
    except Exception as exc:
        if is_transient(exc) or (fatal_stops and isinstance(exc, FatalError)):
            raise
        rejects.append((locator, item_reason(exc)))
        return []
