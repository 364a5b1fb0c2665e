"""Meta webhooks: the subscription handshake, the payload signature, and payloads as events.

https://developers.facebook.com/docs/graph-api/webhooks/getting-started:

* verification: ``GET ?hub.mode=subscribe&hub.challenge=<n>&hub.verify_token=<token>``;
  answer ``hub.challenge`` only when the token is the Verify Token set in the App
  Dashboard (compared in constant time here), else refuse;
* events: ``POST`` with ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body,
  keyed with the app secret>``. Meta signs no timestamp, so a captured delivery can be
  replayed; the engine's dedup by event key makes a replay harmless (same keys).

Payloads (https://developers.facebook.com/docs/graph-api/webhooks/reference/page/#feed and
https://developers.facebook.com/docs/graph-api/webhooks/reference/instagram/#comments)::

    {"object": "page", "entry": [{"id": <page id>, "time": <unix>, "changes": [
        {"field": "feed", "value": {"item": "comment"|"post"|"status"|..., "verb": "add"|"edited"|"remove",
                                    "post_id", "comment_id", "parent_id", "message",
                                    "from": {"id", "name"}, "created_time"}}]}]}
    {"object": "instagram", "entry": [{"id": <ig user id>, "time": <unix>, "changes": [
        {"field": "comments", "value": {"id", "text", "from": {"id", "username"},
                                        "media": {"id", "media_product_type"}, "parent_id"}}]}]}
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from scrm_core import Event, MessageCreated, MessageDeleted, MessageEdited, SkippableError
from scrm_core.webhooks import (
    WebhookAnswer,
    WebhookRejected,
    WebhookRequest,
    hmac_sha256_hex,
    parse_webhook_json,
    signature_matches,
)

from .graph import GraphClient, GraphError
from .mapping import FB_COMMENT_FIELDS, FB_POST_FIELDS, IG_COMMENT_FIELDS, fb_comment, fb_post, ig_comment, parse_time
from .settings import MetaSettings

__all__ = ["parse_payload", "verify"]

SIGNATURE_HEADER = "x-hub-signature-256"
#: Feed items that are messages; reactions, likes and shares are not.
FEED_MESSAGE_ITEMS = frozenset({"post", "status", "photo", "video", "comment"})


def verify(request: WebhookRequest, settings: MetaSettings) -> WebhookAnswer | None:
    """The handshake's answer (GET), None for a genuine delivery (POST), else WebhookRejected."""
    if request.method.upper() == "GET":
        if request.query.get("hub.mode") != "subscribe":
            raise WebhookRejected(403, "bad_mode")
        expected = settings.verify_token.get_secret_value() if settings.verify_token else ""
        given = request.query.get("hub.verify_token") or ""
        if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
            raise WebhookRejected(403, "bad_verify_token")
        challenge = request.query.get("hub.challenge")
        if not challenge:
            raise WebhookRejected(400, "missing_challenge")
        return WebhookAnswer(body=challenge)
    if request.method.upper() != "POST":
        raise WebhookRejected(405, "method_not_allowed")
    if settings.app_secret is None:
        raise WebhookRejected(403, "no_app_secret_configured")
    signature = request.header(SIGNATURE_HEADER)
    if not signature:
        raise WebhookRejected(401, "missing_signature")
    expected = "sha256=" + hmac_sha256_hex(settings.app_secret.get_secret_value(), request.body)
    if not signature_matches(expected, signature.lower()):
        raise WebhookRejected(403, "bad_signature")
    return None


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, int | float) and value > 1e11:  # some objects time entries in milliseconds
        value = value / 1000.0
    try:
        return parse_time(value)
    except ValueError:
        return None


