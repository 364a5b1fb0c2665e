"""The data that flows through scrm: profiles, messages, conversations, events and CRM operations.

Keys are the one idea to hold on to. Every profile, message and conversation has a
stable key built from the network's own ids (never from a handle: handles change):

* profile ``<network>:<account_id>``
* message ``<network>:<message_id>``
* conversation ``<network>:<root_message_id>``

and every CRM write is an upsert by the external key ``scrm:<key>``, so a retry after a
timeout can never create a second record.
"""

from __future__ import annotations

import string
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Action",
    "ActionKind",
    "Conversation",
    "CrmObject",
    "CrmOperation",
    "Direction",
    "Event",
    "EventPage",
    "IdentityMatch",
    "Message",
    "MessageCreated",
    "MessageDeleted",
    "MessageEdited",
    "OperationResult",
    "ProfileUpdated",
    "ReplyDraft",
    "Sentiment",
    "SocialProfile",
    "Visibility",
    "external_key",
]


def external_key(key: str) -> str:
    """The deterministic CRM external key for an scrm key: ``scrm:<network>:<id>``."""
    return f"scrm:{key}"


class _Model(BaseModel):
    # defer_build: a model's validator is built when it first validates, not at import
    # (most commands never build a Message; ``scrm status`` starts 0.1 s sooner).
    model_config = ConfigDict(extra="forbid", frozen=False, defer_build=True)


class SocialProfile(_Model):
    """A person's account on one network."""

    network: str = Field(min_length=1, description="Network name, e.g. 'mastodon'.")
    account_id: str = Field(min_length=1, description="The network's stable account id (not the handle).")
    handle: str | None = None
    display_name: str | None = None
    bio: str | None = None
    url: str | None = None
    avatar_url: str | None = None
    followers: int | None = Field(default=None, ge=0)
    verified: bool = False
    email: str | None = Field(default=None, description="Only when the person gave it to the company.")

    @property
    def key(self) -> str:
        return f"{self.network}:{self.account_id}"


class Visibility(StrEnum):
    public = "public"
    direct = "direct"


class Direction(StrEnum):
    inbound = "inbound"
    outbound = "outbound"


class Sentiment(_Model):
    """Immutable (replace it, never change it), so a sentiment plugin may hand the same object
    to every message with the same text."""

    model_config = ConfigDict(frozen=True)

    score: float = Field(ge=-1.0, le=1.0, description="-1 very negative .. +1 very positive.")
    label: Literal["negative", "neutral", "positive"]


class Message(_Model):
    """One post, comment, reply or direct message."""

    network: str = Field(min_length=1)
    id: str = Field(min_length=1, description="The network's id of this message.")
    author: SocialProfile
    text: str
    created_at: datetime
    edited_at: datetime | None = None
    thread_root_id: str | None = Field(
        default=None, description="Id of the thread's first message; None if this is it."
    )
    parent_id: str | None = Field(default=None, description="Id of the message this one replies to.")
    visibility: Visibility = Visibility.public
    direction: Direction = Direction.inbound
    mentions: list[str] = Field(default_factory=list)
    hashtags: list[str] = Field(default_factory=list)
    url: str | None = None
    addressed_to_us: bool = Field(
        default=False,
        description="Replies to, mentions or is a direct message to one of the company's accounts "
        "([company] accounts). Set by the engine; an adapter that knows (a mentions feed) may set it too.",
    )
    # Filled in by understanding hooks.
    language: str | None = None
    sentiment: Sentiment | None = None
    labels: list[str] = Field(default_factory=list)
    label_confidence: dict[str, float] = Field(
        default_factory=dict, description="Confidence (0..1) of the labels whose classifier gave one."
    )
    matched_queries: list[str] = Field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.network}:{self.id}"

    @property
    def conversation_key(self) -> str:
        return f"{self.network}:{self.thread_root_id or self.id}"


#: A subject (and draft reply) made from a message that was deleted or erased: no trace of it.
REDACTED_SUBJECT = "[the message this conversation started with was deleted]"


