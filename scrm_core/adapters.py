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
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from typing_extensions import TypeVar

from .errors import FatalError
from .http import HttpApi
from .learning import LabelCorrection
from .models import CrmObject, CrmOperation, Event, EventPage, Message, OperationResult, SocialProfile
from .ratelimit import RateBudget
from .redaction import register_settings
from .webhooks import WebhookAnswer, WebhookRejected, WebhookRequest

if TYPE_CHECKING:
    import httpx

__all__ = [
    "AdapterContext",
    "AdapterSettings",
    "AdapterState",
    "CheckProblem",
    "CrmAdapter",
    "CrmCapability",
    "CrmLimits",
    "HttpSettings",
    "LabelCorrection",
    "MemoryState",
    "NetworkAdapter",
    "NetworkCapability",
    "PendingReply",
    "PlannedWrite",
    "PollingSettings",
    "ReplyGuarantee",
    "SentReply",
    "WriteBatch",
]

T = TypeVar("T")

#: Settings renamed when the names were made the same across adapters: old name -> new name.
#: An old name still works (the new one wins if both are given) and logs a warning.
RENAMED_SETTINGS: dict[str, str] = {
    "api_base_url": "base_url",
    "request_timeout": "timeout_seconds",
    "timeout": "timeout_seconds",
    "poll_interval": "poll_seconds",
}
_log = logging.getLogger("scrm.config")


