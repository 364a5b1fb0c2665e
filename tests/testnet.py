"""An in-process network for the core's reply and webhook tests, registered as plugin ``testnet``.

Its state lives in :data:`NETWORKS` (by the ``network_id`` setting), so a test can look at
what was posted and inject faults; each adapter instance is only a view of it, like a
client of a real service. Webhooks are signed like most networks sign them: hex
HMAC-SHA256 over ``<timestamp>.<body>`` in ``X-Test-Signature``, the Unix timestamp in
``X-Test-Timestamp``, so the receiver's stale-timestamp path is exercised too.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson
from pydantic import SecretStr

from scrm_core import (
    AdapterSettings,
    Direction,
    Event,
    EventPage,
    Message,
    MessageCreated,
    MessageDeleted,
    NetworkAdapter,
    NetworkCapability,
    RetryableError,
    SentReply,
    SkippableError,
    SocialProfile,
    hookimpl,
)
from scrm_core.webhooks import WebhookRejected, WebhookRequest, check_timestamp, hmac_sha256_hex, signature_matches

BRAND = SocialProfile(network="testnet", account_id="brand", handle="acme")


@dataclass
class Network:
    events: list[Event] = field(default_factory=list)
    replies: dict[str, Message] = field(default_factory=dict)  # idempotency key -> posted message
    posts: list[Message] = field(default_factory=list)  # everything posted, duplicates included
    lose_next_answers: int = 0  # apply the next sends, then fail as if the answer was lost
    refuse: set[str] = field(default_factory=set)  # message ids that cannot be answered
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(9000))


NETWORKS: dict[str, Network] = {}


def customer_message(mid: str, text: str, *, author: str = "u1", parent: str | None = None) -> Message:
    who = SocialProfile(network="testnet", account_id=author, handle=f"user{author}")
    return Message(
        network="testnet",
        id=mid,
        author=who,
        text=text,
        created_at=datetime(2026, 1, 1, 9, int(mid) % 60, tzinfo=UTC),
        thread_root_id=parent,
        parent_id=parent,
    )


class Settings(AdapterSettings):
    network_id: str
    secret: SecretStr = SecretStr("s3cret-webhook-key")
    page_size: int = 2


class LoopbackNetAdapter(NetworkAdapter):
    name = "testnet"
    Settings = Settings
    capabilities = frozenset(
        {NetworkCapability.poll, NetworkCapability.webhook, NetworkCapability.reply, NetworkCapability.deletes}
    )
    webhook_headers: ClassVar[tuple[str, ...]] = ("x-test-event",)

    @property
    def net(self) -> Network:
        assert isinstance(self.settings, Settings)
        return NETWORKS.setdefault(self.settings.network_id, Network())

    async def listen(self, cursor: str | None, *, follow: bool) -> AsyncIterator[EventPage]:
        assert isinstance(self.settings, Settings)
        start = int(cursor or 0)
        size = self.settings.page_size
        events = self.net.events
        for i in range(start, len(events), size):
            yield EventPage(events=events[i : i + size], cursor=str(min(i + size, len(events))))

    async def send_reply(self, in_reply_to: str, text: str, idempotency_key: str) -> SentReply:
        net = self.net
        if in_reply_to in net.refuse:
            raise SkippableError(f"message {in_reply_to} cannot be answered")
        posted = net.replies.get(idempotency_key)
        if posted is None:
            parent = next(
                (e.message for e in net.events if isinstance(e, MessageCreated) and e.message.id == in_reply_to), None
            )
            root = (parent.thread_root_id or parent.id) if parent else in_reply_to
            posted = Message(
                network="testnet",
                id=str(next(net.ids)),
                author=BRAND,
                text=text,
                created_at=datetime.now(UTC),
                thread_root_id=root,
                parent_id=in_reply_to,
                direction=Direction.outbound,
            )
            net.replies[idempotency_key] = posted
            net.posts.append(posted)
        if net.lose_next_answers:
            net.lose_next_answers -= 1
            raise RetryableError("the answer to the reply was lost")
        return SentReply(message=posted)

    # -- webhooks

    def verify_webhook(self, request: WebhookRequest) -> None:
        assert isinstance(self.settings, Settings)
        signed_at = request.header("x-test-timestamp")
        check_timestamp(signed_at, request.received_at)
        expected = hmac_sha256_hex(self.settings.secret.get_secret_value(), f"{signed_at}.".encode() + request.body)
        if not signature_matches(expected, request.header("x-test-signature")):
            raise WebhookRejected(401, "bad_signature")

    async def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[Event]:
        data = orjson.loads(body)
        if headers.get("x-test-event") == "deleted":
            return [MessageDeleted(network="testnet", message_id=str(data["id"]))]
        if "text" not in data:
            raise SkippableError("a testnet payload needs id and text")
        return [MessageCreated(message=customer_message(str(data["id"]), data["text"], parent=data.get("parent")))]


def signed(
    payload: Any, *, secret: str = "s3cret-webhook-key", event: str = "created", at: float | None = None
) -> tuple[dict[str, str], bytes]:
    """Headers and body as the network would send them."""
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    stamp = str(int(time.time() if at is None else at))
    signature = hmac_sha256_hex(secret, f"{stamp}.".encode() + body)
    headers = {
        "content-type": "application/json",
        "x-test-timestamp": stamp,
        "x-test-signature": signature,
        "x-test-event": event,
    }
    return headers, body


@hookimpl
def scrm_register_networks(register: Callable[[type[NetworkAdapter]], None]) -> None:
    register(LoopbackNetAdapter)
