"""Finding the note that holds a message, without a unique-value property.

HubSpot offers unique-value properties (and so upsert by ``idProperty``) on contacts,
companies, deals, tickets and custom objects, not on notes
(https://developers.hubspot.com/changelog/unique-properties-for-contacts). A message's
external key is therefore an ordinary note property, and "a retry after a timeout never
creates a second note" is kept another way:

1. a new note is created together with its association to the contact, in ONE request
   (batch create with ``associations``: https://developers.hubspot.com/docs/api/crm/notes),
   so a note that exists is always reachable from its contact;
2. before creating, the notes associated with the message's contact are listed (v4
   associations batch read, read from the CRM's own store, not the search index, so it
   sees a note created a moment ago) and their keys read; a key found there is updated,
   never created again;
3. an update that names no contact (an edit, a redaction) finds its note by key through
   the search API: edits come long after the note was created and indexed;
4. an outbound message may be an agent's reply, a note the agent wrote on the ticket and
   ``HubSpotCrm.reply_sent`` gave the message's key: the sync-back names the sender's
   contact, not the ticket's, so an outbound message not found among its contact's notes
   is looked for among its ticket's notes too (association read, no search index lag).

What this process created or found is remembered (bounded), so the steady state costs one
association read per batch of new messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from scrm_core.errors import RetryableError

from .api import HubSpotApi, error_category
from .keys import LruMap, chunks
from .schema import CONTACTS, NOTES, TICKETS

__all__ = ["NoteIndex"]


class NoteIndex:
    """Note ids by message key (and keys by note id, to skip notes already seen)."""

    def __init__(self, api: HubSpotApi, key_property: str, max_size: int = 100_000) -> None:
        self.api = api
        self.key_property = key_property
        self._ids: LruMap[str, str] = LruMap(max_size)
        self._keys: LruMap[str, str] = LruMap(max_size)  # note id -> key ("" for notes scrm did not write)

    def remember(self, key: str, note_id: str) -> None:
        self._ids.put(key, note_id)
        self._keys.put(note_id, key)

    def known(self, key: str) -> str | None:
        """The remembered note id of ``key`` (no request), or None."""
        return self._ids.get(key)

    def forget(self, key: str) -> None:
        self._ids.pop(key)

    async def find_among_notes_of(self, obj: str, record_id: str, key: str) -> str | None:
        """The note holding ``key`` among one record's notes (read directly: search lags)."""
        if self._ids.get(key) is None:
            await self._learn_notes_of(obj, [record_id])
        return self._ids.get(key)

    async def existing(
        self, keys: Iterable[str], contacts: Mapping[str, str], tickets: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """Note ids of the messages among ``keys`` that HubSpot already holds.

        ``contacts`` maps the key of each message that is to be created to its contact's
        record id; those are looked for among the contact's notes, the others by search.
        ``tickets`` maps keys of outbound messages to their ticket's id: a key not found
        otherwise is looked for among that ticket's notes (an agent's reply lives there).
        """
        found: dict[str, str] = {}
        unknown: list[str] = []
        for key in keys:
            note_id = self._ids.get(key)
            if note_id is None:
                unknown.append(key)
            else:
                found[key] = note_id
        by_contact = [k for k in unknown if k in contacts]
        by_search = [k for k in unknown if k not in contacts]
        if by_contact:
            await self._learn_notes_of(CONTACTS, sorted(set(contacts[k] for k in by_contact)))
        if by_search:
            await self._search(by_search)
        on_tickets = [k for k in unknown if k in (tickets or {}) and self._ids.get(k) is None]
        if on_tickets and tickets:
            await self._learn_notes_of(TICKETS, sorted(set(tickets[k] for k in on_tickets)))
        for key in unknown:
            note_id = self._ids.get(key)
            if note_id is not None:
                found[key] = note_id
        return found

    async def _learn_notes_of(self, obj: str, record_ids: list[str]) -> None:
        """Read the keys of the notes associated with these contacts or tickets."""
        note_ids: list[str] = []
        what = f"read the notes of {obj}"
        for part in chunks(record_ids):
            body = {"inputs": [{"id": c} for c in part]}
            reply = await self.api.call(what, self.api.associations.get_page_with_http_info, obj, NOTES, body)
            self._raise_unless_ok(reply.ok, reply.status, reply.body, what)
            for result in reply.body.get("results") or []:
                note_ids += [str(t["toObjectId"]) for t in result.get("to") or []]
        unseen = [n for n in dict.fromkeys(note_ids) if self._keys.get(n) is None]
        for part in chunks(unseen):
            read: dict[str, Any] = {"inputs": [{"id": n} for n in part], "properties": [self.key_property]}
            reply = await self.api.call("read notes", self.api.objects.read_with_http_info, NOTES, read)
            self._raise_unless_ok(reply.ok, reply.status, reply.body, "read notes")
            for result in reply.body.get("results") or []:
                key = (result.get("properties") or {}).get(self.key_property) or ""
                self._keys.put(str(result["id"]), key)
                if key:
                    self._ids.put(key, str(result["id"]))

    async def _search(self, keys: list[str]) -> None:
        for part in chunks(keys):
            body: dict[str, Any] = {
                "filterGroups": [{"filters": [{"propertyName": self.key_property, "operator": "IN", "values": part}]}],
                "properties": [self.key_property],
                "limit": len(part),
            }
            reply = await self.api.search("search notes by key", NOTES, body)
            self._raise_unless_ok(reply.ok, reply.status, reply.body, "search notes")
            for result in reply.body.get("results") or []:
                key = (result.get("properties") or {}).get(self.key_property)
                if key:
                    self.remember(key, str(result["id"]))

    @staticmethod
    def _raise_unless_ok(ok: bool, status: int, body: object, what: str) -> None:
        if not ok:
            category, message = error_category(body)
            raise RetryableError(f"HubSpot refused to {what} ({status} {category}: {message})")