class AdapterSettings(BaseModel):
    """Base of every adapter's ``Settings``: unknown keys are errors, secrets are ``SecretStr``.

    Common settings have one name in every adapter: ``base_url``, ``timeout_seconds``,
    ``poll_seconds``, ``page_size``, ``recheck_recent``. A key renamed to one of them (see
    :data:`RENAMED_SETTINGS`, and an adapter's own ``renamed`` map) is still accepted, with a
    warning naming the new key.
    """

    # defer_build: an adapter's settings are compiled when a config uses the adapter, not
    # when its plugin loads (every installed adapter's would be, at every command).
    model_config = ConfigDict(extra="forbid", defer_build=True)
    #: This adapter's own renames (old key -> new key), on top of :data:`RENAMED_SETTINGS`.
    renamed: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _accept_old_names(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        renames = {**RENAMED_SETTINGS, **cls.renamed}
        fields = cls.model_fields
        moved = {old: new for old, new in renames.items() if old in data and old not in fields and new in fields}
        if not moved:
            return data
        data = dict(data)
        for old, new in moved.items():
            value = data.pop(old)
            data.setdefault(new, value)
            _log.warning("setting %r is now called %r; please rename it in the config", old, new)
        return data


class HttpSettings(AdapterSettings):
    """Settings of an adapter that speaks HTTP to one service."""

    base_url: str = Field(description="The service's address (tests: the fake's URL); no trailing slash.")
    timeout_seconds: float = Field(default=30.0, gt=0, le=600, description="Seconds one HTTP request may take.")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError("base_url must start with https:// (or http:// for a local test server)")
        return value


class PollingSettings(AdapterSettings):
    """Settings of an adapter that polls (:class:`~scrm_core.polling.PollingAdapter`)."""

    page_size: int = Field(default=100, ge=1, le=10_000, description="Most events per page handed to the engine.")
    poll_seconds: float = Field(default=60.0, gt=0, le=86_400, description="Seconds between polls in follow mode.")


SettingsT = TypeVar("SettingsT", bound=AdapterSettings, default=AdapterSettings, covariant=True)


class AdapterState(ABC):
    """A small durable key-value area of one adapter, for what must survive a crash.

    Scrm's run keeps it in the state store (one table, one row per key, each write its own
    transaction), so it lives and dies with the rest of what scrm remembers, moves with it
    to PostgreSQL, and is shared by every worker of a fleet; a file beside the config
    would be none of these. Meant for a few small values (a Bulk API job id written before
    the job is started, an id learned while marking a reply sent), never per-record data
    on the hot path. Values are strings: store JSON for anything else. A ``put`` is
    durable when it returns.
    """

    @abstractmethod
    async def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        """The values of those ``keys`` that are set."""

    @abstractmethod
    async def put_many(self, items: Mapping[str, str]) -> None: ...

    @abstractmethod
    async def delete(self, keys: Sequence[str]) -> None: ...

    @abstractmethod
    async def prefixed(self, prefix: str) -> dict[str, str]:
        """Every key starting with ``prefix``, with its value."""

    async def get(self, key: str) -> str | None:
        return (await self.get_many([key])).get(key)

    async def put(self, key: str, value: str) -> None:
        await self.put_many({key: value})


class MemoryState(AdapterState):
    """An :class:`AdapterState` that lasts as long as the process (tests, one-off commands)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    async def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        return {k: self.values[k] for k in keys if k in self.values}

    async def put_many(self, items: Mapping[str, str]) -> None:
        self.values.update(items)

    async def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.values.pop(key, None)

    async def prefixed(self, prefix: str) -> dict[str, str]:
        return {k: v for k, v in self.values.items() if k.startswith(prefix)}


@dataclass
class AdapterContext:
    """What the host hands an adapter: its configured name, where to keep files, how to do I/O.

    ``state`` is the adapter's durable key-value area (:class:`AdapterState`): the state
    store during ``scrm run``, memory where there is no store (tests, ``scrm check``).
    """

    name: str
    base_dir: Path = field(default_factory=Path.cwd)
    http: httpx.AsyncClient | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("scrm.adapter"))
    state: AdapterState = field(default_factory=MemoryState)

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


class ReplyGuarantee(StrEnum):
    """What an adapter promises when a reply is sent again with the same idempotency key
    (after a crash, a timeout or a lost answer). Declared as ``NetworkAdapter.reply_guarantee``;
    the conformance suite tests the declared one.
    """

    #: The network takes an idempotency key (Mastodon's ``Idempotency-Key``, a Matrix
    #: transaction id, a Bluesky record key): sending again returns the first reply.
    idempotency_key = "idempotency_key"
    #: No key, but the adapter can read its own replies: it looks for the earlier one
    #: (same account, same parent, same text) before posting.
    look_before_post = "look_before_post"
    #: Neither (a Telegram bot cannot read its own messages back): the adapter posts at most
    #: once. When the answer to a post is lost it raises SkippableError saying the reply may
    #: or may not be on the network, and the engine never sends a reply again once a post of
    #: it may have started: the reply is marked failed with that reason, for the agent to check.
    at_most_once = "at_most_once"


class NetworkAdapter(ABC, Generic[SettingsT]):
    """A social network, seen as a resumable stream of events.

    Subclasses set ``name``, ``Settings`` and ``capabilities`` and implement :meth:`listen`.
    ``NetworkAdapter[MySettings]`` types ``self.settings`` as ``MySettings``. ``settings`` may
    be given as a mapping (it is validated with ``Settings``); ``context`` defaults to one
    named after the adapter.
    """

    name: ClassVar[str]
    Settings: ClassVar[type[AdapterSettings]] = AdapterSettings
    capabilities: ClassVar[frozenset[NetworkCapability]] = frozenset()
    #: Required with the ``reply`` capability: what sending a reply twice does (the
    #: conformance suite checks that it is declared and tests it).
    reply_guarantee: ClassVar[ReplyGuarantee | None] = None
    #: True for a source that forgets what it handed out once acknowledged (Telegram
    #: ``getUpdates``, a queue): it acknowledges only in :meth:`committed`, and the
    #: conformance suite drains it from a fresh network and tests resuming after a crash.
    destructive_reads: ClassVar[bool] = False
    #: Request headers (lower case) stored beside a webhook payload, for :meth:`parse_webhook`.
    #: Only what parsing needs: the signature has been checked by then, and credentials
    #: never reach the state store.
    webhook_headers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: SettingsT | Mapping[str, Any], context: AdapterContext | None = None) -> None:
        if not isinstance(settings, self.Settings):
            dumped = settings.model_dump() if isinstance(settings, BaseModel) else settings
            settings = cast(SettingsT, self.Settings.model_validate(dumped))
        register_settings(settings)  # its secrets never appear in a log line, an error or the store
        self.settings: SettingsT = settings
        self.context = context or AdapterContext(name=self.name)
        self._apis: list[HttpApi] = []

    @property
    def network(self) -> str:
        """The ``network`` its messages carry (replies to a conversation go out through it)."""
        return self.name

    async def start(self) -> None:
        """Open connections or sessions. Called once before :meth:`listen` or :meth:`send_reply`."""

    async def close(self) -> None:
        """Release what :meth:`start` opened (an override calls ``super().close()`` when it used :meth:`http_api`)."""
        for api in self._apis:
            await api.aclose()

    def http_api(self, base_url: str, **options: Any) -> HttpApi:
        """An :class:`~scrm_core.HttpApi` to ``base_url`` through the host's shared client, named after
        this adapter, with the settings' ``timeout_seconds`` when they have it; :meth:`close` closes it.
        ``options``: ``headers``, ``credentials`` (the settings an auth error names), ``map_errors``."""
        options.setdefault("timeout_seconds", getattr(self.settings, "timeout_seconds", 30.0))
        api = HttpApi(self.name, base_url, http=self.context.http, **options)
        self._apis.append(api)
        return api

    async def check(self) -> list[CheckProblem]:
        """Credentials, access and anything else a run needs, each problem with its exact fix;
        empty when all is well. ``scrm check`` and the start of ``scrm run`` call it."""
        return []

    @abstractmethod
    def listen(self, cursor: str | None, *, follow: bool) -> AsyncIterator[EventPage]:
        """Yield pages of events that come after ``cursor`` (None: from the beginning).

        Each page carries the cursor to resume *after* it: resuming from a page's cursor
        yields exactly the events that came after that page (the conformance suite checks
        it). Networks that can only promise at-least-once (a firehose with a time cursor)
        may deliver some again; the engine drops events it has already committed.
        With ``follow=False`` the iterator ends once it has caught up; with
        ``follow=True`` it waits for more.

        The engine reads a few pages ahead of what it has committed; a source whose reads
        are destructive acknowledges only in :meth:`committed`.
        """

    async def committed(self, cursor: str) -> None:
        """The engine has durably committed everything up to ``cursor`` (a page's cursor).

        Called after each commit, in order, from the engine's ingest loop; a crash before the
        call means the page is read again from the previous cursor. Sources whose reads are
        destructive (Telegram ``getUpdates``, SQS, Pub/Sub, a Kafka consumer group) must
        acknowledge here and only here: acknowledging a page when it is *read* loses it if
        the process dies before the commit. Others ignore it (the default). Keep it quick:
        it runs between commits. An exception is logged and the run goes on; the next
        call acknowledges more.
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
    label_corrections = "label_corrections"  # agents correct labels in the CRM; label_corrections() reads them
    # The CRM finds every record by its external key itself, so its ids follow from the keys:
    # scrm keeps no copy of the ids it returns (no id lookups before a write, no rows to store).
    ids_follow_keys = "ids_follow_keys"


class CrmLimits(BaseModel):
    """The CRM's documented limits; the sink never exceeds them."""

    max_batch: int = Field(default=100, ge=1, description="Records per apply() call, any object type.")
    max_batch_per_object: dict[CrmObject, int] = Field(default_factory=dict)
    requests_per_second: float | None = Field(default=None, gt=0, description="Steady request budget; None: unlimited.")
    burst: int = Field(default=10, ge=1)

    def batch_size(self, obj: CrmObject) -> int:
        return self.max_batch_per_object.get(obj, self.max_batch)


class CheckProblem(BaseModel):
    """One thing wrong with the set-up, and the exact fix.

    ``blocking`` problems stop ``scrm run`` before it sends anything (every write would
    fail); the others are warnings (scrm copes, e.g. by leaving a value out) that
    ``scrm check`` shows.
    """

    problem: str
    fix: str
    blocking: bool = True


class WriteBatch(list[CrmOperation]):
    """The operations of one :meth:`CrmAdapter.apply` call, and what the engine knows of their records.

    It is a plain list of operations (an adapter may ignore the rest), plus:

    * ``known``: the CRM id the state store holds for a record, by ``(object, external
      key)``, for the operations' records and the records their ``refs`` point at: the
      record was written before, so it exists (unless someone deleted it in the CRM since);
    * ``uncertain``: records an earlier write of which may have been applied without its
      answer arriving (a timeout, a lost response, a 5xx, a crash before the result was
      recorded). For these the adapter must look up what exists (by external key, one
      query per batch) and send updates for what does: never re-create blind.

    A record neither known nor uncertain has never been written by this state store: an
    adapter may send create-only fields with it (and must cope with the rare case where
    it exists anyway, e.g. created by hand or by an earlier installation).
    """

    def __init__(
        self,
        ops: Iterable[CrmOperation] = (),
        *,
        known: Mapping[tuple[CrmObject, str], str] | None = None,
        uncertain: Iterable[tuple[CrmObject, str]] = (),
    ) -> None:
        super().__init__(ops)
        self.known: dict[tuple[CrmObject, str], str] = dict(known or {})
        self.uncertain: frozenset[tuple[CrmObject, str]] = frozenset(uncertain)

    @classmethod
    def of(cls, ops: Sequence[CrmOperation]) -> WriteBatch:
        """``ops`` itself if it is a WriteBatch, else a WriteBatch that knows nothing."""
        return ops if isinstance(ops, WriteBatch) else cls(ops)

    def known_id(self, op: CrmOperation) -> str | None:
        return self.known.get((op.object, op.external_key))

    def is_uncertain(self, op: CrmOperation) -> bool:
        return (op.object, op.external_key) in self.uncertain


class PlannedWrite(BaseModel):
    """What one operation would do to the CRM (``scrm run --dry-run``): nothing is written.

    ``changes`` maps each CRM field the write would set to ``(value now, value after)``
    (``None`` now for a record to be created, or when the adapter cannot read it);
    ``notes`` says how the record was fitted (a text cut to the field's length, a
    picklist value replaced, a field left out).
    """

    object: CrmObject
    external_key: str
    action: Literal["create", "update", "unknown"]
    crm_object: str = ""
    crm_id: str | None = None
    changes: dict[str, tuple[Any, Any]] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)


class PendingReply(BaseModel):
    """A reply an agent wrote in the CRM that has not been sent to the network yet."""

    crm_id: str
    conversation_key: str
    in_reply_to: str
    text: str


class CrmAdapter(ABC, Generic[SettingsT]):
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
    #: Object types this CRM keeps on another record rather than as records of their own,
    #: as {object type: the ref naming that record}: HubSpot keeps a profile and a lead as
    #: properties of the contact in ``refs["contact"]``. The sink then hands such an
    #: operation to :meth:`apply` together with the record it lands on, in one call, and
    #: counts the two as one record against the batch size.
    stored_on: Mapping[CrmObject, str] = {}

    def __init__(self, settings: SettingsT, context: AdapterContext) -> None:
        register_settings(settings)  # its secrets never appear in a log line, an error or the store
        self.settings: SettingsT = settings
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
        key (for an adapter with :attr:`stored_on`, the batch also carries the operations
        stored on its records, and the size counts the records written). From the engine
        ``ops`` is a :class:`WriteBatch`: ``WriteBatch.of(ops)`` gives what the engine
        knows of each record (its CRM id; whether an earlier write may have landed unseen).

        Fit every record to the CRM's own metadata first (read once per run: lengths,
        create-only and read-only fields, picklists), so that the CRM refuses a record
        only for a reason an operator must act on. Never re-create blind: a record that is
        ``uncertain`` is looked up by external key and updated if it exists.

        Return one result per op, in order. A record the CRM refuses gets ``ok=False``
        with the CRM's reason and ``code`` (``retryable=True`` only if sending it again
        may succeed; a deterministic refusal is not retried). Raise
        :class:`~scrm_core.errors.RetryableError` when the whole call should be retried
        (rate limit, timeout) and :class:`~scrm_core.errors.FatalError` when nothing will
        work until the operator acts.
        """

    async def preview(self, ops: Sequence[CrmOperation]) -> list[PlannedWrite]:
        """What :meth:`apply` would do with ``ops``, writing nothing (``scrm run --dry-run``).

        One :class:`PlannedWrite` per op, in order. An adapter that can should read the
        CRM's metadata and the current records (read-only calls) and fit the records
        exactly as :meth:`apply` would; this default only knows what the engine knows.
        """
        batch = WriteBatch.of(ops)
        return [
            PlannedWrite(
                object=op.object,
                external_key=op.external_key,
                action="update" if batch.known_id(op) else "unknown",
                crm_id=batch.known_id(op),
                changes={name: (None, value) for name, value in op.fields.items()},
            )
            for op in ops
        ]

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

    async def label_corrections(self, cursor: str | None) -> tuple[list[LabelCorrection], str | None]:
        """Labels agents corrected in the CRM since ``cursor``, and the new cursor (capability
        ``label_corrections``).

        Agents correct a label where they work: a field on the message, case or ticket record
        (e.g. a picklist ``complaint | question | purchase | praise | spam | none``). Give each
        correction the key of the message it is about (for a case, its conversation key),
        the label as the agent set it, and the text the CRM holds for that message (a case's
        first message, else its subject). Like :meth:`pending_replies`: each correction is
        handed out once per cursor position, and the engine saves the new cursor in the same
        transaction as the examples it received, so a crash re-reads at most one page. A
        record corrected again later comes back again (the newest label wins).
        """
        return [], cursor

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
