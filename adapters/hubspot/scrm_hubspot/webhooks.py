"""Verifying that a webhook request came from HubSpot (signature v3).

HubSpot signs ``method + uri + body + timestamp`` with HMAC-SHA256 keyed by the app's
client secret and sends the base64 digest in ``X-HubSpot-Signature-v3``, the timestamp
(epoch milliseconds) in ``X-HubSpot-Request-Timestamp``; requests older than five
minutes are to be rejected, and a few URL-encoded characters of the URI are decoded
before signing
(https://developers.hubspot.com/docs/api/webhooks/validating-requests).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from pydantic import SecretStr

__all__ = ["MAX_AGE_SECONDS", "sign_v3", "verify_signature_v3"]

MAX_AGE_SECONDS = 300.0

# The characters HubSpot decodes in the request URI before signing.
_DECODED = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip


def _decode_uri(uri: str) -> str:
    for encoded, char in _DECODED.items():
        uri = uri.replace(encoded, char).replace(encoded.lower(), char)
    return uri


def sign_v3(client_secret: SecretStr, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """The ``X-HubSpot-Signature-v3`` value HubSpot would send for this request."""
    source = method.upper().encode() + _decode_uri(uri).encode() + body + timestamp.encode()
    digest = hmac.new(client_secret.get_secret_value().encode(), source, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_signature_v3(
    *,
    client_secret: SecretStr,
    method: str,
    uri: str,
    body: bytes,
    timestamp: str,
    signature: str,
    now: float | None = None,
    max_age_seconds: float = MAX_AGE_SECONDS,
) -> bool:
    """Whether the request is HubSpot's and fresh. ``uri`` is the full URL HubSpot called.

    ``now`` (epoch seconds) is for tests. The comparison takes the same time whatever the
    signature, so a forger learns nothing from how long a refusal takes.
    """
    try:
        sent_at = int(timestamp) / 1000
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > max_age_seconds:
        return False
    expected = sign_v3(client_secret, method, uri, body, timestamp)
    return hmac.compare_digest(expected.encode(), signature.encode())
