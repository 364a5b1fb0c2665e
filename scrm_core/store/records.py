"""The records the state store keeps and returns: plain dataclasses, the same on every back end."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ..models import Conversation, CrmObject, CrmOperation, SocialProfile, external_key

__all__ = [
    "AuditEntry",
    "Checkpoint",
    "DeadLetter",
    "ErasePlan",
    "FleetView",
    "IdentityLink",
    "LabelExample",
    "Lease",
    "LeaseRecord",
    "LinkStatus",
    "MessageRecord",
    "NewDeadLetter",
    "NewLabelExample",
    "NewReply",
    "OutboxItem",
    "PageCommit",
    "PendingLink",
    "PersonView",
    "ProfileRecord",
    "Refusal",
    "ReplyRecord",
    "ReplyStatus",
    "Settlement",
    "StoredModel",
    "StoredWebhook",
    "WorkerInfo",
    "WorkerRecord",
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


@dataclass(frozen=True, slots=True)
class Lease:
    """A worker's lease on one unit of work of the fleet (a source's reader, an outbox
    partition). ``token`` grows with every acquisition, so an older holder is told apart."""

    name: str
    holder: str  # the worker's id
    token: int


@dataclass(slots=True)
class PageCommit:
    """Everything one page of events produced, committed atomically with the cursor.

    ``lease``: in a fleet, the reader's lease on ``source``; the commit is refused
    (:class:`~scrm_core.store.LeaseLost`) unless that lease is still the one in force."""

    source: str
    cursor: str | None
    event_keys: Sequence[str] = ()
    profiles: Sequence[ProfileRecord] = ()
    conversations: Sequence[Conversation] = ()
    messages: Sequence[MessageRecord] = ()
    ops: Sequence[CrmOperation] = ()
    dead_letters: Sequence[NewDeadLetter] = ()
    audit: Sequence[AuditEntry] = ()
    lease: Lease | None = None


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
    ``keep_ids``: False where the CRM's ids follow from the external keys
    (:attr:`~scrm_core.CrmCapability.ids_follow_keys`): ``crm_ids`` then only say which
    records were written (links waiting for them are released) and are not stored.
    """

    done: Sequence[int] = ()
    crm_ids: Sequence[tuple[CrmObject, str, str]] = ()
    failed: Sequence[Refusal] = ()
    retry: Sequence[int] = ()
    links: Sequence[PendingLink] = ()
    keep_ids: bool = True


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

    @classmethod
    def for_person(
        cls, person_key: str, profiles: Sequence[str], messages: Sequence[str], threads: Sequence[str]
    ) -> ErasePlan:
        """The CRM records of a person (every back end erases the same ones): the contact, each
        profile and the lead on it, the cases of the threads they started, their messages."""
        return cls(
            person_key,
            {
                CrmObject.contact: [external_key(person_key)],
                CrmObject.profile: [external_key(k) for k in profiles],
                CrmObject.case: [external_key(k) for k in threads],
                CrmObject.lead: [external_key(k) for k in profiles],
                CrmObject.message: [external_key(k) for k in messages],
            },
        )


def replies_to(messages: Sequence[str], sent: Iterable[tuple[str, str, str]]) -> list[str]:
    """Message keys of the company's replies to ``messages`` (they quote the person, so they go
    with them), from the sent replies' (conversation_key, in_reply_to, network_message_id)."""
    theirs = set(messages)
    found = []
    for conversation, parent, sent_id in sent:
        network = conversation.partition(":")[0]
        if f"{network}:{parent}" in theirs and f"{network}:{sent_id}" not in theirs:
            found.append(f"{network}:{sent_id}")
    return found


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


@dataclass(slots=True)
class WorkerInfo:
    """A worker joining the fleet: who it is, for ``scrm status`` and the logs."""

    id: str
    host: str
    pid: int
    command: str = ""


@dataclass(slots=True)
class WorkerRecord(WorkerInfo):
    started_at: datetime | None = None
    seen_seconds_ago: float = 0.0  # since its last heartbeat, by the store's clock
    alive: bool = True  # heartbeat within the lease time


@dataclass(slots=True)
class LeaseRecord:
    name: str
    holder: str | None  # None: free
    token: int
    expires_in: float  # seconds, by the store's clock (negative: expired)


@dataclass(slots=True)
class FleetView:
    """The fleet as the store sees it, all read in one snapshot (``scrm status``)."""

    workers: list[WorkerRecord]
    leases: list[LeaseRecord]
    outbox_by_partition: dict[int, int]  # partition -> operations waiting
    sources: list[SourceLag] = field(default_factory=list)  # every checkpoint, by name


@dataclass(slots=True)
class SourceLag:
    """How far behind one reader (by checkpoint name) is, by the store's clock: since its last
    commit, and what it committed over the last ``window_seconds``."""

    name: str
    events: int  # committed, all time
    last_commit_seconds_ago: float | None  # None: never committed
    pages_per_minute: float
    events_per_minute: float
    window_seconds: float