class Conversation(_Model):
    """A thread, keyed by network + root message id. Holds what routing needs, not every message."""

    network: str
    root_id: str
    started_by: str = Field(description="Profile key of the author of the root message (or first seen).")
    subject: str = ""
    message_count: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    labels: list[str] = Field(default_factory=list)
    needs_case: bool = False
    priority: str | None = None
    queue: str | None = Field(default=None, description="Queue or owner the case goes to (routing's queue action).")
    draft_reply: str | None = Field(default=None, description="A suggested reply for the agent, never sent by itself.")
    lead: bool = False
    last_inbound_id: str | None = Field(
        default=None, description="Network id of the customer's latest message: what `scrm reply` answers."
    )
    subject_from: str | None = Field(
        default=None, description="Network id of the message the subject was taken from (redacted with it)."
    )
    draft_from: str | None = Field(
        default=None, description="Network id of the message the draft reply was rendered for (erased with it)."
    )

    @property
    def key(self) -> str:
        return f"{self.network}:{self.root_id}"

    def took_text_from(self, message_id: str) -> tuple[bool, bool]:
        """Whether (the subject, the draft reply) were made from message ``message_id``."""
        subject_from = self.subject_from if self.subject_from is not None else self.root_id
        subject = subject_from == message_id and self.subject != REDACTED_SUBJECT
        draft = bool(self.draft_reply) and (
            self.draft_from == message_id
            or (subject and bool(self.subject) and self.subject in (self.draft_reply or ""))
        )
        return subject, draft

    def redact(self, *, subject: bool, draft: bool) -> None:
        if subject:
            self.subject, self.subject_from = REDACTED_SUBJECT, None
        if draft:
            self.draft_reply, self.draft_from = None, None


# ---------------------------------------------------------------- events


class MessageCreated(_Model):
    kind: Literal["message.created"] = "message.created"
    message: Message

    @property
    def key(self) -> str:
        return f"c:{self.message.key}"


class MessageEdited(_Model):
    """The message's full new state, and which edit of it this is.

    ``version`` tells this edit from the message's other edits: the network's revision
    number, the id of the update that carried it, a hash of the new text. The dedup key
    is built from it, so two edits in the same second stay two edits. ``message.edited_at``
    is information (shown in the CRM); it is the version only when ``version`` is None.
    """

    kind: Literal["message.edited"] = "message.edited"
    message: Message
    version: str | None = Field(
        default=None, min_length=1, description="What tells this edit from the others; None: message.edited_at."
    )

    @property
    def key(self) -> str:
        if self.version is not None:
            return f"e:{self.message.key}:v={self.version}"
        version = self.message.edited_at.isoformat() if self.message.edited_at else "?"
        return f"e:{self.message.key}:{version}"


class MessageDeleted(_Model):
    kind: Literal["message.deleted"] = "message.deleted"
    network: str = Field(min_length=1)
    message_id: str = Field(min_length=1)
    deleted_at: datetime | None = None

    @property
    def message_key(self) -> str:
        return f"{self.network}:{self.message_id}"

    @property
    def key(self) -> str:
        return f"d:{self.message_key}"


class ProfileUpdated(_Model):
    kind: Literal["profile.updated"] = "profile.updated"
    profile: SocialProfile
    version: str = Field(description="Anything that changes when the profile does, e.g. a timestamp.")

    @property
    def key(self) -> str:
        return f"p:{self.profile.key}:{self.version}"


Event = Annotated[MessageCreated | MessageEdited | MessageDeleted | ProfileUpdated, Field(discriminator="kind")]
"""What a network adapter yields. ``event.key`` is the dedup key (kind, network, id, version)."""


class EventPage(_Model):
    """A run of events and the cursor that follows them.

    The engine saves ``cursor`` in the same transaction as the events' results, so a crash
    loses the whole page or none of it. ``rejects`` are records the adapter could not
    parse; they go to the dead-letter queue with their reason.
    """

    events: list[Event]
    cursor: str | None = Field(description="Resumes right after this page; None only if the source has no position.")
    rejects: list[tuple[str, str]] = Field(default_factory=list, description="(record locator, reason)")


# ---------------------------------------------------------------- routing and CRM


class ActionKind(StrEnum):
    log = "log"
    case = "case"
    lead = "lead"
    label = "label"
    priority = "priority"
    queue = "queue"
    draft_reply = "draft_reply"
    ignore = "ignore"


DRAFT_PLACEHOLDERS = frozenset({"author", "handle", "network", "subject"})
_VALUED_ACTIONS = frozenset({"label", "priority", "queue", "draft_reply"})


