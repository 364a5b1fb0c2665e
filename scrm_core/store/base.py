"""The state store interface: everything scrm must remember between runs.

One implementation per database (SQLite now, PostgreSQL later). Methods are synchronous
and each is one transaction; the engine calls them from one dedicated worker thread (see
:class:`scrm_core.store.AsyncStore`), so an implementation never has to be thread-safe and
never blocks the event loop.

The promise the engine builds on: :meth:`StateStore.commit_page` writes a page's seen
events, profiles, conversations, message index, CRM operations, dead letters, audit
entries AND the source's new cursor in ONE transaction. A crash loses all of it or none.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ..models import Conversation, CrmObject, CrmOperation, SocialProfile

__all__ = [
    "AuditEntry",
    "Checkpoint",
    "DeadLetter",
    "ErasePlan",
    "LabelExample",
    "MessageRecord",
    "NewDeadLetter",
    "NewLabelExample",
    "OutboxItem",
    "PageCommit",
    "PendingLink",
    "ProfileRecord",
    "Refusal",
    "Settlement",
    "StateStore",
    "StoredModel",
]


@dataclass(slots=True)
class ProfileRecord:
    """A profile as last seen, and the person it belongs to (its own key until linked)."""

    profile: SocialProfile
    person_key: str
    fingerprint: str  # changes when the profile's CRM-relevant fields do


@dataclass(slots=True)
class MessageRecord:
    """Index entry for a message: enough to route edits and deletions without the CRM."""

    key: str
    conversation_key: str
    author_key: str
    deleted: bool = False
    in_crm: bool = True  # False when routing ignored it (spam): edits and deletions then write nothing
    version: str | None = None  # edited_at (UTC ISO) of the state last applied: older edits are stale


@dataclass(slots=True)
class NewDeadLetter:
    """Something that could not be processed. ``op`` is set for a CRM write (retryable later)."""

    source: str  # source name, or "sink" for CRM writes
    reason: str
    locator: str = ""  # e.g. "demo.ndjson:17", or the op's external key
    op: CrmOperation | None = None
    payload: str = ""  # raw input excerpt for rejects (bounded by the caller)
    code: str | None = None  # the CRM's error code for a refused write
    retryable: bool | None = None  # may a plain retry succeed? None: not known (rows from before it was kept)
    fix: str = ""  # what the operator does before retrying


@dataclass(slots=True)
class DeadLetter(NewDeadLetter):
    id: int = 0
    created_at: datetime | None = None
    attempts: int = 0


@dataclass(slots=True)
class AuditEntry:
    action: str  # e.g. "message.redacted", "subject.erased", "dlq.requeued"
    subject: str  # the key acted on
    detail: str = ""


@dataclass(slots=True)
class PageCommit:
    """Everything one page of events produced, committed atomically with the cursor."""

    source: str
    cursor: str | None
    event_keys: Sequence[str] = ()
    profiles: Sequence[ProfileRecord] = ()
    conversations: Sequence[Conversation] = ()
    messages: Sequence[MessageRecord] = ()
    ops: Sequence[CrmOperation] = ()
    dead_letters: Sequence[NewDeadLetter] = ()
    audit: Sequence[AuditEntry] = ()


@dataclass(slots=True)
class OutboxItem:
    seq: int  # strictly increasing in insertion order
    op: CrmOperation
    attempts: int = 0


@dataclass(slots=True)
class Refusal:
    """An outbox item the CRM refused for good (or too often), for the dead-letter queue."""

    seq: int
    reason: str
    code: str | None = None
    retryable: bool = False
    fix: str = ""


@dataclass(frozen=True, slots=True)
class PendingLink:
    """A reference the sink left out because its target was refused: ``child`` was written
    without ``refs[ref] = parent``; once the parent is written the link is sent on its own."""

    parent_object: CrmObject
    parent_key: str
    child_object: CrmObject
    child_key: str
    ref: str

    def op(self) -> CrmOperation:
        """The operation that adds the link: the child, no fields, only this reference."""
        return CrmOperation.model_construct(
            object=self.child_object, external_key=self.child_key, fields={}, refs={self.ref: self.parent_key}
        )


@dataclass(slots=True)
class Settlement:
    """The outcome of one sink flush, written in one transaction.

    ``done``: outbox seqs applied, with the CRM id per (object, external key) to remember.
    ``failed``: seqs refused for good, moved to the dead-letter queue with the reason.
    ``retry``: seqs to keep in the outbox with their attempt count increased.
    ``links``: references left out of records written now, because their target was refused.
    """

    done: Sequence[int] = ()
    crm_ids: Sequence[tuple[CrmObject, str, str]] = ()
    failed: Sequence[Refusal] = ()
    retry: Sequence[int] = ()
    links: Sequence[PendingLink] = ()


@dataclass(slots=True)
class Checkpoint:
    source: str
    cursor: str | None
    updated_at: datetime | None
    events: int  # events committed from this source, all time


@dataclass(slots=True)
class ErasePlan:
    """What an erase removed from the state store, so the CRM can remove the same records."""

    person_key: str
    records: dict[CrmObject, list[str]] = field(default_factory=dict)  # external keys
    # Other people's conversations whose subject or draft reply was made from the person's
    # messages: the erase redacts them (in the CRM's case, and in the state store).
    derived: list[Conversation] = field(default_factory=list)
    removed: dict[str, int] = field(default_factory=dict)  # store rows removed or scrubbed, by table
    kept: list[str] = field(default_factory=list)  # what could not be removed, and why


class LinkStatus(StrEnum):
    suggested = "suggested"  # waiting for an operator
    linked = "linked"
    rejected = "rejected"  # an operator said no; the same evidence is not suggested again
    undone = "undone"  # was linked; the link was undone and the previous person restored


@dataclass(slots=True)
class IdentityLink:
    """A link (or a suggested one) from a profile to a person, with its evidence."""

    id: int
    profile_key: str
    person_key: str
    evidence: str
    verified: bool
    status: LinkStatus
    created_at: datetime
    previous_person_key: str | None = None  # what an undo restores
    undone_at: datetime | None = None


@dataclass(slots=True)
class PersonView:
    """Everything the store knows about one person (``scrm customer show``)."""

    person_key: str
    profiles: list[ProfileRecord]
    conversations: list[Conversation]
    message_count: int
    links: list[IdentityLink]
    crm_ids: dict[str, str]  # "contact:<external key>" -> CRM id, for every record of the person


@dataclass(slots=True)
class StoredWebhook:
    """A verified webhook payload, as the receiver stored it before answering 2xx."""

    id: int
    source: str
    headers: dict[str, str]
    body: bytes
    received_at: datetime


class ReplyStatus(StrEnum):
    pending = "pending"  # waiting to be sent
    held = "held"  # a scrm_before_reply plugin holds it for a person to approve
    sending = "sending"  # claimed by a sender; a crash leaves it here and the claim expires
    sent = "sent"
    refused = "refused"  # a plugin refused it, or the operator cancelled it
    failed = "failed"  # the network will never take it (the reason is in ``error``)


@dataclass(slots=True)
class NewReply:
    """A reply to send: from ``scrm reply`` (origin ``cli``) or found in the CRM (origin ``crm``)."""

    idempotency_key: str  # also the key the network sees, so it is stable across retries
    origin: str
    conversation_key: str
    in_reply_to: str
    text: str
    crm_id: str | None = None


@dataclass(slots=True)
class ReplyRecord(NewReply):
    id: int = 0
    status: ReplyStatus = ReplyStatus.pending
    attempts: int = 0
    approved: bool = False
    network_message_id: str | None = None
    error: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(slots=True)
class NewLabelExample:
    """A label an agent gave a message, read back from the CRM (see :mod:`scrm_core.learning`)."""

    message_key: str
    namespace: str  # "intent" for "intent:complaint"
    label: str  # the full label
    text: str
    source: str  # the CRM adapter's name
    language: str | None = None
    crm_id: str | None = None
    corrected_at: datetime | None = None


@dataclass(slots=True)
class LabelExample(NewLabelExample):
    seq: int = 0  # grows with every example stored or corrected again
    stored_at: datetime | None = None


@dataclass(slots=True)
class StoredModel:
    """A classifier's model trained for this deployment (``scrm intent train``)."""

    id: int
    name: str  # the TrainableClassifier's name
    data: bytes
    report: dict[str, Any]
    trained_until: int  # the highest example seq it learnt from
    created_at: datetime


