"""Agents' intent corrections, read back from the ``Scrm_Intent_Correction__c`` picklist.

An agent who finds scrm's intent label wrong picks the right one (``complaint``,
``question``, ``purchase``, ``praise``, ``spam``, ``none``; any value the admin adds becomes
a class of the deployment's model) on the SocialPost or on the Case. Per object,
:meth:`CorrectionReader.read` asks::

    SELECT Id, SystemModstamp, Scrm_Key__c, Scrm_Intent_Correction__c, Content, Language
    FROM SocialPost
    WHERE Scrm_Intent_Correction__c != null AND SystemModstamp >= <since>
    ORDER BY SystemModstamp, Id LIMIT 200

and pages on within one call with ``AND (SystemModstamp > t OR (SystemModstamp = t AND Id
> 'id'))`` after the last row read. ``SystemModstamp`` moves on every save, by a user or an
automated process (developer.salesforce.com/docs/atlas.en-us.api.meta/api/system_fields.htm),
and it is indexed, so the query stays cheap however large the object.

Why the cursor re-reads a window instead of resuming strictly after the last (stamp, Id):
stamps have one-second precision and Ids are not given in the order records are edited,
so a record edited in the same second as the last one handed out can sort before it; and
a save is stamped when its transaction runs but seen by other sessions only once it
commits, so a record can appear with a stamp earlier than one already read. The cursor
therefore keeps, per object, the newest stamp handed out and what was handed out within
:data:`OVERLAP_MS` before it (record Id -> stamp and label); it re-reads from there and
hands out only what changed. A record corrected again has a later stamp (or, within the
same second, another label) and comes back; scrm keeps the newest label per message. The
stamp also moves when scrm itself updates a corrected record (an edit on the network): the
correction then comes back unchanged, which is harmless.

The first read after ``check()`` (which ``scrm run`` calls first) costs no request when the
org holds fewer than :data:`PAGE` corrections per object: ``check()`` reads them all in the
composite request that carries the describes (:meth:`CorrectionReader.first_pages`), and
the read filters that complete page as the query would. A correction made in the moment
between comes with the next poll (it is newer than anything handed out).

A correction names the message by its external key (``Scrm_Key__c`` is ``scrm:<network>:<id>``):
a SocialPost's own, a Case's (its conversation's key, which is its first message's). Its
text is the post's ``Content``; for a Case, the ``Content`` of its first message if
Salesforce has that post, else the Case's ``Subject``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from scrm_core import JsonCursor, LabelCorrection, OverlapWindow
from scrm_core.errors import FatalError

from .metadata import ObjectMeta

if TYPE_CHECKING:
    from simple_salesforce.api import Salesforce

__all__ = [
    "CORRECTION_FIELD",
    "INTENT_VALUES",
    "CorrectionCursor",
    "CorrectionReader",
    "Position",
]

CORRECTION_FIELD = "Scrm_Intent_Correction__c"
INTENT_VALUES = ("complaint", "question", "purchase", "praise", "spam", "none")
#: Objects agents correct, messages first.
CORRECTED = ("SocialPost", "Case")
PAGE = 200
#: How far behind the newest stamp handed out each read looks again (saves that commit late).
OVERLAP_MS = 300_000
#: Records remembered per object within the window; beyond it the oldest stop being re-read.
MAX_SEEN = 1_000
#: Salesforce stamps are whole seconds.
RESOLUTION_MS = 1_000
SF_DATETIME = "%Y-%m-%dT%H:%M:%S.%f%z"
_KEY_PREFIX = "scrm:"

Run = Callable[[str, Callable[["Salesforce"], Any]], Awaitable[Any]]


#: What each object's corrections were read up to (the cursor keeps one per object).
Position = OverlapWindow


class CorrectionCursor(JsonCursor):
    """``sfl1:`` + JSON: a :class:`Position` per object."""

    prefix: ClassVar[str] = "sfl1:"
    positions: dict[str, Position] = Field(default_factory=dict)


@dataclass(frozen=True)
class _Row:
    record: dict[str, Any]
    modified: datetime
    label: str

    @property
    def id(self) -> str:
        return str(self.record["Id"])

    @property
    def modified_ms(self) -> int:
        return int(self.modified.timestamp() * 1000)

    @property
    def key(self) -> tuple[str, int, str]:
        """(record id, modified, label): what the cursor remembers of a version handed out."""
        return self.id, self.modified_ms, self.label


def _ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _query(soql: str, sf: Salesforce) -> list[dict[str, Any]]:
    return list(sf.query(soql)["records"])


class CorrectionReader:
    """Reads corrections from SocialPost and Case for ``SalesforceCrm.label_corrections``."""

    def __init__(
        self,
        run: Run,
        metadata: Callable[[], Awaitable[dict[str, ObjectMeta]]],
        first_posts: Callable[[Sequence[str]], Awaitable[dict[str, Any]]],
        key_field: str,
        logger: logging.Logger,
    ) -> None:
        self._run = run
        self._metadata = metadata
        self._first_posts = first_posts
        self.key_field = key_field
        self.logger = logger
        self._off: set[str] = set()  # objects whose corrections cannot be read this run
        self._prefetched: dict[str, list[dict[str, Any]]] = {}  # complete first pages, read by check()

    def first_pages(self) -> dict[str, str]:
        """referenceId -> SOQL of every object's first page of corrections from the start, for
        the composite request ``check()`` makes; hand the answers to :meth:`prefetched`."""
        return {f"Corrections{sobject}": self._soql(sobject, None, None) for sobject in CORRECTED}

    def prefetched(self, reference: str, status: int, page: Any) -> None:
        """Keep a first page read in the composite request, if it holds every correction."""
        sobject = reference.removeprefix("Corrections")
        records = page.get("records") if status == 200 and isinstance(page, dict) and page.get("done") else None
        if sobject in CORRECTED and isinstance(records, list) and len(records) < PAGE:
            self._prefetched[sobject] = records

    async def read(self, cursor: str | None) -> tuple[list[LabelCorrection], str | None]:
        state = CorrectionCursor.parse(cursor)
        metas = await self._metadata()
        positions = dict(state.positions)
        found: list[LabelCorrection] = []
        moved = False
        for sobject in CORRECTED:
            if sobject in self._off:
                continue
            if CORRECTION_FIELD not in metas[sobject].fields:
                why = f"it has no field {CORRECTION_FIELD} the integration user can read (see `scrm check`)"
                self._turn_off(sobject, why)
                continue
            position = positions.get(sobject, Position())
            try:
                while rows := await self._fresh(sobject, position):
                    position = position.advanced(
                        [r.key for r in rows],
                        overlap_ms=OVERLAP_MS,
                        max_seen=MAX_SEEN,
                        resolution_ms=RESOLUTION_MS,
                    )
                    positions[sobject] = position
                    moved = True
                    corrections = await self._corrections(sobject, rows)
                    found += corrections
                    if corrections:
                        break  # one page per object and call; rows without a message key read on
            except FatalError as refused:  # the field or access went away during the run
                self._turn_off(sobject, refused.operator_message)
        if not moved:
            return [], cursor
        return found, CorrectionCursor(positions=positions).dump()

    def _turn_off(self, sobject: str, why: str) -> None:
        """Stop reading corrections on ``sobject`` until the next start (the sync goes on)."""
        self._off.add(sobject)
        self.logger.warning("salesforce: agents' intent corrections on %s are not read: %s", sobject, why)

    def _soql(self, sobject: str, since: int | None, after: tuple[datetime, str] | None) -> str:
        text = "Subject" if sobject == "Case" else "Content, Language"
        soql = (
            f"SELECT Id, SystemModstamp, {self.key_field}, {CORRECTION_FIELD}, {text} FROM {sobject} "
            f"WHERE {CORRECTION_FIELD} != null"
        )
        from simple_salesforce.format import format_soql  # the SDK: imported where a query is built

        if since is not None:
            soql += format_soql(" AND SystemModstamp >= {}", _ms_to_datetime(since))
        if after is not None:
            soql += format_soql(" AND (SystemModstamp > {0} OR (SystemModstamp = {0} AND Id > {1}))", *after)
        return soql + f" ORDER BY SystemModstamp, Id LIMIT {PAGE}"

    async def _fresh(self, sobject: str, position: Position) -> list[_Row]:
        """The next rows not handed out yet, oldest first (paging past the ones that were)."""
        since = position.since(OVERLAP_MS)
        if (everything := self._prefetched.pop(sobject, None)) is not None:
            rows = [self._row(sobject, r) for r in everything]
            return [r for r in rows if (since is None or r.modified_ms >= since) and position.fresh(*r.key)]
        after: tuple[datetime, str] | None = None
        while True:
            soql = self._soql(sobject, since, after)
            records: list[dict[str, Any]] = await self._run(
                f"read intent corrections on {sobject}", partial(_query, soql)
            )
            rows = [self._row(sobject, r) for r in records]
            fresh = [r for r in rows if position.fresh(*r.key)]
            if fresh or len(records) < PAGE:
                return fresh
            after = (rows[-1].modified, rows[-1].id)

    @staticmethod
    def _row(sobject: str, record: dict[str, Any]) -> _Row:
        try:
            modified = datetime.strptime(str(record["SystemModstamp"]), SF_DATETIME)
        except (KeyError, ValueError):
            raise FatalError(
                f"salesforce: {sobject} {record.get('Id')} has no readable SystemModstamp "
                f"({record.get('SystemModstamp')!r})"
            ) from None
        return _Row(record, modified, str(record[CORRECTION_FIELD]))

    def _message_key(self, sobject: str, row: _Row) -> str | None:
        key = row.record.get(self.key_field)
        if isinstance(key, str) and key.startswith(_KEY_PREFIX) and ":" in key[len(_KEY_PREFIX) :]:
            return key[len(_KEY_PREFIX) :]
        self.logger.info(
            "salesforce: %s %s has an intent correction but is not a record scrm wrote (%s is %r); skipped",
            sobject,
            row.id,
            self.key_field,
            key,
        )
        return None

    async def _corrections(self, sobject: str, rows: list[_Row]) -> list[LabelCorrection]:
        keyed = [(row, key) for row in rows if (key := self._message_key(sobject, row)) is not None]
        first: dict[str, Any] = {}
        if sobject == "Case" and keyed:
            first = await self._first_posts([str(row.record[self.key_field]) for row, _ in keyed])
        out = []
        for row, key in keyed:
            record = row.record
            if sobject == "Case":
                post = first.get(str(record[self.key_field]))
                text = (post.get("Content") or "") if post is not None else (record.get("Subject") or "")
                language = post.get("Language") if post is not None else None
            else:
                text, language = record.get("Content") or "", record.get("Language")
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
