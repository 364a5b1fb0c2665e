"""The default mapping from a message and its routing actions to CRM operations.

Operations are built with :func:`~scrm_core.models.trusted_operation` (what
``model_construct`` makes, cheaper): the values come from validated models and this
module, so validating them again would only cost time on the hot path.

A plugin replaces it per message through ``scrm_map_to_crm``. Every operation is an
upsert by a deterministic external key, so re-running a page can never duplicate a record.
The field names below are the contract CRM adapters map onto their own objects
(docs/crm-fields.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from scrm_core.models import (
    REDACTED_SUBJECT,
    Action,
    ActionKind,
    Conversation,
    CrmObject,
    CrmOperation,
    Message,
    SocialProfile,
    external_key,
    trusted_operation,
)


def _op(
    *, object: CrmObject, external_key: str, fields: dict[str, Any], refs: dict[str, str] | None = None
) -> CrmOperation:
    return trusted_operation(object, external_key, fields, {} if refs is None else refs)


def profile_ops(profile: SocialProfile, person_key: str) -> list[CrmOperation]:
    """The contact (the person) and the social profile beside it."""
    contact = external_key(person_key)
    return [
        _op(
            object=CrmObject.contact,
            external_key=contact,
            fields={"name": profile.display_name or profile.handle or profile.key, "email": profile.email},
        ),
        _op(
            object=CrmObject.profile,
            external_key=external_key(profile.key),
            fields={
                "network": profile.network,
                "account_id": profile.account_id,
                "handle": profile.handle,
                "display_name": profile.display_name,
                "url": profile.url,
                "followers": profile.followers,
                "verified": profile.verified,
                "bio": profile.bio,
            },
            refs={"contact": contact},
        ),
    ]


def understanding_fields(message: Message) -> dict[str, Any]:
    sentiment = message.sentiment
    return {
        "language": message.language,
        "sentiment_score": sentiment.score if sentiment else None,
        "sentiment_label": sentiment.label if sentiment else None,
        "labels": message.labels,
        "matched_queries": message.matched_queries,
    }


def message_op(message: Message, person_key: str, case_open: bool) -> CrmOperation:
    # One flat dict, keys written out (the hot path: once per message).
    refs = {"profile": f"scrm:{message.author.key}", "contact": f"scrm:{person_key}"}
    conversation_key = message.conversation_key
    if case_open:
        refs["case"] = f"scrm:{conversation_key}"
    sentiment, edited_at = message.sentiment, message.edited_at
    return trusted_operation(
        CrmObject.message,
        f"scrm:{message.network}:{message.id}",
        {
            "network": message.network,
            "message_id": message.id,
            "conversation_key": conversation_key,
            "parent_id": message.parent_id,
            "text": message.text,
            "created_at": message.created_at.isoformat(),
            "edited_at": edited_at.isoformat() if edited_at else None,
            "deleted": False,
            "deleted_at": None,
            "direction": message.direction.value,
            "visibility": message.visibility.value,
            "url": message.url,
            # understanding_fields(message), inline
            "language": message.language,
            "sentiment_score": sentiment.score if sentiment else None,
            "sentiment_label": sentiment.label if sentiment else None,
            "labels": message.labels,
            "matched_queries": message.matched_queries,
        },
        refs,
    )


def edit_op(message: Message) -> CrmOperation:
    """A partial update: the new text and what understanding made of it."""
    return _op(
        object=CrmObject.message,
        external_key=external_key(message.key),
        fields={
            "text": message.text,
            "edited_at": message.edited_at.isoformat() if message.edited_at else None,
            **understanding_fields(message),
        },
    )


def redact_op(message_key: str, deleted_at: datetime | None) -> CrmOperation:
    """The CRM copy keeps its place in the conversation but loses its content."""
    return _op(
        object=CrmObject.message,
        external_key=external_key(message_key),
        fields={"text": "", "deleted": True, "deleted_at": deleted_at.isoformat() if deleted_at else None},
    )


def case_op(conversation: Conversation, person_key: str) -> CrmOperation:
    return _op(
        object=CrmObject.case,
        external_key=external_key(conversation.key),
        fields={
            "subject": conversation.subject,
            "status": "open",
            "priority": conversation.priority,
            "network": conversation.network,
            "conversation_key": conversation.key,
            "labels": conversation.labels,
            # Only when routing set them, so CRMs without such fields see no change.
            **({"queue": conversation.queue} if conversation.queue else {}),
            **({"draft_reply": conversation.draft_reply} if conversation.draft_reply else {}),
        },
        refs={"contact": external_key(person_key)},
    )


def case_subject_op(conversation: Conversation) -> CrmOperation:
    """The case's subject, after the message it came from was edited."""
    return _op(
        object=CrmObject.case, external_key=external_key(conversation.key), fields={"subject": conversation.subject}
    )


def case_redaction_op(conversation: Conversation, *, subject: bool, draft: bool) -> CrmOperation:
    """A case loses the text it took from a deleted message: its subject, its draft reply."""
    fields: dict[str, Any] = {}
    if subject:
        fields["subject"] = REDACTED_SUBJECT
    if draft:
        fields["draft_reply"] = ""
    return _op(object=CrmObject.case, external_key=external_key(conversation.key), fields=fields)


def lead_op(message: Message, person_key: str) -> CrmOperation:
    author = message.author
    return _op(
        object=CrmObject.lead,
        external_key=external_key(author.key),
        fields={
            "name": author.display_name or author.handle or author.key,
            "network": message.network,
            "status": "new",
            "labels": message.labels,
        },
        refs={"contact": external_key(person_key)},
    )


def default_ops(
    message: Message, conversation: Conversation, actions: list[Action], person_key: str, case_changed: bool
) -> list[CrmOperation]:
    """Case (when opened or changed), lead (when asked for), then the message itself."""
    ops: list[CrmOperation] = []
    if case_changed:
        ops.append(case_op(conversation, person_key))
    if any(a.kind is ActionKind.lead for a in actions):
        ops.append(lead_op(message, person_key))
    ops.append(message_op(message, person_key, conversation.needs_case))
    return ops
