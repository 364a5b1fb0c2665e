"""The one TOML configuration file's model: sources, CRM, listening, routing, identity, state
(what plugins receive as :class:`Config`). Reading the file is the runtime's
(:func:`scrm.config.load_config`).

Validated once, at start, and every mistake is reported at once with the file and the key
(``scrm.toml: sources[1].settings.paths: Field required``). Secrets come from the
environment as ``${NAME}`` (write ``$${`` for a literal ``${``); adapters type them as
``SecretStr``, and error messages never echo a value, only where it is.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .models import Action, Direction, Visibility

__all__ = [
    "PRIORITIES",
    "CompanyConfig",
    "Config",
    "CrmConfig",
    "EngineConfig",
    "IdentityConfig",
    "IdentityPolicy",
    "ListeningQuery",
    "RepliesConfig",
    "RoutingRule",
    "RuleWhen",
    "ServeConfig",
    "SourceConfig",
    "StateConfig",
]

#: The values of a routing rule's ``priority`` action, lowest first.
PRIORITIES = ("low", "normal", "high", "urgent")

_NETWORK_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StateConfig(_Section):
    url: str = Field(default="sqlite:///scrm-state.db", description="sqlite:///PATH (relative to this file).")
    lease_seconds: float = Field(
        default=30.0,
        ge=1.0,
        le=3600.0,
        description="A fleet worker's lease on a source: a dead worker's sources are taken over after this long.",
    )
    coordination_url: str | None = Field(
        default=None,
        description="redis://HOST:PORT/DB (scrm-redis): the fleet's shared CRM rate budget.",
    )


class IdentityPolicy(StrEnum):
    never = "never"
    suggest = "suggest"
    verified = "verified"


class SourceConfig(_Section):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="Unique; names the checkpoint.")
    adapter: str
    enabled: bool = True
    settings: dict[str, Any] = Field(default_factory=dict)
    listening_filter: bool = Field(
        default=False,
        description="Drop, before anything is stored, messages that match no listening query and are not "
        "addressed to the company (for firehose sources).",
    )
    stream: bool = Field(
        default=False,
        description="In a fleet with [state] coordination_url: the reader publishes pages to a shared stream and "
        "every worker ingests and understands them, committing in order (for a source too heavy for one worker).",
    )


class CompanyConfig(_Section):
    """The company itself: its own accounts, per network (``when.addressed_to_us``, the listening filter)."""

    accounts: dict[str, list[str]] = Field(
        default_factory=dict,
        description="network -> the company's handles or account ids there, e.g. "
        '{ x = ["acmehelp"], mastodon = ["acmehelp@mastodon.social"], bluesky = ["acme.bsky.social"] }.',
    )

    @field_validator("accounts")
    @classmethod
    def _accounts_are_names(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        problems = []
        for network, names in value.items():
            if not _NETWORK_NAME.match(network):
                problems.append(f"{network!r} is not a network name (lower case, e.g. mastodon)")
            for i, name in enumerate(names):
                account = name.strip()
                if not account.lstrip("@") or any(c.isspace() for c in account):
                    problems.append(f"{network}[{i}] is not a handle or account id")
        if problems:
            raise ValueError("; ".join(problems))
        return {network: [name.strip() for name in names] for network, names in value.items()}


class CrmConfig(_Section):
    adapter: str = "localcrm"
    settings: dict[str, Any] = Field(default_factory=dict)


class ListeningQuery(_Section):
    name: str = Field(min_length=1)
    query: str = Field(min_length=1)


class ListeningConfig(_Section):
    queries: list[ListeningQuery] = Field(default_factory=list)


class IdentityConfig(_Section):
    default: IdentityPolicy = IdentityPolicy.never
    networks: dict[str, IdentityPolicy] = Field(default_factory=dict)

    def policy(self, network: str) -> IdentityPolicy:
        return self.networks.get(network, self.default)


class RuleWhen(_Section):
    """Conditions of a routing rule; all given ones must hold (an empty ``when`` always does)."""

    networks: list[str] | None = None
    labels_any: list[str] | None = None
    labels_all: list[str] | None = None
    keywords_any: list[str] | None = None
    queries_any: list[str] | None = None
    visibility: Visibility | None = None
    direction: Direction | None = None
    min_followers: int | None = Field(default=None, ge=0)
    sentiment_below: float | None = Field(default=None, ge=-1, le=1)
    sentiment_above: float | None = Field(default=None, ge=-1, le=1)
    languages: list[str] | None = Field(default=None, description="BCP-47 codes; 'en' also matches 'en-GB'.")
    business_hours: bool | None = Field(
        default=None, description="true: only within [routing.business_hours]; false: only outside them."
    )
    addressed_to_us: bool | None = Field(
        default=None,
        description="true: only messages that reply to, mention or are a direct message to one of "
        "[company] accounts; false: only the others.",
    )


class RoutingRule(_Section):
    name: str = Field(min_length=1)
    when: RuleWhen = Field(default_factory=RuleWhen)
    actions: list[Action] = Field(min_length=1)
    continue_: bool = Field(default=False, alias="continue", description="Go on to the next rules after this one.")


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class BusinessHours(_Section):
    """When the support team works, for rules with ``when.business_hours``."""

    timezone: str = Field(default="UTC", description="IANA name, e.g. Europe/Paris.")
    days: list[str] = Field(default_factory=lambda: list(_DAYS[:5]))
    start: str = Field(default="09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(default="17:00", pattern=r"^([01]\d|2[0-4]):[0-5]\d$")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)") from None
        return value

    @field_validator("days")
    @classmethod
    def _known_days(cls, value: list[str]) -> list[str]:
        bad = [d for d in value if d.lower() not in _DAYS]
        if bad:
            raise ValueError(f"unknown day(s) {', '.join(bad)}: use {', '.join(_DAYS)}")
        return [d.lower() for d in value]


class RoutingConfig(_Section):
    rules: list[RoutingRule] | None = Field(default=None, description="None: the built-in defaults.")
    business_hours: BusinessHours | None = None

    @model_validator(mode="after")
    def _hours_defined_when_used(self) -> RoutingConfig:
        for rule in self.rules or []:
            if rule.when.business_hours is not None and self.business_hours is None:
                raise ValueError(f"rule {rule.name!r} uses when.business_hours: define [routing.business_hours]")
        return self


class EngineConfig(_Section):
    batch_window_ms: int = Field(
        default=100, ge=0, le=60_000, description="Following: how long a partial batch waits for more records."
    )
    outbox_high_water: int = Field(default=5_000, ge=100, description="Ingest pauses above this outbox depth.")
    pages_in_flight: int = Field(default=4, ge=1, le=64, description="Bounded queue between source readers and ingest.")
    max_attempts: int = Field(default=8, ge=1, description="CRM write attempts before a record is dead-lettered.")
    retry_max_seconds: float = Field(default=300.0, gt=0, description="Longest back-off between retries.")


class RepliesConfig(_Section):
    enabled: bool = Field(default=True, description="Send replies (from `scrm reply` and agents in the CRM).")
    poll_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="How often a following run asks the CRM for agents' replies."
    )
    claim_seconds: float = Field(
        default=300.0,
        gt=0,
        description="A reply left 'sending' by a sender that died is sent again (same idempotency key) after this.",
    )


class LearningConfig(_Section):
    collect_corrections: bool = Field(
        default=True, description="Read agents' label corrections back from the CRM (when it can give them)."
    )
    poll_seconds: float = Field(
        default=300.0, gt=0, le=86_400, description="How often a following run asks the CRM for new corrections."
    )


class ServeConfig(_Section):
    host: str = Field(default="127.0.0.1", description="Address `scrm serve` listens on.")
    port: int = Field(default=8080, ge=0, le=65535, description="0: any free port (printed at start).")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576, description="Larger bodies get 413.")
    keep_days: float = Field(
        default=7.0, ge=0, description="Processed payloads are kept this long (replays are spotted)."
    )
    header_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="A client must send a complete request head within this (else 408)."
    )
    body_timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="A request body must arrive completely within this (else 408)."
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Open connections at most (lowered to fit the open-file limit); the slowest client gives "
        "way to a new one, and 503 answers when all are busy.",
    )


class Config(_Section):
    state: StateConfig = Field(default_factory=StateConfig)
    sources: list[SourceConfig] = Field(min_length=1)
    crm: CrmConfig = Field(default_factory=CrmConfig)
    company: CompanyConfig = Field(default_factory=CompanyConfig)
    listening: ListeningConfig = Field(default_factory=ListeningConfig)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    replies: RepliesConfig = Field(default_factory=RepliesConfig)
    learning: LearningConfig = Field(default_factory=LearningConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    # Where the file was; relative paths in settings are resolved against base_dir.
    path: Path = Field(default=Path("scrm.toml"), exclude=True)
    base_dir: Path = Field(default=Path("."), exclude=True)
    # With load_config(allow_missing_env=True): the ${VAR}s that were not set, by where they are.
    missing_env: list[str] = Field(default_factory=list, exclude=True)
