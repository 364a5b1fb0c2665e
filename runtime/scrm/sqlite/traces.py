"""Erasing one person from every table of the SQLite state store, and saying what stays.

The person's own rows go by key (profiles, messages, threads they started, identity links,
pending CRM writes and dead letters about their records: see
:mod:`.erase`). This
module finds them where no key points at them:

* **webhook inbox**: a stored payload that names them (a JSON value equal to one of their
  account ids, handles, display names, profile or message keys, or message ids) is
  deleted once the engine has processed it (it is only kept to spot replays). One not yet
  processed is kept, and the erase says so: run ``scrm run --once``, then erase again;
* **audit log**: entries about them keep their action and time, not the identifier (the
  subject becomes ``(erased)``, identifiers in the detail are replaced);
* **seen events**: the dedup keys of their profile updates hold their account id and go;
  message event keys hold only message ids and stay (they stop a backfill re-importing);
* **dead letters, replies, conversations of others, identity links**: input rejects that
  name them and replies to their messages go; a draft reply generated for them and the
  "latest inbound" pointer at their message are cleared; links that remember them as a
  profile's previous person forget it.

Last, every column of every table is searched for what identifies them; what is still
found is reported, table by table, with the reason (other people's messages that quote
them are theirs, and are kept).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["ErasedIdentity", "erase_traces", "identity_of"]

#: The engine's checkpoint of a source's webhook inbox (``scrm.engine.inbox.inbox_checkpoint``).
_INBOX_CHECKPOINT = "{source}@webhooks"
#: Identifiers shorter than this are not searched for in free text ("7" is in everything).
MIN_TEXT_NEEDLE = 4
ERASED = "(erased)"


@dataclass
class ErasedIdentity:
    """Everything that identifies one person in the store."""

    person_key: str
    profile_keys: set[str] = field(default_factory=set)
    account_ids: set[str] = field(default_factory=set)
    handles: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)
    message_keys: set[str] = field(default_factory=set)
    message_ids: set[str] = field(default_factory=set)
    thread_keys: set[str] = field(default_factory=set)

    def values(self) -> set[str]:
        """Exact values that mark a JSON payload as being about them."""
        handles = self.handles | {f"@{h}" for h in self.handles}
        return {
            self.person_key,
            *self.profile_keys,
            *self.account_ids,
            *handles,
            *self.names,
            *self.message_keys,
            *self.message_ids,
        } - {""}

    def needles(self) -> list[str]:
        """What to look for in free text, longest first (who they are, not each message key:
        those are matched exactly where they are keys)."""
        found = {self.person_key, *self.profile_keys, *self.account_ids, *self.handles, *self.names}
        return sorted((n for n in found if len(n) >= MIN_TEXT_NEEDLE), key=len, reverse=True)


def identity_of(
    conn: sqlite3.Connection, person_key: str, profiles: list[tuple[str, Any]], messages: list[str], threads: list[str]
) -> ErasedIdentity:
    """``profiles``: (key, stored JSON) of the person's profiles."""
    who = ErasedIdentity(person_key, message_keys=set(messages), thread_keys=set(threads))
    who.profile_keys = {key for key, _ in profiles}
    for key, data in profiles:
        _, _, account = key.partition(":")
        who.account_ids.add(account)
        try:
            profile = orjson.loads(data)
        except orjson.JSONDecodeError:
            continue
        if isinstance(profile, dict):
            who.account_ids.add(str(profile.get("account_id") or account))
            for name, bucket in (("handle", who.handles), ("display_name", who.names)):
                value = profile.get(name)
                if isinstance(value, str) and value.strip():
                    bucket.add(value.strip().lstrip("@"))
    if not profiles and ":" in person_key:  # a person key with no profile left: still its account id
        who.account_ids.add(person_key.partition(":")[2])
    who.message_ids = {key.partition(":")[2] for key in messages}
    who.account_ids.discard("")
    return who


def _text_pattern(needles: list[str]) -> re.Pattern[str] | None:
    if not needles:
        return None
    return re.compile(r"(?<![\w@])@?(?:" + "|".join(map(re.escape, needles)) + r")(?![\w])", re.IGNORECASE)


