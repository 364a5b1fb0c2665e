"""scrm: listen where customers talk, keep the CRM you already run current.

The public API of the core. Adapter and plugin authors import from here only::

    from scrm_core import hookimpl, NetworkAdapter, CrmAdapter, Message, ...
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "scrm"
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Decorator marking a function as an implementation of an ``scrm_*`` hook."""

from .adapters import (  # noqa: E402
    AdapterContext,
    AdapterSettings,
    AdapterState,
    CheckProblem,
    CrmAdapter,
    CrmCapability,
    CrmLimits,
    MemoryState,
    NetworkAdapter,
    NetworkCapability,
    PendingReply,
    PlannedWrite,
    SentReply,
    WriteBatch,
)
from .errors import ConfigError, FatalError, PluginError, RetryableError, ScrmError, SkippableError  # noqa: E402
from .models import (  # noqa: E402
    Action,
    ActionKind,
    Conversation,
    CrmObject,
    CrmOperation,
    Direction,
    Event,
    EventPage,
    IdentityMatch,
    Message,
    MessageCreated,
    MessageDeleted,
    MessageEdited,
    OperationResult,
    ProfileUpdated,
    ReplyDraft,
    Sentiment,
    SocialProfile,
    Visibility,
    external_key,
)
from .webhooks import WebhookAnswer, WebhookRejected, WebhookRequest  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "PROJECT_NAME",
    "Action",
    "ActionKind",
    "AdapterContext",
    "AdapterSettings",
    "AdapterState",
    "CheckProblem",
    "ConfigError",
    "Conversation",
    "CrmAdapter",
    "CrmCapability",
    "CrmLimits",
    "CrmObject",
    "CrmOperation",
    "Direction",
    "Event",
    "EventPage",
    "FatalError",
    "IdentityMatch",
    "MemoryState",
    "Message",
    "MessageCreated",
    "MessageDeleted",
    "MessageEdited",
    "NetworkAdapter",
    "NetworkCapability",
    "OperationResult",
    "PendingReply",
    "PlannedWrite",
    "PluginError",
    "ProfileUpdated",
    "ReplyDraft",
    "RetryableError",
    "ScrmError",
    "SentReply",
    "Sentiment",
    "SkippableError",
    "SocialProfile",
    "Visibility",
    "WebhookAnswer",
    "WebhookRejected",
    "WebhookRequest",
    "WriteBatch",
    "external_key",
    "hookimpl",
]
