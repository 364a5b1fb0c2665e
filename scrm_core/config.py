"""The one TOML configuration file: sources, CRM, listening, routing, identity, state.

Validated once, at start, and every mistake is reported at once with the file and the key
(``scrm.toml: sources[1].settings.paths: Field required``). Secrets come from the
environment as ``${NAME}`` (write ``$${`` for a literal ``${``); adapters type them as
``SecretStr``, and error messages never echo a value, only where it is.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from .adapters import CrmAdapter, NetworkAdapter
from .errors import ConfigError
from .models import Action, Direction, Visibility
from .redaction import register_secret, register_settings

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
    "load_config",
]

#: The values of a routing rule's ``priority`` action, lowest first.
PRIORITIES = ("low", "normal", "high", "urgent")

_ENV_REF = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
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
    outbox_high_water: int = Field(default=20_000, ge=100, description="Ingest pauses above this outbox depth.")
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


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


#: What an unset ${VAR} becomes when missing variables are allowed: a value that passes as a
#: secret, so the rest of the file is still checked (no command that talks to a service runs).
UNSET = "<unset:{name}>"


def _expand_env(
    value: Any, env: Mapping[str, str], loc: tuple[int | str, ...], problems: list[str], unset: list[str] | None
) -> Any:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(0) == "$${":
                return "${"
            name = m.group(1)
            if name not in env:
                message = f"{_where(loc)}: environment variable {name} is not set"
                if unset is None:
                    problems.append(message)
                    return ""
                unset.append(message)
                return UNSET.format(name=name)
            return env[name]

        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, env, (*loc, k), problems, unset) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, env, (*loc, i), problems, unset) for i, v in enumerate(value)]
    return value


def _validation_problems(exc: ValidationError, prefix: tuple[int | str, ...] = ()) -> list[str]:
    # Only the location and pydantic's message: never the input, which may be a secret.
    return [f"{_where((*prefix, *err['loc']))}: {err['msg']}" for err in exc.errors(include_input=False)]


def load_config(
    path: str | Path,
    *,
    env: Mapping[str, str] | None = None,
    networks: Mapping[str, type[NetworkAdapter]] | None = None,
    crms: Mapping[str, type[CrmAdapter]] | None = None,
    allow_missing_env: bool = False,
    check: Callable[[Config], list[str]] | None = None,
) -> Config:
    """Read and validate a config file; raise :class:`ConfigError` listing every problem.

    With ``networks``/``crms`` (the plugin host's registries) the adapter names and each
    adapter's own settings are checked too, and their secrets registered with the redaction
    layer. With ``allow_missing_env`` (commands that only read local state, and ``scrm
    config check``) an unset ``${VAR}`` is not a problem: it is listed in
    ``Config.missing_env``, and a setting it is part of is not judged. ``check`` (the
    plugins' ``scrm_check_config``, e.g. listening query syntax) runs on the sections that
    are valid even when others are not: every problem comes in one pass.
    """
    path = Path(path)
    shown = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(shown, ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(shown, [f"cannot read the file: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(shown, [f"not valid TOML: {exc}"]) from None

    problems: list[str] = []
    unset: list[str] | None = [] if allow_missing_env else None
    data = _expand_env(raw, os.environ if env is None else env, (), problems, unset)
    config: Config | None = None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems += _validation_problems(exc)
    # Everything below looks at the raw data (or at the sections that are valid), so its
    # mistakes are reported even when another part of the file is wrong too.
    problems += _adapter_section_problems(data, networks, crms)
    problems += _semantic_problems(data)
    if check is not None:
        problems += check(config if config is not None else _valid_sections(data))
    if unset:  # a setting made of an unset variable cannot be judged here
        places = tuple(m.partition(": ")[0] + ":" for m in unset)
        problems = [p for p in problems if not p.startswith(places)]
    if problems:
        raise ConfigError(shown, problems)
    assert config is not None
    _register_url_password(config.state.url)
    return config.model_copy(update={"path": path, "base_dir": path.resolve().parent, "missing_env": unset or []})


def _valid_sections(data: Any) -> Config:
    """A Config of the sections that validate on their own (defaults for the others), for
    checks that must run even when the file has mistakes elsewhere."""
    sections: dict[str, Any] = {}
    if isinstance(data, dict):
        for name, field in Config.model_fields.items():
            if name not in data or field.exclude or field.annotation is None:
                continue
            try:
                sections[name] = TypeAdapter(field.annotation).validate_python(data[name])
            except ValidationError:
                continue
    sections.setdefault("sources", [])
    return Config.model_construct(**sections)


def _register_url_password(url: str) -> None:
    password = urlsplit(url).password if "://" in url else None
    register_secret(password)


def _adapter_section_problems(
    data: Any,
    networks: Mapping[str, type[NetworkAdapter]] | None,
    crms: Mapping[str, type[CrmAdapter]] | None,
) -> list[str]:
    if not isinstance(data, dict):
        return []
    problems: list[str] = []
    sources = data.get("sources")
    if networks is not None and isinstance(sources, list):
        for i, source in enumerate(sources):
            if isinstance(source, dict) and isinstance(source.get("adapter"), str):
                problems += _adapter_problems(
                    ("sources", i), source["adapter"], source.get("settings", {}), networks, "network"
                )
    crm = data.get("crm", {})
    if crms is not None and isinstance(crm, dict):
        problems += _adapter_problems(
            ("crm",), crm.get("adapter", CrmConfig().adapter), crm.get("settings", {}), crms, "CRM"
        )
    return problems


def _items(data: Any, *keys: str) -> list[tuple[int, dict[str, Any]]]:
    """(index, table) of the list at ``data[keys...]``, skipping what is not a table."""
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return [(i, item) for i, item in enumerate(data) if isinstance(item, dict)] if isinstance(data, list) else []


def _semantic_problems(data: Any) -> list[str]:
    """What the models cannot see alone: names that must be unique or must exist, values
    that must be among a known set. Read from the raw data, so they show with the rest."""
    problems: list[str] = []
    seen: set[str] = set()
    for i, source in _items(data, "sources"):
        name = source.get("name")
        if isinstance(name, str):
            if name in seen:
                problems.append(f"sources[{i}].name: {name!r} is used by an earlier source; names must be unique")
            seen.add(name)
    names: list[str] = []
    for i, query in _items(data, "listening", "queries"):
        name = query.get("name")
        if isinstance(name, str):
            if name in names:
                problems.append(f"listening.queries[{i}].name: {name!r} is used by an earlier query")
            names.append(name)
    company = data.get("company") if isinstance(data, dict) else None
    accounts = company.get("accounts") if isinstance(company, dict) else None
    for i, source in _items(data, "sources"):
        if source.get("listening_filter") is True and not names and not accounts:
            problems.append(
                f"sources[{i}].listening_filter: with no [[listening.queries]] and no [company] accounts "
                "it would drop every message but direct ones"
            )
    for i, rule in _items(data, "routing", "rules"):
        when = rule.get("when")
        wanted = when.get("queries_any") if isinstance(when, dict) else None
        if isinstance(wanted, list):
            unknown = sorted({q for q in wanted if isinstance(q, str)} - set(names))
            if unknown:
                known = ", ".join(map(repr, names)) or "none are defined"
                problems.append(
                    f"routing.rules[{i}].when.queries_any: no listening query named "
                    f"{', '.join(map(repr, unknown))} (known: {known})"
                )
        actions = rule.get("actions")
        for j, action in enumerate(actions if isinstance(actions, list) else []):
            if not isinstance(action, dict) or action.get("kind") != "priority":
                continue
            value = action.get("value")
            if isinstance(value, str) and value and value not in PRIORITIES:
                problems.append(
                    f"routing.rules[{i}].actions[{j}].value: unknown priority {value!r} "
                    f"(use one of: {', '.join(PRIORITIES)})"
                )
    return problems


def _adapter_problems(
    loc: tuple[int | str, ...],
    adapter: str,
    settings: Any,
    registry: Mapping[str, type[NetworkAdapter]] | Mapping[str, type[CrmAdapter]],
    kind: str,
) -> list[str]:
    if not isinstance(settings, dict):
        return []  # the model's own error says what is wrong with it
    cls = registry.get(adapter)
    if cls is None:
        known = ", ".join(sorted(registry)) or "none installed"
        return [f"{_where((*loc, 'adapter'))}: no {kind} adapter named {adapter!r} (installed: {known})"]
    try:
        validated = cls.Settings.model_validate(settings)
    except ValidationError as exc:
        return _validation_problems(exc, (*loc, "settings"))
    register_settings(validated)  # from now on its secrets are never shown
    return []
