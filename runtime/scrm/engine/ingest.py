"""Ingest: one page of events in, one atomic :class:`PageCommit` out.

For each event not seen before: understand the message (language, sentiment, listening
matches, moderation, labels), place it in its conversation, route the conversation,
and map the outcome to CRM operations. Nothing is written here; the caller commits the
result together with the page's cursor, so a crash loses the page or none of it.

This is the hot path (the budget is >= 20,000 messages/s on one core): hooks nobody
implements are skipped, lookups are one query per page, and the profile's CRM record is
rewritten only when the profile changed.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime

from scrm.hooks import Hooks
from scrm.store import AsyncStore, AuditEntry, MessageRecord, NewDeadLetter, PageCommit, ProfileRecord, StateStore
from scrm_core.config import Config
from scrm_core.failures import event_locator, item_reason
from scrm_core.models import (
    Action,
    ActionKind,
    Conversation,
    CrmOperation,
    Direction,
    Message,
    MessageCreated,
    MessageDeleted,
    MessageEdited,
    ProfileUpdated,
    SocialProfile,
)
from scrm_core.models import EventPage as Page

from . import mapping
from .addressing import Addressing, CompanyAccounts
from .listening_filter import ListeningFilter
from .lookups import StoreLookups
from .routing import render_draft
from .understand import Understander

AnyEvent = MessageCreated | MessageEdited | MessageDeleted | ProfileUpdated

_PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
_LOG_ONLY = [Action(kind=ActionKind.log, rule="no-routing-plugin")]
_SUBJECT_LEN = 120

log = logging.getLogger("scrm.ingest")


class _EventFailed(Exception):
    """One event of a page failed (the cause says how)."""

    def __init__(self, event: AnyEvent) -> None:
        super().__init__(event.key)
        self.event = event


@dataclass
class IngestCounts:
    events: int = 0
    duplicates: int = 0
    messages: int = 0
    edits: int = 0
    stale_edits: int = 0  # an older version delivered after a newer one: not applied
    deletions: int = 0
    ignored: int = 0
    rejects: int = 0
    ops: int = 0
    filtered: int = 0  # dropped by a source's listening filter before anything was stored


@dataclass
class _Work:
    """Everything the page has looked up or changed so far; later events see earlier ones."""

    profiles: dict[str, ProfileRecord]
    conversations: dict[str, Conversation]
    messages: dict[str, MessageRecord]
    changed_profiles: set[str] = field(default_factory=set)
    changed_conversations: set[str] = field(default_factory=set)
    changed_messages: set[str] = field(default_factory=set)
    profiles_checked: set[str] = field(default_factory=set)  # CRM copy already brought up to date
    ops: list[CrmOperation] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)


def _fingerprint(profile: SocialProfile) -> str:
    return format(zlib.crc32(profile.model_dump_json().encode()), "08x")


def _subject(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _SUBJECT_LEN else line[: _SUBJECT_LEN - 1] + "…"


def _version(message: Message) -> str:
    """A message's version, comparable as text: "" for the original, else edited_at in UTC."""
    return message.edited_at.astimezone(UTC).isoformat() if message.edited_at else ""


def _message_id(key: str) -> str:
    return key.partition(":")[2]


def _look_up(
    store: StateStore, keyed: list[tuple[str, AnyEvent]], failed: Mapping[str, NewDeadLetter]
) -> tuple[list[AnyEvent], list[str], _Work]:
    """Ingest's reads for a page, run in the store's thread in one hop: the events neither
    committed before nor repeated earlier in the page (and their keys), and the stored rows
    those events touch (without the ones that failed before)."""
    unseen = store.unseen(list({k for k, _ in keyed}))
    fresh: list[AnyEvent] = []
    keys: list[str] = []
    for key, event in keyed:
        if key in unseen:
            unseen.discard(key)
            keys.append(key)
            if key not in failed:
                fresh.append(event)
    profile_keys: set[str] = set()
    conversation_keys: set[str] = set()
    message_keys: set[str] = set()
    deleted: list[str] = []
    for event in fresh:
        if isinstance(event, MessageDeleted):
            message_keys.add(event.message_key)
            deleted.append(event.message_key)
        elif isinstance(event, ProfileUpdated):
            profile_keys.add(event.profile.key)
        else:
            m = event.message
            profile_keys.add(m.author.key)
            conversation_keys.add(m.conversation_key)
            message_keys.add(m.key)
    messages = store.messages(list(message_keys)) if message_keys else {}
    # A deleted message's thread: its subject may be the deleted text.
    conversation_keys.update(messages[k].conversation_key for k in deleted if k in messages)
    conversation_keys.discard("")
    work = _Work(
        profiles=store.profiles(list(profile_keys)) if profile_keys else {},
        conversations=store.conversations(list(conversation_keys)) if conversation_keys else {},
        messages=messages,
    )
    return fresh, keys, work


