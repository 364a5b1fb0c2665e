"""Base classes for the two kinds of adapter: networks (where people talk) and CRMs (where it is kept).

An adapter class is registered by a plugin through ``scrm_register_networks`` or
``scrm_register_crms``. The host builds one instance per configured source (or the one
CRM) with validated settings and an :class:`AdapterContext` that carries the shared
``httpx.AsyncClient``, so tests and base URLs are swappable without the adapter knowing.

I/O methods are ``async``. Adapters that wrap a blocking vendor library run it with
:meth:`AdapterContext.run_blocking` (a worker thread), never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from .errors import FatalError
from .models import CrmObject, CrmOperation, Event, EventPage, Message, OperationResult, SocialProfile
from .ratelimit import RateBudget
from .redaction import register_settings
from .webhooks import WebhookAnswer, WebhookRejected, WebhookRequest

if TYPE_CHECKING:
    import httpx

__all__ = [
    "AdapterContext",
    "AdapterSettings",
    "CheckProblem",
    "CrmAdapter",
    "CrmCapability",
    "CrmLimits",
    "NetworkAdapter",
    "NetworkCapability",
    "PendingReply",
    "SentReply",
]

T = TypeVar("T")


class AdapterSettings(BaseModel):
    """Base of every adapter's ``Settings``: unknown keys are errors, secrets are ``SecretStr``."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class AdapterContext:
    """What the host hands an adapter: its configured name, where to keep files, how to do I/O."""

    name: str
    base_dir: Path = field(default_factory=Path.cwd)
    http: httpx.AsyncClient | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("scrm.adapter"))

    def resolve_path(self, path: str | Path) -> Path:
        """A path from the settings, relative to the config file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking vendor-library call in a worker thread."""
        return await asyncio.to_thread(fn, *args)


class NetworkCapability(StrEnum):
    poll = "poll"
    stream = "stream"
    webhook = "webhook"
    search = "search"
    reply = "reply"
    direct_messages = "direct_messages"
    edits = "edits"
    deletes = "deletes"


class SentReply(BaseModel):
    """What the network said after a reply was posted."""

    message: Message


class NetworkAdapter(ABC):
    """A social network, seen as a resumable stream of events.

    Subclasses set ``name``, ``Settings`` and ``capabilities`` and implement :meth:`listen`.
    """

    name: ClassVar[str]
    Settings: ClassVar[type[AdapterSettings]] = AdapterSettings
    capabilities: ClassVar[frozenset[NetworkCapability]] = frozenset()
    #: Request headers (lower case) stored beside a webhook payload, for :meth:`parse_webhook`.
    #: Only what parsing needs: the signature has been checked by then, and credentials
    #: never reach the state store.
    webhook_headers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: AdapterSettings, context: AdapterContext) -> None:
        register_settings(settings)  # its secrets never appear in a log line, an error or the store
        self.settings = settings
        self.context = context

    @property
    def network(self) -> str:
        """The ``network`` its messages carry (replies to a conversation go out through it)."""
        return self.name

    async def start(self) -> None:
        """Open connections or sessions. Called once before :meth:`listen` or :meth:`send_reply`."""

    async def close(self) -> None:
        """Release what :meth:`start` opened."""

    @abstractmethod
    def listen(self, cursor: str | None, *, follow: bool) -> AsyncIterator[EventPage]:
        """Yield pages of events that come after ``cursor`` (None: from the beginning).

        Each page carries the cursor to resume *after* it: resuming from a page's cursor
        yields exactly the events that came after that page (the conformance suite checks
        it). Networks that can only promise at-least-once (a firehose with a time cursor)
        may deliver some again; the engine drops events it has already committed.
        With ``follow=False`` the iterator ends once it has caught up; with
        ``follow=True`` it waits for more.
        """

    def local_problems(self) -> list[str]:
        """What ``scrm config check`` can find wrong without the network: files the settings
        name that must exist, folders that must be writable. One sentence each, with the
        fix, naming the setting; empty when all is well."""
        return []

    async def fetch_thread(self, root_id: str) -> list[Message]:
        raise FatalError(f"network adapter {self.name!r} cannot fetch threads")

    async def fetch_profile(self, account_id: str) -> SocialProfile:
        raise FatalError(f"network adapter {self.name!r} cannot fetch profiles")

    async def send_reply(self, in_reply_to: str, text: str, idempotency_key: str) -> SentReply:
        """Post ``text`` as a reply to the message with network id ``in_reply_to``.

        Returns the posted message (``direction=outbound``, ``parent_id=in_reply_to``), which
        the engine syncs back to the CRM. **Idempotent per key**: called again with the same
        ``idempotency_key`` (after a crash, a timeout or a lost response) it must not post a
        second reply, but return the first. Pass the key to the network where it takes one
        (Mastodon's ``Idempotency-Key``, a Matrix transaction id, a Bluesky record key), or
        look for the earlier reply before posting. Raise
        :class:`~scrm_core.errors.RetryableError` when trying again may work and
        :class:`~scrm_core.errors.SkippableError` when the network will never take this reply
        (the message is gone, replies are not allowed there): the reply is marked failed
        with that reason and the others still go out.
        """
        raise FatalError(f"network adapter {self.name!r} cannot send replies")

    # ------------------------------------------------------------ webhooks (capability ``webhook``)

    def verify_webhook(self, request: WebhookRequest) -> WebhookAnswer | None:
        """Check a request to this source's webhook endpoint before anything is parsed or stored.

        Synchronous and cheap: verify the signature on ``request.body`` (the raw bytes) with
        :func:`scrm_core.webhooks.signature_matches`, and the signed timestamp where the
        network signs one. Raise :class:`~scrm_core.webhooks.WebhookRejected` to refuse;
        return a :class:`~scrm_core.webhooks.WebhookAnswer` to answer at once without storing
        (a subscription handshake); return None to have the payload stored durably and 200
        answered. Never log or echo the secret.
        """
        raise WebhookRejected(404, "no_webhooks")

    async def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[Event]:
        """The events in one stored, already verified payload (``headers``: :attr:`webhook_headers`).

        Called from the engine, not the receiver, so it may call the network's API (for a
        post the payload only names). Raise :class:`~scrm_core.errors.SkippableError` for a
        payload that will never parse: it goes to the dead-letter queue, the rest goes on.
        """
        raise FatalError(f"network adapter {self.name!r} receives no webhooks")


