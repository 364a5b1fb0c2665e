"""The state store interface: everything scrm must remember between runs, split by concern.

Each concern is its own small interface; :class:`StateStore` is all of them together, and
is what a back end implements (SQLite in :mod:`scrm.sqlite`; others are their
own distributions, registered with ``scrm_register_stores``). Every back end passes the
same conformance suite, :class:`scrm_core.testing.store.StateStoreConformance`.

Methods are synchronous and each is one transaction; the engine calls them from one
dedicated worker thread (see :class:`scrm_core.store.AsyncStore`), so an implementation
never has to be thread-safe and never blocks the event loop.

The promise the engine builds on: :meth:`PipelineStore.commit_page` writes a page's seen
events, profiles, conversations, message index, CRM operations, dead letters, audit
entries AND the source's new cursor in ONE transaction. A crash loses all of it or none.
"""

from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ..models import Conversation, CrmObject, CrmOperation
from .errors import LeaseLost
from .records import (
    AuditEntry,
    Checkpoint,
    DeadLetter,
    ErasePlan,
    FleetView,
    IdentityLink,
    LabelExample,
    Lease,
    LinkStatus,
    MessageRecord,
    NewLabelExample,
    NewReply,
    OutboxItem,
    PageCommit,
    PendingLink,
    PersonView,
    ProfileRecord,
    ReplyRecord,
    ReplyStatus,
    Settlement,
    StoredModel,
    StoredWebhook,
    WorkerInfo,
)

__all__ = [
    "AdapterStateStore",
    "AuditLog",
    "DeadLetterStore",
    "EraseStore",
    "FleetStore",
    "IdentityStore",
    "LearningStore",
    "OutboxStore",
    "PipelineStore",
    "ReplyStore",
    "StateStore",
    "StoreLifecycle",
    "WebhookInbox",
]

#: A source's saved cursor, written in the same transaction as what it covers.
CheckpointArg = tuple[str, str | None] | None


class StoreLifecycle(ABC):
    """Opening, upgrading and closing; the single-writer rule."""

    @abstractmethod
    def migrate(self) -> int:
        """Create or upgrade the schema; returns the schema version now in force. A store
        written by a newer scrm is refused with a :class:`~scrm_core.FatalError`."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection (and the writer claim)."""

    def claim_writer(self) -> None:
        """Become the store's one writing process, or raise
        :class:`~scrm_core.store.StoreInUse` naming the process that is (pid, host, since
        when). Released by :meth:`close`. Back ends built for several writers (the fleet's
        PostgreSQL) keep this no-op."""


class PipelineStore(ABC):
    """What ingest reads before it decides, and the one commit per page."""

    @abstractmethod
    def checkpoint(self, source: str) -> str | None:
        """The saved cursor of a source, None if it never committed."""

    @abstractmethod
    def checkpoints(self) -> list[Checkpoint]:
        """Every source's checkpoint, by source name."""

    @abstractmethod
    def unseen(self, event_keys: Sequence[str]) -> set[str]:
        """The subset of ``event_keys`` never committed before."""

    @abstractmethod
    def profiles(self, keys: Sequence[str]) -> dict[str, ProfileRecord]:
        """The stored profiles among ``keys``, by key."""

    @abstractmethod
    def conversations(self, keys: Sequence[str]) -> dict[str, Conversation]:
        """The stored conversations among ``keys``, by key."""

    @abstractmethod
    def messages(self, keys: Sequence[str]) -> dict[str, MessageRecord]:
        """The indexed messages among ``keys``, by key."""

    @abstractmethod
    def commit_page(self, page: PageCommit) -> list[int]:
        """Write the page and the cursor in one transaction (upserts for profiles,
        conversations and messages; inserts for the rest; the checkpoint's event count
        grows by ``len(page.event_keys)``).

        Returns the outbox seqs given to ``page.ops``, in the same order: what
        :meth:`OutboxStore.outbox_take` would return for them, so a sink can keep the ops
        it was just handed instead of reading them back."""

    @abstractmethod
    def counts(self) -> Mapping[str, int]:
        """Row counts, from one snapshot: profiles, conversations, messages, outbox,
        dead_letters, seen_events."""


