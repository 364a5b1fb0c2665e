"""The listening filter: for firehose sources, keep only what the company listens for.

A source with ``listening_filter = true`` hands ingest only

* messages that match a listening query (through ``scrm_listening_match``, as
  understanding would), are addressed to the company (``message.addressed_to_us``) or
  come from it (outbound, or by one of ``[company] accounts``): its side of conversations;
* edits of messages already stored (or kept earlier in the page); an edit of a message
  never stored is judged like a new message, since it may match now;
* deletions of messages already stored (or kept earlier in the page): a deletion of a
  message never stored has nothing to delete, and remembering it would store a row per
  deletion on the firehose;
* profile updates of profiles already stored (or authors of kept messages).

Everything else is dropped before the state store sees it: no seen key, no message row,
no profile, nothing for the CRM. ``IngestCounts.filtered`` counts it. Matching here reads
the text as delivered (before ``scrm_redact_text``) and never stores the result; kept
messages are understood again, in full, by ingest. A message the matcher fails on is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scrm.hooks import Hooks, Later
from scrm_core.config import Config
from scrm_core.errors import FatalError
from scrm_core.models import Direction, Message, MessageCreated, MessageDeleted, MessageEdited, ProfileUpdated

from .addressing import CompanyAccounts
from .inbox import inbox_checkpoint
from .lookups import Lookups

AnyEvent = MessageCreated | MessageEdited | MessageDeleted | ProfileUpdated


class ListeningFilter:
    def __init__(self, config: Config, hooks: Hooks, store: Lookups | None, accounts: CompanyAccounts) -> None:
        # getattr: a Config built with model_construct to run understanding alone has no sources.
        filtered = [s.name for s in getattr(config, "sources", ()) if s.listening_filter]
        # A webhook source's stored payloads are read under their own checkpoint name.
        self.sources = frozenset([*filtered, *map(inbox_checkpoint, filtered)])
        self.accounts = accounts
        self.queries = {q.name: q.query for q in config.listening.queries}
        self.hooks = hooks
        self.store = store
        # A query might test the language: detect it (for the match only) where the network gave none.
        self.needs_language = any("lang" in q.query for q in config.listening.queries)

    def applies(self, source: str) -> bool:
        return source in self.sources

    async def keep(self, events: Sequence[Any]) -> list[Any]:
        """The events of a page worth storing (addressing is already marked on the messages)."""
        if self.queries and not self.hooks.has("scrm_listening_match"):
            raise FatalError(
                "a source has listening_filter = true but no plugin matches listening queries "
                "(scrm_listening_match): install or enable scrm-listening, or turn the filter off"
            )
        known_messages, known_profiles = await self._known(events)
        kept: list[Any] = []
        for event in events:
            if isinstance(event, MessageCreated | MessageEdited):
                message = event.message
                if (isinstance(event, MessageEdited) and message.key in known_messages) or await self._wanted(message):
                    kept.append(event)
                    known_messages.add(message.key)
                    known_profiles.add(message.author.key)
            elif isinstance(event, MessageDeleted):
                if event.message_key in known_messages:
                    kept.append(event)
            elif event.profile.key in known_profiles:
                kept.append(event)
        return kept

    async def _wanted(self, message: Message) -> bool:
        if message.addressed_to_us or message.direction is Direction.outbound or self.accounts.owns(message.author):
            return True
        if not self.queries:
            return False
        detected = False
        hooks = self.hooks
        if message.language is None and self.needs_language and "scrm_detect_language" in hooks.implemented:
            language = hooks.detect_language_now(message.text)  # no coroutine while plugins are sync
            message.language, detected = await language if isinstance(language, Later) else language, True
        failures = hooks.failures.total()
        try:
            found = hooks.listening_match_now(message, self.queries)
            if isinstance(found, Later):
                found = await found
        finally:
            if detected:
                message.language = None  # understanding detects it again, after redaction
        # A matcher that failed on this message cannot say it is unwanted: keep it (logged and counted).
        return bool(found) or hooks.failures.total() != failures

    async def _known(self, events: Sequence[Any]) -> tuple[set[str], set[str]]:
        """Keys of the page's messages and profiles the state store already holds."""
        message_keys = {e.message_key for e in events if isinstance(e, MessageDeleted)}
        message_keys |= {e.message.key for e in events if isinstance(e, MessageEdited)}
        profile_keys = {e.profile.key for e in events if isinstance(e, ProfileUpdated)}
        if self.store is None:
            return set(), set()
        messages = set(await self.store.messages(sorted(message_keys))) if message_keys else set()
        profiles = set(await self.store.profiles(sorted(profile_keys))) if profile_keys else set()
        return messages, profiles
