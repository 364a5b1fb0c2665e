"""Discourse webhooks: checking the signature, and which events a delivery carries.

What Discourse sends (``Jobs::EmitWebHookEvent#build_webhook_headers`` and
``#build_webhook_body`` in discourse/discourse; https://meta.discourse.org/t/49045):

* a POST whose body is ``{"<event type>": {...}}``, e.g. ``{"post": {...}}``, or
  ``{"ping": "OK"}`` for the test delivery;
* ``X-Discourse-Event-Type`` (``post``, ``topic``, ``user``, ``ping``...),
  ``X-Discourse-Event`` (``post_created``, ``post_edited``, ``post_destroyed``,
  ``post_recovered``...), ``X-Discourse-Event-Id``, ``X-Discourse-Instance``;
* when the webhook has a secret, ``X-Discourse-Event-Signature: sha256=<hex>``, the
  HMAC-SHA256 of the raw body with the secret.

Discourse signs **no timestamp** and sends no nonce, so a captured delivery verifies
again if replayed. Replays cannot forge content; they re-deliver events whose keys the
engine already holds, so they are dropped as duplicates.
"""

from __future__ import annotations

from typing import Any

from scrm_core.webhooks import (
    WebhookAnswer,
    WebhookRejected,
    WebhookRequest,
    hmac_sha256_hex,
    parse_webhook_json,
    signature_matches,
)

__all__ = ["WEBHOOK_HEADERS", "decode_payload", "verify"]

SIGNATURE = "x-discourse-event-signature"
EVENT = "x-discourse-event"
EVENT_TYPE = "x-discourse-event-type"
#: Stored beside each payload: what parsing needs, nothing else.
WEBHOOK_HEADERS = (EVENT, EVENT_TYPE)


def verify(request: WebhookRequest, secret: str | None) -> WebhookAnswer | None:
    """Refuse unless ``X-Discourse-Event-Signature`` is ``sha256=`` + the body's HMAC with ``secret``."""
    if request.method.upper() != "POST":
        raise WebhookRejected(405, "method_not_allowed")
    if not secret:
        raise WebhookRejected(404, "webhook_secret_not_configured")
    given = request.header(SIGNATURE)
    if not given:
        raise WebhookRejected(401, "missing_signature")
    given = given.strip()
    scheme, _, digest = given.partition("=")
    if scheme.lower() != "sha256" or not digest:
        raise WebhookRejected(401, "bad_signature")
    expected = f"sha256={hmac_sha256_hex(secret, request.body)}"
    # Hex from Discourse is lower case (OpenSSL::HMAC.hexdigest); compare the normalised form.
    if not signature_matches(expected, f"sha256={digest.lower()}"):
        raise WebhookRejected(401, "bad_signature")
    if (request.header(EVENT_TYPE) or "").lower() == "ping":
        return WebhookAnswer("OK")  # the "Ping" button: verified, nothing to store
    return None


def decode_payload(body: bytes) -> dict[str, Any]:
    data = parse_webhook_json(body)  # the receiver's parser and depth limit
    if not isinstance(data, dict):
        raise ValueError("the body is not a JSON object")
    return data