def _json_values(value: Any) -> Iterator[str]:
    """Every scalar in a JSON document, as text (iteratively: payloads may be deep)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
            stack.extend(item.keys())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            yield item.strip()
        elif isinstance(item, int | float) and not isinstance(item, bool):
            yield str(item)


def _payload_names(body: bytes, values: set[str], pattern: re.Pattern[str] | None) -> bool:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return pattern is not None and pattern.search(body.decode("utf-8", "replace")) is not None
    lowered = {v.lower() for v in values}
    return any(v.lower() in lowered or v.lstrip("@").lower() in lowered for v in _json_values(document))


#: A connection's tables and their columns.
Tables = Callable[[Any], Iterable[tuple[str, list[str]]]]


def erase_traces(
    conn: sqlite3.Connection, who: ErasedIdentity, tables: Tables | None = None
) -> tuple[dict[str, int], list[str]]:
    """Remove the person's traces that no key points at; (rows removed or scrubbed per
    table, what could not be removed and why). Runs inside the caller's transaction.

    ``conn``: anything with sqlite3's ``execute``/``executemany`` and ``?`` parameters (the
    PostgreSQL store passes an adapter); ``tables``: its tables and their columns (default:
    SQLite's catalogue)."""
    removed: dict[str, int] = {}
    kept: list[str] = []
    pattern = _text_pattern(who.needles())
    values = who.values()

    # -- the webhook inbox
    processed = {
        source.removesuffix("@webhooks"): int(cursor or 0)
        for source, cursor in conn.execute("SELECT source, cursor FROM checkpoints WHERE source LIKE '%@webhooks'")
        if str(cursor or "0").isdigit()
    }
    gone, waiting = [], 0
    for id_, source, body in conn.execute("SELECT id, source, body FROM webhook_inbox"):
        if _payload_names(bytes(body), values, pattern):
            if id_ <= processed.get(source, 0):
                gone.append((id_,))
            else:
                waiting += 1
    conn.executemany("DELETE FROM webhook_inbox WHERE id = ?", gone)
    removed["webhook_inbox"] = len(gone)
    if waiting:
        kept.append(
            f"webhook_inbox: {waiting} payload(s) that name them are not synced yet (they may carry other "
            "people's messages too); run `scrm run --once`, then this erase again"
        )

    # -- dedup keys of their profile updates (p:<profile key>:<version>)
    count = 0
    for key in who.profile_keys:
        prefix = f"p:{key}:"
        count += conn.execute(
            "DELETE FROM seen_events WHERE key >= ? AND key < ?", (prefix, prefix[:-1] + chr(ord(":") + 1))
        ).rowcount
    removed["seen_events"] = count

    # -- replies to them or in their threads
    count = 0
    for id_, conversation, parent in list(conn.execute("SELECT id, conversation_key, in_reply_to FROM replies")):
        network = conversation.partition(":")[0]
        if conversation in who.thread_keys or f"{network}:{parent}" in who.message_keys:
            count += conn.execute("DELETE FROM replies WHERE id = ?", (id_,)).rowcount
    removed["replies"] = count

    # -- input rejects that name them (CRM writes about their records went by key already)
    count = 0
    if pattern is not None:
        for id_, reason, locator, payload in list(
            conn.execute("SELECT id, reason, locator, payload FROM dead_letters WHERE op IS NULL")
        ):
            if any(pattern.search(text or "") for text in (reason, locator, payload)):
                count += conn.execute("DELETE FROM dead_letters WHERE id = ?", (id_,)).rowcount
    removed["dead_letters.inputs"] = count

    # -- other people's threads: scrm's own draft for them, the pointer at their message
    count = 0
    for key, data in list(conn.execute("SELECT key, data FROM conversations")):
        thread = orjson.loads(data)
        changed = False
        draft = thread.get("draft_reply")
        if pattern is not None and isinstance(draft, str) and pattern.search(draft):
            thread["draft_reply"], changed = None, True
        latest = thread.get("last_inbound_id")
        if latest is not None and f"{thread.get('network')}:{latest}" in who.message_keys:
            thread["last_inbound_id"], changed = None, True
        if changed:
            conn.execute("UPDATE conversations SET data = ? WHERE key = ?", (orjson.dumps(thread).decode(), key))
            count += 1
    removed["conversations.drafts"] = count

    # -- identity links that remember them as a profile's previous person
    removed["identity_links.history"] = conn.execute(
        "UPDATE identity_links SET previous_person_key = NULL, evidence = ? WHERE previous_person_key = ?",
        (ERASED, who.person_key),
    ).rowcount

    # -- the audit log: keep the action and the time, not who
    count = 0
    keys = {who.person_key, *who.profile_keys, *who.message_keys, *who.thread_keys}
    for id_, subject, detail in list(conn.execute("SELECT id, subject, detail FROM audit_log")):
        hit = subject in keys or (pattern is not None and (pattern.search(subject) or pattern.search(detail)))
        if hit:
            new_subject = ERASED if subject in keys or (pattern and pattern.search(subject)) else subject
            new_detail = pattern.sub(ERASED, detail) if pattern is not None else detail
            conn.execute("UPDATE audit_log SET subject = ?, detail = ? WHERE id = ?", (new_subject, new_detail, id_))
            count += 1
    removed["audit_log.scrubbed"] = count

    kept += _leftovers(conn, who, tables or _columns)
    return {table: n for table, n in removed.items() if n}, kept


def _columns(conn: sqlite3.Connection) -> Iterable[tuple[str, list[str]]]:
    tables = [
        name
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        if name != "schema_version"
    ]
    for table in tables:
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
        yield table, columns


def _leftovers(conn: sqlite3.Connection, who: ErasedIdentity, tables: Tables) -> list[str]:
    """Rows of any table (those a newer scrm or a plugin added too) that still mention them."""
    needles = who.needles()
    if not needles:
        return []
    found: list[str] = []
    for table, columns in tables(conn):
        where = " OR ".join(f"instr(lower(CAST({column} AS TEXT)), ?) > 0" for column in columns for _ in needles)
        args = [needle.lower() for _ in columns for needle in needles]
        (rows,) = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}", args).fetchone()
        if rows:
            found.append(
                f"{table}: {rows} row(s) still contain text that matches them (their name or handle in other "
                "people's messages or subjects that quote them, which are those people's, or a short value that "
                "also occurs elsewhere); kept"
            )
    return found
