"""What the adapter needs of Salesforce's refusals without importing simple-salesforce
(imported only when a connection is built: :mod:`scrm_salesforce.client`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrm_core import RetryableError

if TYPE_CHECKING:
    from simple_salesforce.exceptions import SalesforceError

__all__ = ["ApiLimitExceeded", "error_items"]


class ApiLimitExceeded(RetryableError):
    """403 REQUEST_LIMIT_EXCEEDED: the org's API budget is spent; pause, keep the outbox."""


def error_items(exc: SalesforceError) -> list[dict[str, Any]]:
    """The ``[{"errorCode", "message"}]`` body of a refused call, whatever shape it came in."""
    content = exc.content
    if isinstance(content, dict):
        content = [content]
    if isinstance(content, list):
        return [item for item in content if isinstance(item, dict)]
    return []