class StateStore(ABC):
    """Abstract state store. See the module docstring for the transaction promise."""

    @abstractmethod
    def migrate(self) -> int:
        """Create or upgrade the schema; returns the schema version now in force."""

    @abstractmethod
    def close(self) -> None: ...

    def claim_writer(self) -> None:
        """Become the store's one writing process, or raise
        :class:`~scrm_core.store.errors.StoreInUse` naming the process that is (pid, host,
        since when). Released by :meth:`close`. Back ends built for several writers (the
        fleet's PostgreSQL) keep this no-op."""

    # -- checkpoints and dedup
    @abstractmethod
    def checkpoint(self, source: str) -> str | None:
        """The saved cursor of a source, None if it never committed."""

    @abstractmethod
    def checkpoints(self) -> list[Checkpoint]: ...

    @abstractmethod
    def unseen(self, event_keys: Sequence[str]) -> set[str]:
        """The subset of ``event_keys`` never committed before."""

    # -- lookups the pipeline needs before it decides
    @abstractmethod
    def profiles(self, keys: Sequence[str]) -> dict[str, ProfileRecord]: ...

    @abstractmethod
    def conversations(self, keys: Sequence[str]) -> dict[str, Conversation]: ...

    @abstractmethod
    def messages(self, keys: Sequence[str]) -> dict[str, MessageRecord]: ...

    @abstractmethod
    def commit_page(self, page: PageCommit) -> list[int]:
        """Write the page and the cursor in one transaction (upserts for profiles,
        conversations and messages; inserts for the rest).

        Returns the outbox seqs given to ``page.ops``, in the same order: what
        :meth:`outbox_take` would return for them, so a sink can keep the ops it was
        just handed instead of reading them back."""

    # -- outbox
    @abstractmethod
    def outbox_take(self, limit: int, after_seq: int = 0) -> list[OutboxItem]:
        """Up to ``limit`` items with seq > ``after_seq``, oldest first. Does not remove them."""

    @abstractmethod
    def outbox_settle(self, settlement: Settlement) -> list[OutboxItem]:
        """Write a flush's outcome. Pending links whose parent is among ``crm_ids`` (written
        now) become outbox items in the same transaction; they are returned, oldest first."""

    @abstractmethod
    def outbox_depth(self) -> int: ...

    @abstractmethod
    def crm_ids(self, obj: CrmObject, external_keys: Sequence[str]) -> dict[str, str]: ...

    # -- dead letters
    @abstractmethod
    def dead_letters(self, limit: int = 100) -> list[DeadLetter]: ...

    @abstractmethod
    def dead_letter_count(self) -> int: ...

    @abstractmethod
    def requeue_dead_letters(self, ids: Sequence[int] | None = None) -> int:
        """Move CRM-write dead letters (all, or these ids) back to the outbox; returns how
        many. Rejected input records (no ``op``) stay: they need a fixed source."""

    @abstractmethod
    def dead_letter_keys(self) -> set[tuple[CrmObject, str]]:
        """(object, external key) of every CRM write in the dead-letter queue."""

    @abstractmethod
    def pending_links(self, limit: int = 100) -> list[PendingLink]:
        """References waiting for their refused target to be written, oldest first."""

    # -- adapters' durable key-value areas (AdapterContext.state)
    @abstractmethod
    def adapter_state_get(self, adapter: str, keys: Sequence[str]) -> dict[str, str]: ...

    @abstractmethod
    def adapter_state_put(self, adapter: str, items: Mapping[str, str]) -> None: ...

    @abstractmethod
    def adapter_state_delete(self, adapter: str, keys: Sequence[str]) -> None: ...

    @abstractmethod
    def adapter_state_prefixed(self, adapter: str, prefix: str) -> dict[str, str]: ...

    # -- audit and erase
    @abstractmethod
    def audit(self, entries: Sequence[AuditEntry]) -> None: ...

    @abstractmethod
    def audit_log(self, limit: int = 100) -> list[tuple[datetime, AuditEntry]]: ...

    @abstractmethod
    def erase_plan(self, person_key: str) -> ErasePlan:
        """What :meth:`erase_person` would erase, without erasing it (empty: no such person)."""

    @abstractmethod
    def erase_person(self, person_key: str) -> ErasePlan:
        """Remove a person's profiles, messages and conversations they started from the
        store (and pending outbox ops about them); audit it; return the CRM keys to erase."""

    # -- identity
    @abstractmethod
    def profiles_page(self, after: str = "", limit: int = 1000) -> list[ProfileRecord]:
        """Up to ``limit`` stored profiles with keys after ``after``, in key order (for scans)."""

    @abstractmethod
    def suggest_link(self, profile_key: str, person_key: str, evidence: str, verified: bool) -> IdentityLink | None:
        """Record a suggestion; None if this profile and person already have an open, linked
        or rejected entry (an operator is never asked twice)."""

    @abstractmethod
    def identity_links(self, status: LinkStatus | None = None) -> list[IdentityLink]: ...

    @abstractmethod
    def identity_link(self, link_id: int) -> IdentityLink:
        """One link or suggestion; ``KeyError`` if there is none with this id."""

    @abstractmethod
    def link_identity(
        self, profile_key: str, person_key: str, evidence: str, verified: bool, ops: Sequence[CrmOperation]
    ) -> IdentityLink:
        """Point the profile at the person, with the evidence, and queue ``ops`` (the CRM's
        copy re-pointed) in one transaction; an open suggestion for the pair is accepted.
        Raises ``KeyError`` for an unknown profile."""

    @abstractmethod
    def reject_suggestion(self, link_id: int) -> IdentityLink: ...

    @abstractmethod
    def undo_link(self, link_id: int, ops: Sequence[CrmOperation]) -> IdentityLink:
        """Restore the person the profile had before the link and queue ``ops``; audited.
        Raises ``ValueError`` if the link is not in force (or the profile moved since)."""

    @abstractmethod
    def person(self, person_key: str) -> PersonView: ...

    # -- webhooks: stored before the receiver answers 2xx, read back by the engine

    @abstractmethod
    def store_webhook(self, source: str, digest: str, headers: Mapping[str, str], body: bytes) -> int | None:
        """Keep a verified payload durably; its id, or None if the same payload (``digest``) is
        already kept for this source (a redelivery or a replay: stored once)."""

    @abstractmethod
    def stored_webhooks(self, source: str, after_id: int, limit: int) -> list[StoredWebhook]:
        """Payloads of ``source`` with an id above ``after_id``, oldest first."""

    @abstractmethod
    def prune_webhooks(self, source: str, up_to_id: int, received_before: datetime) -> int:
        """Forget processed payloads (id <= ``up_to_id``) received before the given time."""

    # -- replies: the outbox towards the networks

    @abstractmethod
    def enqueue_replies(
        self, replies: Sequence[NewReply], *, checkpoint: tuple[str, str | None] | None = None
    ) -> list[ReplyRecord]:
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
        """Set a reply's status (and text, network id, error, approval) with ``audit`` entries."""

    # -- learning: agents' label corrections and the models trained on them

    @abstractmethod
    def save_label_examples(
        self, examples: Sequence[NewLabelExample], *, checkpoint: tuple[str, str | None] | None = None
    ) -> int:
        """Keep corrections as labelled examples (one per message and namespace: a newer one
        replaces the older and gets a new seq) and, in the same transaction, save
        ``checkpoint`` (source, cursor) if given. Returns how many were stored."""

    @abstractmethod
    def label_examples(self, namespace: str | None = None) -> list[LabelExample]:
        """Stored examples (of one namespace, or all), oldest seq first; examples of messages
        deleted on their network are left out."""

    @abstractmethod
    def save_model(self, name: str, data: bytes, report: Mapping[str, Any], trained_until: int) -> StoredModel:
        """Keep a newly trained model; it becomes the one :meth:`model` returns."""

    @abstractmethod
    def model(self, name: str) -> StoredModel | None:
        """The model in force for classifier ``name``; None: use the shipped one."""

    @abstractmethod
    def drop_models(self, name: str) -> int:
        """Go back to the shipped model for ``name`` (stored models are kept, inactive)."""

    # -- counts for summaries
    @abstractmethod
    def counts(self) -> Mapping[str, int]:
        """Row counts: profiles, conversations, messages, outbox, dead_letters, seen_events."""
