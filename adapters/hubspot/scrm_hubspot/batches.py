"""HubSpot batch answers, split into one outcome per record.

Batch endpoints answer 200 when every input was applied and 207 (multi-status) when
some were not: ``results`` for the good ones (in no promised order) and ``errors``
(``status``, ``category``, ``message``, ``context``) for the rest, where ``context``
names the inputs by the ``objectWriteTraceId`` we gave them or by their ``ids``
(https://developers.hubspot.com/docs/api/crm/understanding-the-crm). A whole-batch 400
``VALIDATION_ERROR`` (HubSpot refuses some batches outright for one bad input) is split
in halves until the bad record stands alone, so good records never pay for it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .api import Reply, error_category

__all__ = ["TRANSIENT_CATEGORIES", "RecordOutcome", "refusal", "write_batch"]

#: Per-record error categories that may succeed if the record is sent again.
TRANSIENT_CATEGORIES = frozenset({"RATE_LIMITS", "SERVICE_UNAVAILABLE", "INTERNAL_ERROR", "TIMEOUT", "LOCKED"})


@dataclass(frozen=True)
class RecordOutcome:
    ok: bool
    crm_id: str | None = None
    error: str | None = None
    retryable: bool = False
    code: str | None = None
    fix: str | None = None
    new: bool = False  # the write created the record

    @classmethod
    def failed(cls, error: str, *, retryable: bool, code: str | None = None, fix: str | None = None) -> RecordOutcome:
        return cls(ok=False, error=error, retryable=retryable, code=code, fix=fix)


RETRY = "then `scrm dlq retry <id>`"
FIXES = {
    "CONFLICT": (
        "another HubSpot record already holds this unique value (two profiles with one email, say): link the "
        "profiles with `scrm identity link`, or change the value in HubSpot, " + RETRY
    ),
    "VALIDATION_ERROR": (
        "HubSpot refused a value: change the property's definition (Settings > Properties) or the [crm.settings] "
        "value it came from, " + RETRY
    ),
    "INVALID_OPTION": (
        "add the option to the property in HubSpot (Settings > Properties) or set the [crm.settings] value to one "
        "of its options, " + RETRY
    ),
    "OBJECT_NOT_FOUND": "the record was deleted in HubSpot; " + RETRY + " to write it again",
}
_DEFAULT_FIX = "read the reason above; fix the record or the account's set-up, " + RETRY
_INNER = re.compile(r'"error":\s*"([A-Z_]+)"')


def refusal(category: str, message: str) -> RecordOutcome:
    """A record HubSpot refused, with the most precise code there is (the inner ``error`` of a
    ``Property values were not valid`` message) and, unless it may pass next time, the fix."""
    inner = _INNER.search(message)
    code = inner.group(1) if inner else category
    retryable = category in TRANSIENT_CATEGORIES
    fix = None if retryable else FIXES.get(code, FIXES.get(category, _DEFAULT_FIX))
    return RecordOutcome.failed(f"{category}: {message}", retryable=retryable, code=code, fix=fix)


NO_ANSWER = RecordOutcome.failed("HubSpot returned no result for this record", retryable=True)

#: (key, request input) pairs -> the request's reply.
Send = Callable[[list[dict[str, Any]]], Awaitable[Reply]]


def split(
    reply: Reply, keys: Sequence[str], key_of: Callable[[dict[str, Any]], str | None], error_keys: Mapping[str, str]
) -> dict[str, RecordOutcome]:
    """Outcome per key of a 200/207 batch reply; ``error_keys`` maps trace ids and record ids to keys."""
    body = reply.body if isinstance(reply.body, dict) else {}
    out: dict[str, RecordOutcome] = {}
    for result in body.get("results") or []:
        key = key_of(result)
        if key is not None:
            out[key] = RecordOutcome(ok=True, crm_id=str(result.get("id")), new=bool(result.get("new")))
    for error in body.get("errors") or []:
        category, message = error_category(error)
        context = error.get("context") or {}
        for ref in [*context.get("objectWriteTraceId", []), *context.get("ids", [])]:
            key = error_keys.get(str(ref))
            if key is not None:
                out[key] = refusal(category, message)
    return {key: out.get(key, NO_ANSWER) for key in keys}


async def write_batch(
    send: Send,
    items: Sequence[tuple[str, dict[str, Any]]],
    key_of: Callable[[dict[str, Any]], str | None],
    error_keys: Mapping[str, str],
) -> dict[str, RecordOutcome]:
    """Send ``items`` (key, input) as one batch; bisect a whole-batch validation refusal."""
    if not items:
        return {}
    reply = await send([item for _, item in items])
    keys = [key for key, _ in items]
    if reply.ok:
        return split(reply, keys, key_of, error_keys)
    category, message = error_category(reply.body)
    if reply.status == 400 and category == "VALIDATION_ERROR" and len(items) > 1:
        half = len(items) // 2
        return {
            **await write_batch(send, items[:half], key_of, error_keys),
            **await write_batch(send, items[half:], key_of, error_keys),
        }
    return dict.fromkeys(keys, refusal(category, message))
