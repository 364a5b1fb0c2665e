"""Signature v3, built as HubSpot's documentation describes it."""

from __future__ import annotations

import base64
import hashlib
import hmac

from pydantic import SecretStr
from scrm_hubspot import verify_signature_v3

SECRET = SecretStr("yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy")
URI = "https://example.org/hubspot/webhooks?portal=123"
BODY = b'[{"eventId":1,"subscriptionType":"contact.creation","objectId":123}]'
NOW = 1_700_000_000.0
TIMESTAMP = str(int(NOW * 1000))


def documented_signature(method: str, uri: str, body: bytes, timestamp: str) -> str:
    """HMAC-SHA256 of method + uri + body + timestamp, keyed by the client secret, base64."""
    source = f"{method}{uri}{body.decode()}{timestamp}".encode()
    return base64.b64encode(hmac.new(SECRET.get_secret_value().encode(), source, hashlib.sha256).digest()).decode()


def verify(**overrides: object) -> bool:
    request: dict[str, object] = {
        "client_secret": SECRET,
        "method": "POST",
        "uri": URI,
        "body": BODY,
        "timestamp": TIMESTAMP,
        "signature": documented_signature("POST", URI, BODY, TIMESTAMP),
        "now": NOW + 1,
    }
    return verify_signature_v3(**(request | overrides))  # type: ignore[arg-type]


def test_a_genuine_request_passes() -> None:
    assert verify()


def test_any_change_fails() -> None:
    assert not verify(body=BODY + b" ")
    assert not verify(method="PUT")
    assert not verify(uri=URI + "&x=1")
    assert not verify(client_secret=SecretStr("another-secret"))
    assert not verify(signature="")


def test_stale_or_future_timestamps_fail() -> None:
    assert verify(now=NOW + 299)
    assert not verify(now=NOW + 301), "older than five minutes: a replay"
    assert not verify(now=NOW - 301)
    assert not verify(timestamp="yesterday")


def test_encoded_characters_in_the_uri_are_decoded_before_signing() -> None:
    encoded = "https://example.org/hubspot/webhooks%3Fportal%3D123"
    decoded = "https://example.org/hubspot/webhooks?portal%3D123"
    signature = documented_signature("POST", decoded, BODY, TIMESTAMP)
    assert verify(uri=encoded, signature=signature)
