"""Reading the one TOML configuration file (:class:`scrm_core.config.Config`, re-exported here).

Every mistake is reported at once with the file and the key (``scrm.toml:
sources[1].settings.paths: Field required``). Secrets come from the environment as
``${NAME}`` (write ``$${`` for a literal ``${``); error messages never echo a value, only
where it is.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import TypeAdapter, ValidationError

from scrm_core import config as _models
from scrm_core.adapters import CrmAdapter, NetworkAdapter
from scrm_core.config import *  # noqa: F403  (the models, re-exported for the runtime's modules)
from scrm_core.config import PRIORITIES, Config, CrmConfig
from scrm_core.errors import ConfigError
from scrm_core.redaction import register_secret, register_settings

__all__ = ["UNSET", "load_config"]
__all__ += _models.__all__

_ENV_REF = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


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