class OutboxStore(ABC):
    """CRM operations waiting for the sink, the CRM ids it got back, and held-back links."""

    @abstractmethod
    def outbox_take(self, limit: int, after_seq: int = 0) -> list[OutboxItem]:
        """Up to ``limit`` items with seq > ``after_seq``, oldest first. Does not remove them.
        Seqs grow strictly and are never reused, even after the outbox empties."""

    @abstractmethod
    def outbox_settle(self, settlement: Settlement) -> list[OutboxItem]:
        """Write a flush's outcome in one transaction. Pending links whose parent is among
        ``crm_ids`` (written now) become outbox items in the same transaction; they are
        returned, oldest first."""

    @abstractmethod
    def outbox_depth(self, at_most: int | None = None) -> int:
        """How many operations wait; counting stops past ``at_most`` (a bounded check of
        a deep outbox: whether it is above a mark, not by how much)."""

    @abstractmethod
    def crm_ids(self, obj: CrmObject, external_keys: Sequence[str]) -> dict[str, str]:
        """The CRM ids known for these records (the latest wins), by external key."""

    @abstractmethod
    def pending_links(self, limit: int = 100) -> list[PendingLink]:
        """References waiting for their refused target to be written, oldest first."""


class DeadLetterStore(ABC):
    """What could not be processed, with the reason, until an operator retries it."""

    @abstractmethod
    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters, oldest first."""

    @abstractmethod
    def dead_letter_count(self) -> int: ...

    @abstractmethod
    def requeue_dead_letters(self, ids: Sequence[int] | None = None) -> int:
        """Move CRM-write dead letters (all, or these ids) back to the outbox; returns how
        many; audited. Rejected input records (no ``op``) stay: they need a fixed source."""

    @abstractmethod
    def dead_letter_keys(self) -> set[tuple[CrmObject, str]]:
        """(object, external key) of every CRM write in the dead-letter queue."""


class ReplyStore(ABC):
    """The outbox towards the networks: replies from the CLI or found in the CRM."""

    @abstractmethod
    def enqueue_replies(self, replies: Sequence[NewReply], *, checkpoint: CheckpointArg = None) -> list[ReplyRecord]:
        """Add replies (one already known by its idempotency key is returned as it is) and, in
        the same transaction, save ``checkpoint`` (source, cursor) if given."""

    @abstractmethod
    def replies(self, statuses: Sequence[ReplyStatus] = (), limit: int = 100) -> list[ReplyRecord]:
        """Replies with one of ``statuses`` (all if empty), oldest first."""

    @abstractmethod
    def reply(self, reply_id: int) -> ReplyRecord:
        """One reply; ``KeyError`` if there is none with this id."""

    @abstractmethod
    def claim_reply(self, reply_id: int, lease_seconds: float) -> ReplyRecord | None:
        """Mark a pending reply (or one whose sender's claim is older than ``lease_seconds``) as
        ``sending`` and count the attempt; None if another sender holds it or it is settled."""

    @abstractmethod
    def update_reply(
        self,
        reply_id: int,
        status: ReplyStatus,
        *,
        text: str | None = None,
        network_message_id: str | None = None,
        error: str | None = None,
        approved: bool | None = None,
        audit: Sequence[AuditEntry] = (),
    ) -> ReplyRecord:
        """Set a reply's status (and text, network id, error, approval) with ``audit`` entries;
        ``KeyError`` if there is no such reply. The error is kept redacted."""


class WebhookInbox(ABC):
    """Verified webhook payloads, stored before the receiver answers 2xx, read back by the engine."""

    @abstractmethod
    def store_webhook(self, source: str, digest: str, headers: Mapping[str, str], body: bytes) -> int | None:
        """Keep a verified payload durably (on disk before this returns); its id, or None if the
        same payload (``digest``) is already kept for this source (a redelivery: stored once)."""

    @abstractmethod
    def stored_webhooks(self, source: str, after_id: int, limit: int) -> list[StoredWebhook]:
        """Payloads of ``source`` with an id above ``after_id``, oldest first."""

    @abstractmethod
    def prune_webhooks(self, source: str, up_to_id: int, received_before: datetime) -> int:
        """Forget processed payloads (id <= ``up_to_id``) received before the given time."""


class IdentityStore(ABC):
    """Which person each profile belongs to, on what evidence, and how to undo it."""

    @abstractmethod
    def profiles_page(self, after: str = "", limit: int = 1000) -> list[ProfileRecord]:
        """Up to ``limit`` stored profiles with keys after ``after``, in key order (for scans)."""

    @abstractmethod
    def suggest_link(self, profile_key: str, person_key: str, evidence: str, verified: bool) -> IdentityLink | None:
        """Record a suggestion; None if this profile and person already have an open, linked
        or rejected entry (an operator is never asked twice), or the profile is unknown or
        already the person's."""

    @abstractmethod
    def identity_links(self, status: LinkStatus | None = None) -> list[IdentityLink]:
        """Links and suggestions (of one status, or all), oldest first."""

    @abstractmethod
    def identity_link(self, link_id: int) -> IdentityLink:
        """One link or suggestion; ``KeyError`` if there is none with this id."""

    @abstractmethod
    def link_identity(
        self, profile_key: str, person_key: str, evidence: str, verified: bool, ops: Sequence[CrmOperation]
    ) -> IdentityLink:
        """Point the profile at the person, with the evidence, and queue ``ops`` (the CRM's
        copy re-pointed) in one transaction, audited; an open suggestion for the pair is
        accepted. Raises ``KeyError`` for an unknown profile."""

    @abstractmethod
    def reject_suggestion(self, link_id: int) -> IdentityLink:
        """An operator said no; audited. ``ValueError`` if the link is not a suggestion."""

    @abstractmethod
    def undo_link(self, link_id: int, ops: Sequence[CrmOperation]) -> IdentityLink:
        """Restore the person the profile had before the link and queue ``ops``; audited.
        Raises ``ValueError`` if the link is not in force (or the profile moved since)."""

    @abstractmethod
    def person(self, person_key: str) -> PersonView:
        """Everything the store knows about one person."""


class AuditLog(ABC):
    """What was done to whom: redactions, erasures, requeues, links, trained models."""

    @abstractmethod
    def audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append entries (their detail kept redacted)."""

    @abstractmethod
    def audit_log(self, limit: int = 100) -> list[tuple[datetime, AuditEntry]]:
        """The latest ``limit`` entries, newest first, with when they were written (UTC)."""


class LearningStore(ABC):
    """Agents' label corrections and the models trained on them (:mod:`scrm_core.learning`)."""

    @abstractmethod
    def save_label_examples(self, examples: Sequence[NewLabelExample], *, checkpoint: CheckpointArg = None) -> int:
        """Keep corrections as labelled examples (one per message and namespace: a newer one
        replaces the older and gets a new seq) and, in the same transaction, save
        ``checkpoint`` (source, cursor) if given; audited. Returns how many were stored."""

    @abstractmethod
    def label_examples(self, namespace: str | None = None) -> list[LabelExample]:
        """Stored examples (of one namespace, or all), oldest seq first; examples of messages
        deleted on their network are left out."""

    @abstractmethod
    def save_model(self, name: str, data: bytes, report: Mapping[str, Any], trained_until: int) -> StoredModel:
        """Keep a newly trained model; it becomes the one :meth:`model` returns; audited."""

    @abstractmethod
    def model(self, name: str) -> StoredModel | None:
        """The model in force for classifier ``name``; None: use the shipped one."""

    @abstractmethod
    def drop_models(self, name: str) -> int:
        """Go back to the shipped model for ``name`` (stored models are kept, inactive)."""


class AdapterStateStore(ABC):
    """Each adapter's small durable key-value area (:class:`scrm_core.AdapterState`)."""

    @abstractmethod
    def adapter_state_get(self, adapter: str, keys: Sequence[str]) -> dict[str, str]: ...

    @abstractmethod
    def adapter_state_put(self, adapter: str, items: Mapping[str, str]) -> None: ...

    @abstractmethod
    def adapter_state_delete(self, adapter: str, keys: Sequence[str]) -> None: ...

    @abstractmethod
    def adapter_state_prefixed(self, adapter: str, prefix: str) -> dict[str, str]:
        """The adapter's items whose key starts with ``prefix``, in key order."""


class EraseStore(ABC):
    """Removing one person from every part of the store (the right to erasure)."""

    @abstractmethod
    def erase_plan(self, person_key: str) -> ErasePlan:
        """What :meth:`erase_person` would erase, without erasing it (empty: no such person)."""

    @abstractmethod
    def erase_person(self, person_key: str) -> ErasePlan:
        """Remove a person from the store in one transaction: their profiles, messages and the
        conversations they started, their identity links, label examples, pending outbox ops
        and sink dead letters about their records, and their traces elsewhere (webhook
        payloads already processed, replies to them; the audit log keeps the action, not
        whom). Audited as ``subject.erased``. Returns the CRM keys to erase; ``plan.kept``
        says what stays and why."""


class StateStore(
    StoreLifecycle,
    PipelineStore,
    OutboxStore,
    DeadLetterStore,
    ReplyStore,
    WebhookInbox,
    IdentityStore,
    AuditLog,
    LearningStore,
    AdapterStateStore,
    EraseStore,
):
    """The whole store: every concern above. See the module docstring for the transaction promise."""


class FleetStore(ABC):
    """What a store shared by several workers adds (PostgreSQL; SQLite has one writer).

    Work is leased: each source's reader (by checkpoint name) and each outbox partition is
    held by one worker at a time, until its lease expires. Times are the store's clock, so
    workers on machines whose clocks differ agree on who holds what. Every method is one
    transaction. :class:`scrm_core.testing.fleet.FleetStoreConformance` is its test suite.
    """

    #: How many partitions the outbox has; an operation's partition follows its external key,
    #: so every write to one record goes through the same partition, in order.
    outbox_partitions: int = 1

    @abstractmethod
    def join_fleet(self, worker: WorkerInfo) -> None:
        """Record the worker (again, after a restart with the same id) with a fresh heartbeat."""

    @abstractmethod
    def leave_fleet(self, worker_id: str) -> None:
        """Release every lease of the worker and forget it (a clean stop)."""

    @abstractmethod
    def fleet_heartbeat(self, worker_id: str, lease_seconds: float) -> list[Lease]:
        """The worker is alive: its heartbeat and every lease it still holds are renewed for
        ``lease_seconds``; returns those leases (one missing was taken over: stop its work)."""

    @abstractmethod
    def acquire_leases(self, worker_id: str, names: Sequence[str], limit: int, lease_seconds: float) -> list[Lease]:
        """Take at most ``limit`` of ``names`` that nobody holds or whose lease has expired,
        in the order given (a name never seen is created free); the leases taken."""

    @abstractmethod
    def release_leases(self, worker_id: str, names: Sequence[str]) -> None:
        """Give up these leases now (only those the worker holds)."""

    @abstractmethod
    def live_workers(self, lease_seconds: float) -> list[str]:
        """Ids of the workers whose heartbeat is younger than ``lease_seconds``, in id order."""

    @abstractmethod
    def fleet(self, lease_seconds: float) -> FleetView:
        """Workers, leases and outbox depth per partition, in one snapshot."""

    @abstractmethod
    def outbox_claim(self, lease: Lease, limit: int) -> list[tuple[OutboxItem, bool]]:
        """Up to ``limit`` operations of the outbox partition ``lease.name`` (``outbox#N``;
        ``#outbox``: every partition) not yet handed to this lease, oldest first, now marked as
        handed to it; each with whether an earlier holder had them (they may have reached the
        CRM unrecorded). Rows locked by a concurrent claim are skipped (``FOR UPDATE SKIP LOCKED``)."""

    def outbox_claim_each(self, leases: Sequence[Lease], limit: int) -> tuple[list[tuple[OutboxItem, bool]], list[str]]:
        """:meth:`outbox_claim` over several partition leases of one worker: up to ``limit``
        operations in all, oldest first in each partition; and the names of the leases no
        longer in force (none of their rows is handed out). A back end that can do it in one
        transaction overrides this (a sink usually holds several partitions: one round trip,
        oldest first across them); this default claims lease by lease."""
        claimed: list[tuple[OutboxItem, bool]] = []
        lost: list[str] = []
        for lease in leases:
            try:
                claimed += self.outbox_claim(lease, limit - len(claimed)) if len(claimed) < limit else []
            except LeaseLost:
                lost.append(lease.name)
        return claimed, lost

    @abstractmethod
    def outbox_waiting(
        self, records: Sequence[tuple[CrmObject, str]], before: int | None = None
    ) -> set[tuple[CrmObject, str]]:
        """Those of ``records`` that still have an operation in the outbox (any partition, held
        or not), older than seq ``before`` if given: a record referring to one of them waits
        until it is written (a newer operation on it, e.g. an edit, does not hold it up)."""


def _methods(*parts: type) -> frozenset[str]:
    return frozenset(
        name
        for part in parts
        if part not in (StateStore, ABC, object)
        for name, member in vars(part).items()
        if callable(member) and not name.startswith("_")
    )


#: Every method of the interface, by name (what :class:`~scrm_core.store.AsyncStore` may call).
INTERFACE: frozenset[str] = _methods(*StateStore.__mro__)
#: The methods a store shared by a fleet adds (:class:`FleetStore`).
FLEET_INTERFACE: frozenset[str] = _methods(FleetStore)


def partition_of(external_key: str, partitions: int) -> int:
    """The outbox partition of a record (stable across processes and machines)."""
    return zlib.crc32(external_key.encode("utf-8", "surrogatepass")) % partitions
