"""Helpers for end-to-end tests: a config on disk, a run of the engine, the CRM's final state."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from pydantic import TypeAdapter, ValidationError
from scrm.config import load_config
from scrm.engine import Engine, RunStats
from scrm.plugins import PluginHost

from scrm_core.config import Config
from scrm_core.models import Event, MessageCreated

# Routing that never ignores a message, so every message must reach the CRM.
LOG_ALL_RULES = """
[[routing.rules]]
name = "complaints"
when = { labels_any = ["intent:complaint"] }
actions = [{ kind = "case" }, { kind = "priority", value = "high" }]

[[routing.rules]]
name = "buyers"
when = { labels_any = ["intent:purchase"] }
actions = [{ kind = "lead" }]

[[routing.rules]]
name = "everything"
actions = [{ kind = "log" }]
"""


def toml_inline(values: dict[str, object]) -> str:
    """A TOML inline table (strings, numbers, booleans): JSON's escapes are TOML's."""
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in values.items()) + " }"


def write_config(
    folder: Path,
    data: list[Path],
    *,
    crm: str = "localcrm",
    crm_settings: dict[str, object] | None = None,
    extra: str = LOG_ALL_RULES,
    engine: str = "",
) -> Path:
    sources = "".join(
        f'\n[[sources]]\nname = "src-{i}"\nadapter = "replay"\nsettings = {{ paths = ["{p}"], page_size = 200 }}\n'
        for i, p in enumerate(data)
    )
    settings = toml_inline(crm_settings if crm_settings is not None else {"path": "crm.db"})
    text = (
        f'[state]\nurl = "sqlite:///state.db"\n\n[crm]\nadapter = "{crm}"\nsettings = {settings}\n'
        f"{sources}\n[engine]\nbatch_window_ms = 0\nretry_max_seconds = 0.01\n{engine}\n{extra}"
    )
    path = folder / "scrm.toml"
    path.write_text(text)
    return path


def load(path: Path, host: PluginHost) -> Config:
    return load_config(path, env={}, networks=host.networks, crms=host.crms)


def run_once(path: Path, host: PluginHost) -> RunStats:
    return asyncio.run(Engine(load(path, host), host).run(follow=False, handle_signals=False))


@dataclass
class CrmState:
    messages: dict[str, tuple[str, bool]]  # external key -> (text, deleted)
    message_rows: int
    profiles: set[str]
    profile_rows: int
    contacts: int
    cases: int
    leads: int


def crm_state(db: Path) -> CrmState:
    """Read the embedded CRM's tables directly (an independent check of what the adapter wrote)."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT external_key, text, deleted FROM messages").fetchall()
        profiles = [r[0] for r in con.execute("SELECT external_key FROM profiles")]
        count = lambda table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: E731
        return CrmState(
            messages={k: (t or "", bool(d)) for k, t, d in rows},
            message_rows=len(rows),
            profiles=set(profiles),
            profile_rows=len(profiles),
            contacts=count("contacts"),
            cases=count("cases"),
            leads=count("leads"),
        )
    finally:
        con.close()


def expected_messages(files: list[Path]) -> dict[str, tuple[str, bool]]:
    """What the CRM must hold for each message of the recordings: final text, or redacted."""
    from scrm_replay.demo import expected_state

    state = expected_state(files)
    return {f"scrm:{k}": ("", True) if text is None else (text, False) for k, text in state.items()}


def expected_profiles(files: list[Path]) -> set[str]:
    """External keys of every author of a well-formed message.created line."""
    events: TypeAdapter[Event] = TypeAdapter(Event)
    keys = set()
    for f in files:
        for line in f.read_bytes().splitlines():
            try:
                event = events.validate_json(line)
            except ValidationError:
                continue
            if isinstance(event, MessageCreated):
                keys.add(f"scrm:{event.message.author.key}")
    return keys