class Action(_Model):
    kind: ActionKind
    value: str | None = Field(
        default=None,
        description="label / priority / queue name; for draft_reply a template with {author}, {handle}, "
        "{network} and {subject}.",
    )
    rule: str | None = Field(default=None, description="Name of the routing rule that produced it.")

    @model_validator(mode="after")
    def _value_where_needed(self) -> Action:
        if self.kind.value in _VALUED_ACTIONS and not self.value:
            raise ValueError(f"a {self.kind.value} action needs a value")
        if self.kind is ActionKind.draft_reply and self.value:
            try:
                names = {name for _, name, _, _ in string.Formatter().parse(self.value) if name is not None}
            except ValueError as exc:
                raise ValueError(f"draft_reply template: {exc}") from None
            unknown = names - DRAFT_PLACEHOLDERS
            if unknown:
                raise ValueError(
                    f"draft_reply template uses {', '.join(sorted('{' + n + '}' for n in unknown))}; "
                    f"known placeholders: {', '.join(sorted('{' + n + '}' for n in DRAFT_PLACEHOLDERS))}"
                )
        return self


class CrmObject(StrEnum):
    """CRM object types, in the order a sink applies them (references point backwards)."""

    contact = "contact"
    profile = "profile"
    case = "case"
    lead = "lead"
    message = "message"


CRM_OBJECT_ORDER: dict[CrmObject, int] = {obj: i for i, obj in enumerate(CrmObject)}


class CrmOperation(_Model):
    """An upsert of one CRM record by its external key.

    External keys are unique per object type, not across types: a profile's contact, the
    profile itself and its lead all carry ``scrm:<network>:<account id>`` and are three
    records. An adapter that stores two scrm object types in one CRM object must tell
    them apart (e.g. one external-ID field per type).

    ``refs`` name other records by their external keys (``{"contact": "scrm:..."}``); the
    adapter resolves them to CRM ids. Deletions are upserts too (``fields`` carries the
    redaction), so every write the sink makes is idempotent.
    """

    object: CrmObject
    external_key: str
    fields: dict[str, Any] = Field(default_factory=dict)
    refs: dict[str, str] = Field(default_factory=dict)

    def merged_with(self, later: CrmOperation) -> CrmOperation:
        """One operation equivalent to applying ``self`` then ``later`` (same record)."""
        return trusted_operation(  # both halves were validated already
            self.object, self.external_key, {**self.fields, **later.fields}, {**self.refs, **later.refs}
        )


_new_instance = object.__new__
_set_attribute = object.__setattr__


def trusted_operation(
    object: CrmObject, external_key: str, fields: dict[str, Any], refs: dict[str, str]
) -> CrmOperation:
    """A :class:`CrmOperation` of values that need no validation (the engine's own, built
    from validated models): the very object ``CrmOperation.model_construct`` makes, equal
    to it and the same to every adapter, for a third of its cost (the hot path builds
    about two per message)."""
    op = _new_instance(CrmOperation)
    _set_attribute(op, "__dict__", {"object": object, "external_key": external_key, "fields": fields, "refs": refs})
    _set_attribute(op, "__pydantic_fields_set__", {"object", "external_key", "fields", "refs"})
    _set_attribute(op, "__pydantic_extra__", None)
    _set_attribute(op, "__pydantic_private__", None)
    return op


class IdentityMatch(_Model):
    """A proposal that a profile belongs to a known person, with the evidence for it."""

    person_key: str
    evidence: str = Field(min_length=1, description="What shows it, e.g. 'email confirmed by the customer'.")
    verified: bool = False


class ReplyDraft(_Model):
    """A reply on its way to a network. Plugins may change ``text``, set ``hold`` or ``refused``."""

    conversation_key: str
    in_reply_to: str = Field(description="Network id of the message replied to.")
    text: str = Field(min_length=1)
    hold: bool = False
    refused: str | None = None


class OperationResult(_Model):
    """What the CRM said about one operation of a batch (same order as the batch).

    A refusal is ``retryable`` only when sending the same record again may succeed (a
    lock, a timeout, a record it refers to that may still arrive); a deterministic
    refusal (a validation rule, a value the CRM will never take) is not, and goes to the
    dead-letter queue at once with the vendor's ``code`` and the operator's ``fix``.
    """

    external_key: str
    ok: bool
    crm_id: str | None = None
    error: str | None = Field(default=None, description="The CRM's reason, for the dead-letter queue.")
    retryable: bool = False
    code: str | None = Field(
        default=None, description="The CRM's own error code (STRING_TOO_LONG, VALIDATION_ERROR, ...)."
    )
    fix: str | None = Field(default=None, description="What the operator does so that a retry succeeds.")
