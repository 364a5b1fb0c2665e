"""Agents' intent corrections, read back from the ``scrm_intent_correction`` property.

An agent who finds scrm's intent label wrong picks the right one (``complaint``,
``question``, ``purchase``, ``praise``, ``spam``, ``none``; an option the admin adds becomes a
class of the deployment's model) on the note of a message or on the ticket. Per object,
:meth:`CorrectionReader.read` searches (``POST /crm/v3/objects/{notes|tickets}/search``)::

    filters: scrm_intent_correction HAS_PROPERTY, hs_lastmodifieddate GTE <since>
    sorts:   hs_lastmodifieddate ASCENDING          (one sort: all HubSpot allows)
    limit:   100, paging on with ``after``

within the search API's limits (https://developers.hubspot.com/docs/api/crm/search,
"Limitations": at most 200 results a page, 10,000 per query, a few searches a second, paced
by :meth:`~.api.HubSpotApi.search`).

Why the cursor re-reads a window instead of resuming strictly after the last record:
search reads an index that lags the writes (a change "may take a few moments" to show),
so a correction can appear after one made later; and records modified in the same
millisecond have no order between them. The cursor therefore keeps, per object, the
newest ``hs_lastmodifieddate`` handed out and what was handed out within
:data:`OVERLAP_MS` before it (record id -> time and label), searches again from there and
hands out only what changed. A record corrected again has a later time (or another label)
and comes back; scrm keeps the newest label per message. ``hs_lastmodifieddate`` also moves
when scrm itself updates a corrected record (a ticket's status, an edited message): the
correction then comes back unchanged, which is harmless.

A correction names its message as ``<network>:<message id>`` (a note's ``scrm_network`` and
``scrm_message_id``; a ticket's ``scrm_conversation_key``, the key of its first message).
Its text is the note's body as plain text; for a ticket, its first message's note body
if HubSpot has that note, else the ticket's ``subject``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import Field

from scrm_core import JsonCursor, LabelCorrection, OverlapWindow

from .api import HubSpotApi, error_category
from .records import plain_text
from .schema import INTENT_CORRECTION, NOTES, TICKETS

__all__ = ["CorrectionCursor", "CorrectionReader", "Position"]

#: Objects agents correct, messages first.
CORRECTED = (NOTES, TICKETS)
MODIFIED = "hs_lastmodifieddate"
PAGE = 100
#: What a search may return in all, however it is paged.
SEARCH_TOTAL = 10_000
#: How far behind the newest modification handed out each read looks again (search index lag).
OVERLAP_MS = 600_000
#: Records remembered per object within the window; beyond it the oldest stop being re-read.
MAX_SEEN = 1_000
_KEY_PREFIX = "scrm:"

Definitions = dict[str, dict[str, dict[str, Any]]]


#: What each object's corrections were read up to (the cursor keeps one per object).
Position = OverlapWindow


class CorrectionCursor(JsonCursor):
    """``hsl1:`` + JSON: a :class:`Position` per object type."""

    prefix: ClassVar[str] = "hsl1:"
    positions: dict[str, Position] = Field(default_factory=dict)


class _Refused(Exception):
    """HubSpot refused a search for good (a 4xx other than a rate limit or an auth error)."""


@dataclass(frozen=True)
class _Row:
    id: str
    properties: dict[str, Any]
    modified: datetime
    label: str

    @property
    def modified_ms(self) -> int:
        return int(self.modified.timestamp() * 1000)


def _parse_time(value: Any) -> datetime | None:
    """``hs_lastmodifieddate`` as search returns it: ISO 8601 (or epoch ms)."""
    if value is None:
        return None
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class CorrectionReader:
    """Reads corrections from notes and tickets for ``HubSpotCrm.label_corrections``."""

    def __init__(
        self,
        api: HubSpotApi,
        definitions: Callable[[], Awaitable[Definitions]],
        key_property: str,
        logger: logging.Logger,
    ) -> None:
        self.api = api
        self._definitions = definitions
        self.key = key_property
        self.logger = logger
        self._off: set[str] = set()  # object types whose corrections cannot be read this run

    async def read(self, cursor: str | None) -> tuple[list[LabelCorrection], str | None]:
        state = CorrectionCursor.parse(cursor)
        definitions = await self._definitions()
        positions = dict(state.positions)
        found: list[LabelCorrection] = []
        moved = False
        for obj in CORRECTED:
            if obj in self._off:
                continue
            if INTENT_CORRECTION not in definitions.get(obj, {}):
                self._turn_off(obj, f"they have no property {INTENT_CORRECTION} (run `scrm hubspot setup`)")
                continue
            position = positions.get(obj, Position())
            try:
                while rows := await self._fresh(obj, position):
                    position = position.advanced(
                        [(r.id, r.modified_ms, r.label) for r in rows], overlap_ms=OVERLAP_MS, max_seen=MAX_SEEN
                    )
                    positions[obj] = position
                    moved = True
                    corrections = await self._corrections(obj, rows)
                    found += corrections
                    if corrections:
                        break  # one page per object and call; rows without a message key read on
            except _Refused as refused:
                self._turn_off(obj, str(refused))
        if not moved:
            return [], cursor
        return found, CorrectionCursor(positions=positions).dump()

    def _turn_off(self, obj: str, why: str) -> None:
        """Stop reading corrections on ``obj`` until the next start (the sync goes on)."""
        self._off.add(obj)
        self.logger.warning("hubspot: agents' intent corrections on %s are not read: %s", obj, why)

    def _wanted(self, obj: str) -> list[str]:
        common = [self.key, INTENT_CORRECTION, MODIFIED]
        if obj == TICKETS:
            return [*common, "subject", "scrm_conversation_key"]
        return [*common, "hs_note_body", "scrm_network", "scrm_message_id", "scrm_language"]

    async def _search(self, what: str, obj: str, body: dict[str, Any]) -> dict[str, Any]:
        """The answer's body; a refusal that will not pass by itself (a 4xx: the property was
        deleted meanwhile, ...) is :class:`_Refused` (rate limits, 5xx and auth are raised by
        :meth:`~.api.HubSpotApi.call` as retryable or fatal)."""
        reply = await self.api.search(what, obj, body)
        if not reply.ok or not isinstance(reply.body, dict):
            category, message = error_category(reply.body)
            raise _Refused(f"HubSpot refused to {what} ({reply.status} {category}: {message})")
        return reply.body

    async def _fresh(self, obj: str, position: Position) -> list[_Row]:
        """The next records not handed out yet, oldest first (paging past the ones that were)."""
        since = position.since(OVERLAP_MS)
        filters: list[dict[str, Any]] = [{"propertyName": INTENT_CORRECTION, "operator": "HAS_PROPERTY"}]
        if since is not None:
            filters.append({"propertyName": MODIFIED, "operator": "GTE", "value": str(since)})
        body: dict[str, Any] = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": MODIFIED, "direction": "ASCENDING"}],
            "properties": self._wanted(obj),
            "limit": PAGE,
        }
        while True:
            answer = await self._search(f"search {obj} with intent corrections", obj, body)
            rows = [row for result in answer.get("results") or [] if (row := self._row(obj, result)) is not None]
            fresh = [r for r in rows if position.fresh(r.id, r.modified_ms, r.label)]
            after = ((answer.get("paging") or {}).get("next") or {}).get("after")
            if fresh or not after:
                return fresh
            if not str(after).isdigit() or int(after) + PAGE > SEARCH_TOTAL:
                self.logger.warning(
                    "hubspot: more than %d %s corrected since the last read were already read; the rest waits "
                    "for the next poll",
                    SEARCH_TOTAL,
                    obj,
                )
                return []
            body["after"] = str(after)

    def _row(self, obj: str, result: dict[str, Any]) -> _Row | None:
        properties = dict(result.get("properties") or {})
        label = properties.get(INTENT_CORRECTION)
        modified = _parse_time(properties.get(MODIFIED) or result.get("updatedAt"))
        if not label or modified is None:
            self.logger.warning("hubspot: %s %s came back without a label or a time; skipped", obj, result.get("id"))
            return None
        return _Row(str(result["id"]), properties, modified, str(label))

    def _message_key(self, obj: str, row: _Row) -> str | None:
        props = row.properties
        if obj == NOTES and props.get("scrm_network") and props.get("scrm_message_id"):
            return f"{props['scrm_network']}:{props['scrm_message_id']}"
        if obj == TICKETS and props.get("scrm_conversation_key"):
            return str(props["scrm_conversation_key"])
        key = props.get(self.key)
        if isinstance(key, str) and key.startswith(_KEY_PREFIX) and ":" in key[len(_KEY_PREFIX) :]:
            return key[len(_KEY_PREFIX) :]
        self.logger.info("hubspot: %s %s has an intent correction but no message scrm wrote; skipped", obj, row.id)
        return None

    async def _first_notes(self, conversation_keys: list[str]) -> dict[str, dict[str, Any]]:
        """The notes of the tickets' first messages (key: ``scrm:<conversation key>``), by key."""
        keys = sorted({_KEY_PREFIX + k for k in conversation_keys})
        body = {
            "filterGroups": [{"filters": [{"propertyName": self.key, "operator": "IN", "values": keys}]}],
            "properties": [self.key, "hs_note_body", "scrm_language"],
            "limit": PAGE,
        }
        answer = await self._search("search the first messages of corrected tickets", NOTES, body)
        return {
            str(props[self.key]): props
            for result in answer.get("results") or []
            if (props := result.get("properties") or {}).get(self.key)
        }

    async def _corrections(self, obj: str, rows: list[_Row]) -> list[LabelCorrection]:
        keyed = [(row, key) for row in rows if (key := self._message_key(obj, row)) is not None]
        first = await self._first_notes([key for _, key in keyed]) if obj == TICKETS and keyed else {}
        out = []
        for row, key in keyed:
            props = row.properties
            if obj == TICKETS:
                note = first.get(_KEY_PREFIX + key)
                text = plain_text(note.get("hs_note_body") or "") if note else str(props.get("subject") or "")
                language = note.get("scrm_language") if note else None
            else:
                text, language = plain_text(props.get("hs_note_body") or ""), props.get("scrm_language")
            out.append(
                LabelCorrection(
                    crm_id=row.id,
                    message_key=key,
                    label=row.label,
                    text=text,
                    language=language or None,
                    corrected_at=row.modified,
                )
            )
        return out