class CrmCapability(StrEnum):
    contacts = "contacts"
    personas = "personas"
    cases = "cases"
    leads = "leads"
    messages = "messages"
    outbound_replies = "outbound_replies"
    erase = "erase"
    bulk = "bulk"  # a bulk path for backfills: limits.max_batch well above the live batch size


class CrmLimits(BaseModel):
    """The CRM's documented limits; the sink never exceeds them."""

    max_batch: int = Field(default=100, ge=1, description="Records per apply() call, any object type.")
    max_batch_per_object: dict[CrmObject, int] = Field(default_factory=dict)
    requests_per_second: float | None = Field(default=None, gt=0, description="Steady request budget; None: unlimited.")
    burst: int = Field(default=10, ge=1)

    def batch_size(self, obj: CrmObject) -> int:
        return self.max_batch_per_object.get(obj, self.max_batch)


class CheckProblem(BaseModel):
    """One thing wrong with the CRM set-up, and the exact fix."""

    problem: str
    fix: str


class PendingReply(BaseModel):
    """A reply an agent wrote in the CRM that has not been sent to the network yet."""

    crm_id: str
    conversation_key: str
    in_reply_to: str
    text: str


class CrmAdapter(ABC):
    """A CRM, seen as a set of records upserted by external key.

    ``limits`` is the class's documented default; an adapter whose limits depend on the
    account (a paid tier, a configured share of the budget) sets ``self.limits`` in its
    ``__init__``. ``budget`` is the one request budget of this CRM account: the sink takes
    a token from it before every call, and the adapter reports the service's rate-limit
    signals to it (:mod:`scrm_core.ratelimit`).
    """

    name: ClassVar[str]
    Settings: ClassVar[type[AdapterSettings]] = AdapterSettings
    capabilities: ClassVar[frozenset[CrmCapability]] = frozenset()
    limits: CrmLimits = CrmLimits()

    def __init__(self, settings: AdapterSettings, context: AdapterContext) -> None:
        register_settings(settings)  # its secrets never appear in a log line, an error or the store
        self.settings = settings
        self.context = context
        self._budget: RateBudget | None = None

    @property
    def budget(self) -> RateBudget:
        """Created on first use, from ``self.limits`` as they are by then."""
        if self._budget is None:
            self._budget = RateBudget(self.limits.requests_per_second, self.limits.burst)
        return self._budget

    async def start(self) -> None:
        """Open connections; called once before the first :meth:`apply`."""

    async def close(self) -> None:
        """Release what :meth:`start` opened."""

    @abstractmethod
    async def apply(self, ops: Sequence[CrmOperation]) -> list[OperationResult]:
        """Upsert a batch of records of ONE object type, by external key.

        ``len(ops) <= limits.batch_size(ops[0].object)`` and no two ops share an external
        key. Return one result per op, in order. A record the CRM refuses gets
        ``ok=False`` with the CRM's reason (``retryable=True`` if trying again may
        succeed). Raise :class:`~scrm_core.errors.RetryableError` when the whole call
        should be retried (rate limit, timeout) and :class:`~scrm_core.errors.FatalError`
        when nothing will work until the operator acts.
        """

    async def pending_replies(self, cursor: str | None) -> tuple[list[PendingReply], str | None]:
        """Replies agents wrote in the CRM since ``cursor``, and the new cursor.

        Each reply is handed out once per cursor position; the engine saves the new cursor
        together with the replies it received, so a crash re-reads at most one page (and
        the engine drops a reply it already holds, by ``crm_id``).
        """
        return [], cursor

    async def reply_sent(self, reply: PendingReply, external_key: str, network_message_id: str) -> None:
        """An agent's reply went out: mark the CRM record as sent, with the network's id.

        Called before the sent message is synced back (a ``message`` upsert with
        ``external_key``): a CRM that keeps the agent's reply as a message record should give
        that record this external key here, so the sync-back updates it instead of adding a
        second copy. Must be idempotent: after a crash it may be called again.
        """

    async def erase(self, records: Mapping[CrmObject, Sequence[str]]) -> int:
        """Delete the records with these external keys (an erase request). Returns how many went."""
        raise FatalError(f"CRM adapter {self.name!r} cannot erase records")

    async def check(self) -> list[CheckProblem]:
        """Credentials, scopes and required fields; empty when all is well."""
        return []

    def local_problems(self) -> list[str]:
        """What ``scrm config check`` can find wrong without the network: files the settings
        name that must exist, folders that must be writable (a local database's). One sentence
        each, with the fix, naming the setting; empty when all is well."""
        return []

    async def counts(self) -> dict[str, int]:
        """Records per object type (``{"contacts": 12, ...}``) for summaries; ``{}`` if the CRM cannot tell cheaply."""
        return {}