async def parse_payload(body: bytes, settings: MetaSettings, graph: GraphClient) -> list[Event]:
    try:
        payload = parse_webhook_json(body)  # the receiver's parser and depth limit
    except ValueError as exc:
        raise SkippableError(f"meta: webhook payload is not JSON ({exc})") from None
    expected = "page" if settings.platform == "facebook" else "instagram"
    if not isinstance(payload, dict) or payload.get("object") != expected:
        got = payload.get("object") if isinstance(payload, dict) else None
        raise SkippableError(
            f"meta: webhook payload for object {got!r} reached a {settings.platform} source "
            f"(expects {expected!r}); give each object its own callback URL in the App Dashboard"
        )
    events: list[Event] = []
    for entry in payload.get("entry") or []:
        # One app's callback receives every Page (or account) that installed it: keep ours.
        if not isinstance(entry, dict) or str(entry.get("id")) != settings.account_id:
            continue
        at = _when(entry.get("time"))
        for change in entry.get("changes") or []:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                continue
            field = change.get("field")
            try:
                if settings.platform == "facebook" and field == "feed":
                    events += await _feed_change(value, at, settings, graph)
                elif settings.platform == "instagram" and field == "comments":
                    events += await _ig_comment(value, at, settings, graph)
            except (KeyError, ValueError) as exc:
                raise SkippableError(f"meta: unreadable {field} change in a webhook payload ({exc})") from None
    return events


async def _feed_change(
    value: dict[str, Any], at: datetime | None, settings: MetaSettings, graph: GraphClient
) -> list[Event]:
    item, verb = value.get("item"), value.get("verb")
    if item not in FEED_MESSAGE_ITEMS:
        return []
    network, page_id = settings.platform, settings.account_id
    is_comment = item == "comment"
    post_id = str(value["post_id"])
    message_id = str(value["comment_id"]) if is_comment else post_id
    if verb == "remove":
        return [MessageDeleted(network=network, message_id=message_id, deleted_at=at)]
    if verb not in ("add", "edited"):
        return []  # hide, unhide, block...: not a change of the message
    node: dict[str, Any] = {
        "id": message_id,
        "message": value.get("message"),
        "from": value.get("from"),
        "created_time": value.get("created_time"),
    }
    parent = value.get("parent_id")
    if is_comment and parent and str(parent) != post_id:
        node["parent"] = {"id": str(parent)}
    if node["message"] is None or not (node["from"] or {}).get("id") or node["created_time"] is None:
        # Photo posts and some comments arrive without text or author: ask the Graph.
        try:
            node = await graph.get(message_id, fields=FB_COMMENT_FIELDS if is_comment else FB_POST_FIELDS)
        except GraphError as exc:
            if exc.gone:
                return []  # removed since; its remove notification follows
            raise SkippableError(f"meta: fetching {message_id} for a webhook: {exc}") from None
    if is_comment:
        message = fb_comment(node, network=network, page_id=page_id, post_id=post_id)
    else:
        message = fb_post(node, network=network, page_id=page_id)
    if verb == "add":
        return [MessageCreated(message=message)]
    # The entry's time is when the edit happened: the same in every redelivery, so a stable version.
    return [MessageEdited(message=message.model_copy(update={"edited_at": at or message.created_at}))]


async def _ig_comment(
    value: dict[str, Any], at: datetime | None, settings: MetaSettings, graph: GraphClient
) -> list[Event]:
    """A new comment (Instagram sends no edit or delete notifications for comments)."""
    node = dict(value)
    if not node.get("text") or not (node.get("from") or {}).get("id") or not (node.get("media") or {}).get("id"):
        try:
            node = await graph.get(str(value["id"]), fields=IG_COMMENT_FIELDS)
        except GraphError as exc:
            if exc.gone:
                return []
            raise SkippableError(f"meta: fetching comment {value.get('id')} for a webhook: {exc}") from None
    # The comments webhook carries no timestamp: the entry's time is when it was sent.
    node.setdefault("timestamp", int(at.timestamp()) if at else None)
    media_id = str(node["media"]["id"])
    message = ig_comment(node, network=settings.platform, ig_user_id=settings.account_id, media_id=media_id)
    return [MessageCreated(message=message)]
