"""What a network adapter needs to receive webhooks: the request it checks, and the checks.

``scrm serve`` reads a request's raw body (bounded), builds a :class:`WebhookRequest` and
hands it to the source's :meth:`NetworkAdapter.verify_webhook
<scrm_core.adapters.NetworkAdapter.verify_webhook>` **before anything is parsed or
stored**. The adapter checks the signature (with :func:`signature_matches`, constant time)
and, where the network signs one, the timestamp (:func:`check_timestamp`). It raises
:class:`WebhookRejected` to refuse, returns a :class:`WebhookAnswer` to answer without
storing (a subscription handshake), or returns None: the receiver then writes the raw
payload to the state store and only then answers 200. Parsing into events happens later,
in ``parse_webhook``, from the stored copy; so a crash right after the 200 loses nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

__all__ = [
    "MAX_JSON_DEPTH",
    "WebhookAnswer",
    "WebhookPayloadError",
    "WebhookRejected",
    "WebhookRequest",
    "check_timestamp",
    "hmac_sha256_hex",
    "parse_webhook_json",
    "signature_matches",
]

#: Deepest nesting of objects and arrays a webhook body may have. Real payloads are under
#: ten levels (Meta's: object > entry > changes > value > from); a deeper one is refused at
#: the door, so no reader ever meets a body that exhausts its recursion.
MAX_JSON_DEPTH = 64


@dataclass(frozen=True)
class WebhookRequest:
    """One request to a source's webhook endpoint. Header names are lower case."""

    method: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class WebhookAnswer:
    """An answer given at once, with nothing stored (e.g. Meta's ``hub.challenge`` echo)."""

    body: str
    status: int = 200
    media_type: str = "text/plain"


class WebhookRejected(Exception):
    """Refuse the request: ``status`` is the 4xx to answer, ``reason`` a short code that is counted.

    ``reason`` is for metrics and logs (``bad_signature``, ``stale_timestamp``,
    ``missing_signature``, ``bad_verify_token``...), never an echo of what was sent.
    """

    def __init__(self, status: int, reason: str) -> None:
        if not 400 <= status < 500:
            raise ValueError(f"a rejected webhook is answered with a 4xx, not {status}")
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


def hmac_sha256_hex(secret: str | bytes, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``body`` (what Meta, Discourse and most networks sign)."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def signature_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison; a missing signature never matches."""
    if not given:
        return False
    return hmac.compare_digest(expected.encode(), given.strip().encode())


def check_timestamp(signed: str | None, now: datetime, tolerance_seconds: float = 300.0) -> None:
    """Refuse a signed Unix timestamp (seconds or milliseconds) further than ``tolerance`` from now.

    A replayed request keeps its old, validly signed timestamp: that is what refuses it.
    """
    if not signed:
        raise WebhookRejected(401, "missing_timestamp")
    try:
        value = float(signed)
    except ValueError:
        raise WebhookRejected(400, "bad_timestamp") from None
    seconds = value / 1000.0 if value > 1e11 else value  # milliseconds since the epoch
    if abs(now.timestamp() - seconds) > tolerance_seconds:
        raise WebhookRejected(401, "stale_timestamp")


class WebhookPayloadError(ValueError):
    """A webhook body that is not JSON scrm accepts (not JSON, invalid UTF-8, too deep)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def parse_webhook_json(body: bytes) -> Any:
    """The JSON document in a webhook body: THE parser of webhook payloads, on both sides.

    The receiver calls it before it stores a body (and refuses with 400 what fails here);
    adapters call it in ``parse_webhook`` on the stored copy. Same parser (orjson: strict
    UTF-8, no NaN, no lone surrogates, numbers within a double's range), same depth limit
    (:data:`MAX_JSON_DEPTH`), so whatever was acknowledged can be read back. Raises
    :class:`WebhookPayloadError` (a ``ValueError``).
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WebhookPayloadError("malformed_json", f"not JSON: {exc}") from None
    if _depth_exceeds(document, MAX_JSON_DEPTH):
        raise WebhookPayloadError("json_too_deep", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return document


def _depth_exceeds(document: Any, limit: int) -> bool:
    """Whether containers nest deeper than ``limit`` (iteratively: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