class Ingestor:
    def __init__(self, store: AsyncStore, hooks: Hooks, config: Config) -> None:
        self.store = store
        self.hooks = hooks
        self.queries = {q.name: q.query for q in config.listening.queries}
        self.understander = Understander(hooks, self.queries)
        self.counts = IngestCounts()
        accounts = CompanyAccounts(config.company.accounts)
        lookups = StoreLookups(store)
        self.addressing = Addressing(accounts, lookups)
        self.filter = ListeningFilter(config, hooks, lookups, accounts)

    async def process(self, source: str, page: Page) -> PageCommit:
        """The page's commit. An event that fails here, with whatever exception, is left out
        as a dead letter naming it, and the page is worked out again without it (so no half
        of its work is kept); the rest of the page goes on."""
        failed: dict[str, NewDeadLetter] = {}
        while True:
            before = replace(self.counts)
            try:
                return await self._process(source, page, failed)
            except _EventFailed as failure:
                for f in fields(self.counts):  # in place: RunStats holds this object
                    setattr(self.counts, f.name, getattr(before, f.name))
                event, exc = failure.event, failure.__cause__ or failure
                reason = f"{event.kind} could not be processed: {item_reason(exc)}"
                failed[event.key] = NewDeadLetter(source=source, reason=reason, locator=event_locator(event))

    async def _process(self, source: str, page: Page, failed: Mapping[str, NewDeadLetter]) -> PageCommit:
        events: list[AnyEvent] = list(page.events)
        await self.addressing.mark(events)
        if self.filter.applies(source):
            kept = await self.filter.keep(events)
            self.counts.filtered += len(events) - len(kept)
            self.counts.events += len(events) - len(kept)
            events = kept
        keyed = [(event.key, event) for event in events]
        fresh, keys, work = await self.store.run(lambda store: _look_up(store, keyed, failed))
        self.counts.events += len(keyed)
        self.counts.duplicates += len(keyed) - len(keys)
        try:
            await self.understand_page([e.message for e in fresh if isinstance(e, MessageCreated | MessageEdited)])
        except Exception:  # each message is understood by itself below, its failure its own
            log.exception("understanding a page of %s at once failed", source)
        for event in fresh:
            try:
                if isinstance(event, MessageCreated):
                    await self._created(work, event.message)
                elif isinstance(event, MessageEdited):
                    await self._edited(work, event.message)
                elif isinstance(event, MessageDeleted):
                    await self._deleted(work, event)
                else:
                    await self._profile_updated(work, event)
            except Exception as exc:
                raise _EventFailed(event) from exc
        self.counts.rejects += len(page.rejects) + len(failed)
        self.counts.ops += len(work.ops)
        return PageCommit(
            source=source,
            cursor=page.cursor,
            event_keys=keys,  # failed events too: a redelivery is not a second dead letter
            profiles=[work.profiles[k] for k in work.changed_profiles],
            conversations=[work.conversations[k] for k in work.changed_conversations],
            messages=[work.messages[k] for k in work.changed_messages],
            ops=work.ops,
            dead_letters=[NewDeadLetter(source=source, reason=reason, locator=where) for where, reason in page.rejects]
            + list(failed.values()),
            audit=work.audit,
        )

    # ------------------------------------------------------------ profiles

    async def _profile(self, work: _Work, profile: SocialProfile) -> ProfileRecord:
        """The stored record for a profile, updated (and enriched) if the network's copy changed."""
        key = profile.key
        record = work.profiles.get(key)
        if record is not None and record.profile == profile:
            return record
        if "scrm_enrich_profile" in self.hooks.implemented:
            profile = await self.hooks.enrich_profile(profile)
        if record is None:
            record = ProfileRecord(profile=profile, person_key=key, fingerprint="")
        else:
            record.profile = profile
        work.profiles[key] = record
        work.changed_profiles.add(key)
        return record

    def _send_profile(self, work: _Work, record: ProfileRecord) -> None:
        """Queue the contact + profile upserts if the CRM's copy is missing or stale."""
        key = record.profile.key
        if key in work.profiles_checked or (record.fingerprint and key not in work.changed_profiles):
            return
        work.profiles_checked.add(key)
        fingerprint = _fingerprint(record.profile)
        if fingerprint != record.fingerprint:
            work.ops += mapping.profile_ops(record.profile, record.person_key)
            record.fingerprint = fingerprint
            work.changed_profiles.add(key)

    # ------------------------------------------------------------ messages

    async def understand(self, message: Message) -> None:
        """Redaction, then language, sentiment, listening matches, moderation and labels, onto ``message``."""
        await self.understander.understand(message)

    async def understand_page(self, messages: list[Message]) -> None:
        """:meth:`understand` for a page's new messages, hook by hook (``understand`` then
        does nothing for them): each plugin's code and data stay in the CPU's caches."""
        await self.understander.understand_page(messages)

    def _conversation(self, work: _Work, message: Message) -> Conversation:
        key = message.conversation_key
        conversation = work.conversations.get(key)
        work.changed_conversations.add(key)
        if conversation is None:  # the thread's first message seen: everything set at once
            work.conversations[key] = conversation = Conversation(
                network=message.network,
                root_id=message.thread_root_id or message.id,
                started_by=message.author.key,
                subject=_subject(message.text),
                subject_from=message.id,
                first_at=message.created_at,
                message_count=1,
                last_at=message.created_at,
                last_inbound_id=message.id if message.direction is Direction.inbound else None,
                labels=list(message.labels),
            )
            return conversation
        conversation.message_count += 1
        newest = conversation.last_at is None or message.created_at >= conversation.last_at
        if newest:
            conversation.last_at = message.created_at
        if message.direction is Direction.inbound and (newest or conversation.last_inbound_id is None):
            conversation.last_inbound_id = message.id
        labels = conversation.labels
        new_labels = [x for x in message.labels if x not in labels]
        if new_labels:
            labels.extend(new_labels)
        return conversation

    async def _route(self, conversation: Conversation, message: Message) -> list[Action]:
        if "scrm_route_conversation" not in self.hooks.implemented:
            return _LOG_ONLY
        return await self.hooks.route_conversation(conversation, message)

    @staticmethod
    def _apply_actions(conversation: Conversation, message: Message, actions: list[Action]) -> bool:
        """Update the conversation from routing; True if its case must be (re)written."""
        case_changed = False
        for action in actions:
            if action.kind is ActionKind.queue and action.value != conversation.queue:
                conversation.queue = action.value
                case_changed = True
            elif action.kind is ActionKind.draft_reply and action.value:
                draft = render_draft(action.value, message, conversation.subject)
                if draft != conversation.draft_reply:
                    conversation.draft_reply = draft
                    conversation.draft_from = message.id
                    case_changed = True
            elif action.kind is ActionKind.case and not conversation.needs_case:
                conversation.needs_case = case_changed = True
            elif action.kind is ActionKind.priority and action.value:
                current = _PRIORITY_RANK.get(conversation.priority or "", -1)
                if _PRIORITY_RANK.get(action.value, 0) > current:  # a follow-up never lowers priority
                    conversation.priority = action.value
                    case_changed = True
            elif action.kind is ActionKind.label and action.value and action.value not in conversation.labels:
                conversation.labels.append(action.value)
                case_changed = True
            elif action.kind is ActionKind.lead:
                conversation.lead = True
        return case_changed and conversation.needs_case

    async def _created(self, work: _Work, message: Message) -> None:
        key = message.key
        if key in work.messages:
            # Known already: deleted before we saw it (never copy it), or first seen as an
            # edit, which carried a newer state than this creation.
            return
        record = await self._profile(work, message.author)
        await self.understand(message)
        conversation = self._conversation(work, message)
        hooks = self.hooks
        present = hooks.implemented
        if "scrm_message_received" in present:
            await hooks.message_received(message, conversation)
        actions = await self._route(conversation, message)
        if any(a.kind is ActionKind.ignore for a in actions):
            ops: list[CrmOperation] = []
        else:
            case_changed = self._apply_actions(conversation, message, actions)
            mapped = None
            if "scrm_map_to_crm" in present:
                mapped = await hooks.map_to_crm(message, conversation, actions)
            ops = (
                mapped
                if mapped is not None
                else mapping.default_ops(message, conversation, actions, record.person_key, case_changed)
            )
        if ops:
            self._send_profile(work, record)
            work.ops.extend(ops)
            self.counts.messages += 1
        else:
            self.counts.ignored += 1
        work.messages[key] = MessageRecord(
            key, message.conversation_key, message.author.key, in_crm=bool(ops), version=_version(message)
        )
        work.changed_messages.add(key)

    async def _edited(self, work: _Work, message: Message) -> None:
        record = work.messages.get(message.key)
        if record is None:
            await self._created(work, message)  # first seen as an edit: it is new to us
            return
        if record.deleted:
            return
        version = _version(message)
        if record.version is not None and version <= record.version:
            self.counts.stale_edits += 1  # re-delivered after a newer version: the CRM keeps the newer
            return
        record.version = version
        work.changed_messages.add(message.key)
        await self.understand(message)
        if record.in_crm:
            work.ops.append(mapping.edit_op(message))
            self._subject_follows(work, message, record.conversation_key)
        self.counts.edits += 1
        if self.hooks.has("scrm_message_edited"):
            await self.hooks.message_edited(message, record.conversation_key)

    async def _deleted(self, work: _Work, event: MessageDeleted) -> None:
        key = event.message_key
        record = work.messages.get(key)
        if record is None:
            # Remember the deletion so a late or replayed creation is never copied.
            work.messages[key] = MessageRecord(key, "", "", deleted=True, in_crm=False)
            work.changed_messages.add(key)
            work.audit.append(AuditEntry("message.deleted", key, "deleted before it was seen; not copied"))
            return
        if record.deleted:
            return
        record.deleted = True
        work.changed_messages.add(key)
        self.counts.deletions += 1
        if record.in_crm:
            work.ops.append(mapping.redact_op(key, event.deleted_at or datetime.now().astimezone()))
        self._redact_derived(work, _message_id(key), record.conversation_key)
        work.audit.append(AuditEntry("message.redacted", key, "deleted by its author on the network"))
        if self.hooks.has("scrm_message_deleted"):
            await self.hooks.message_deleted(key, record.conversation_key)

    # ------------------------------------------------------------ text derived from a message

    def _subject_follows(self, work: _Work, message: Message, conversation_key: str) -> None:
        """An edit of the message a subject was taken from: the subject (and its case) follow it."""
        conversation = work.conversations.get(conversation_key)
        if conversation is None or not conversation.took_text_from(message.id)[0]:
            return
        subject = _subject(message.text)
        if subject == conversation.subject:
            return
        conversation.subject, conversation.subject_from = subject, message.id
        work.changed_conversations.add(conversation_key)
        if conversation.needs_case:
            work.ops.append(mapping.case_subject_op(conversation))

    def _redact_derived(self, work: _Work, message_id: str, conversation_key: str) -> None:
        """A deleted message's text leaves every copy scrm made of it: the thread's subject (and
        its case's), and a draft reply rendered from it or from that subject."""
        conversation = work.conversations.get(conversation_key)
        if conversation is None:
            return
        subject_gone, draft_gone = conversation.took_text_from(message_id)
        if not subject_gone and not draft_gone:
            return
        conversation.redact(subject=subject_gone, draft=draft_gone)
        work.changed_conversations.add(conversation_key)
        if conversation.needs_case:
            work.ops.append(mapping.case_redaction_op(conversation, subject=subject_gone, draft=draft_gone))
        work.audit.append(AuditEntry("case.redacted", conversation_key, "text taken from a deleted message"))

    async def _profile_updated(self, work: _Work, event: ProfileUpdated) -> None:
        record = await self._profile(work, event.profile)
        if record.fingerprint:  # only profiles already in the CRM are rewritten there
            self._send_profile(work, record)
