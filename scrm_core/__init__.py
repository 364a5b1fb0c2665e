"""scrm: listen where customers talk, keep the CRM you already run current.

The public API of the core: the contract between scrm's runtime (the ``scrm`` distribution:
command, engine, embedded state store) and its adapters, plugins and state-store back ends.
Adapter and plugin authors import from here only::

    from scrm_core import hookimpl, NetworkAdapter, CrmAdapter, Message, ...

and, for tests, from ``scrm_core.testing`` (fakes, fault injection, conformance suites).
A few modules are public too (``scrm_core.errors``, ``scrm_core.models``, and the runtime's
``scrm.cli`` command kit for adapters that add commands): docs/public-api.md lists them,
and import-linter keeps adapters to them.
The adapter kit is here too: :class:`PollingAdapter`, :class:`Cursor`, :class:`HttpApi`,
:func:`make_client`, :func:`parse_rate_limit`, :func:`retrying`, :func:`html_to_text`,
:class:`LRUCache`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    HttpSettings,
    LabelCorrection,
    MemoryState,
    NetworkAdapter,
    NetworkCapability,
    PendingReply,
    PlannedWrite,
    PollingSettings,
    ReplyGuarantee,
    SentReply,
    WriteBatch,
)
from .cursor import Cursor, JsonCursor, OverlapWindow  # noqa: E402
from .errors import ConfigError, FatalError, PluginError, RetryableError, ScrmError, SkippableError  # noqa: E402
from .http import (  # noqa: E402
    HttpApi,
    RateLimit,
    body_retry_after,
    error_text,
    make_client,
    parse_rate_limit,
    retry_after_seconds,
    retrying,
)
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
from .polling import Batch, PollingAdapter  # noqa: E402
from .ratelimit import RateBudget  # noqa: E402
from .text import LRUCache, html_to_text  # noqa: E402
from .webhooks import WebhookAnswer, WebhookRejected, WebhookRequest  # noqa: E402

if TYPE_CHECKING:
    from .config import Config

__version__ = "0.1.0"

__all__ = [
    "PROJECT_NAME",
    "Action",
    "ActionKind",
    "AdapterContext",
    "AdapterSettings",
    "AdapterState",
    "Batch",
    "CheckProblem",
    "Config",
    "ConfigError",
    "Conversation",
    "CrmAdapter",
    "CrmCapability",
    "CrmLimits",
    "CrmObject",
    "CrmOperation",
    "Cursor",
    "Direction",
    "Event",
    "EventPage",
    "FatalError",
    "HttpApi",
    "HttpSettings",
    "IdentityMatch",
    "JsonCursor",
    "LRUCache",
    "LabelCorrection",
    "MemoryState",
    "Message",
    "MessageCreated",
    "MessageDeleted",
    "MessageEdited",
    "NetworkAdapter",
    "NetworkCapability",
    "OperationResult",
    "OverlapWindow",
    "PendingReply",
    "PlannedWrite",
    "PluginError",
    "PollingAdapter",
    "PollingSettings",
    "ProfileUpdated",
    "RateBudget",
    "RateLimit",
    "ReplyDraft",
    "ReplyGuarantee",
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
    "body_retry_after",
    "error_text",
    "external_key",
    "hookimpl",
    "html_to_text",
    "make_client",
    "parse_rate_limit",
    "retry_after_seconds",
    "retrying",
]


def __getattr__(name: str) -> Any:
    # ``Config`` (what scrm_register_processors and scrm_check_config receive) is imported on
    # first use: the config schema is not needed to load a plugin.
    if name == "Config":
        from .config import Config

        return Config
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
