"""The three kinds of failure an adapter or plugin can report, and what the host does with each.

Modelled on singer-sdk's fatal / retriable / skippable split: the class says what to do
next, so the engine never has to guess from a message string. ``operator_message`` is
written for the person running scrm; ``detail`` is for logs and may hold internal context.
Neither may contain a secret: adapters pass :class:`pydantic.SecretStr` around and only
reveal it at the moment of the HTTP call, and both go through the core's redaction layer
(:mod:`scrm_core.redaction`) here, so a service's error body quoted in a message cannot
carry a configured secret or a credential-shaped value any further.
"""

from __future__ import annotations

from .redaction import redact


class ScrmError(Exception):
    """Base class of every error scrm raises on purpose."""

    def __init__(self, operator_message: str, *, detail: str | None = None) -> None:
        operator_message = redact(operator_message)
        super().__init__(operator_message)
        self.operator_message = operator_message
        self.detail = None if detail is None else redact(detail)


class FatalError(ScrmError):
    """Stop the run and tell the operator: bad credentials, a missing CRM field, a bad config."""


class RetryableError(ScrmError):
    """Try again later. ``retry_after`` is the wait the remote service asked for, in seconds."""

    def __init__(self, operator_message: str, *, retry_after: float | None = None, detail: str | None = None) -> None:
        super().__init__(operator_message, detail=detail)
        self.retry_after = retry_after


class SkippableError(ScrmError):
    """This one record cannot be processed; park it in the dead-letter queue and go on."""


class ConfigError(FatalError):
    """A configuration file is invalid. ``problems`` lists every mistake found, not just the first."""

    def __init__(self, path: str, problems: list[str]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{path}: {len(problems)} problem(s) in the configuration:\n{lines}")
        self.path = path
        self.problems = problems


class PluginError(ScrmError):
    """A plugin could not be loaded or registered; carries the plugin's name."""

    def __init__(self, plugin: str, operator_message: str, *, detail: str | None = None) -> None:
        super().__init__(f"plugin {plugin!r}: {operator_message}", detail=detail)
        self.plugin = plugin
