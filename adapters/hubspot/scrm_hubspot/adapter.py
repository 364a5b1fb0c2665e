"""``HubSpotCrm``: scrm's records as HubSpot contacts, tickets and notes.

========== ======================================================================
scrm       HubSpot
========== ======================================================================
contact    contact, upserted by the unique ``key_property`` (``scrm_key``)
profile    ``scrm_*`` properties of the referenced contact, written in the contact's
           upsert (HubSpot has no persona object; ``stored_on``), found by the unique
           ``scrm_profile_key``
lead       ``lifecyclestage`` / ``hs_lead_status`` (as configured) and ``scrm_lead_*``
           properties of the referenced contact, likewise, found by ``scrm_lead_key``
case       ticket, upserted by ``key_property``, associated with the contact (type 16)
message    note, associated with the contact (202) and the ticket (228); see
           :mod:`.notes` for how it stays idempotent without a unique property
reply      a note an agent writes with ``scrm_direction = outbound`` and no key;
           once sent it gets the message's key and becomes that message's note
correction ``scrm_intent_correction`` an agent sets on a note or a ticket (:mod:`.corrections`)
========== ======================================================================

Every ``apply`` is one object type (contacts with the profiles and leads stored on
them); :mod:`.writes` says how each is written in the fewest requests and never twice.
Values are fitted to the account's property definitions first (:mod:`.fit`). The first
request of an ``apply`` was paid for by the sink, each further one (a lookup, an
association) takes its own token from the budget.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from scrm_core import (
    AdapterContext,
    AdapterSettings,
    CheckProblem,
    CrmAdapter,
    CrmCapability,
    CrmLimits,
    CrmObject,
    CrmOperation,
    LabelCorrection,
    OperationResult,
    PendingReply,
    PlannedWrite,
    WriteBatch,
)
from scrm_core import external_key as scrm_external_key
from scrm_core.errors import FatalError, RetryableError

from . import records
from .api import HubSpotApi, error_category
from .corrections import CorrectionReader
from .keys import chunks
from .records import plain_text
from .schema import CONTACTS, LEAD_KEY, NOTE_TO_TICKET, NOTES, PROFILE_KEY, TICKETS
from .settings import HubSpotSettings
from .setup import list_properties, plan_setup
from .writes import REPLY_NOTE, Definitions, Writer

__all__ = ["HubSpotCrm"]

log = logging.getLogger("scrm.hubspot")


class HubSpotCrm(CrmAdapter):
    """HubSpot through the official ``hubspot-api-client``."""

    name = "hubspot"
    Settings = HubSpotSettings
    capabilities = frozenset(
        {
            CrmCapability.contacts,
            CrmCapability.personas,
            CrmCapability.cases,
            CrmCapability.leads,
            CrmCapability.messages,
            CrmCapability.outbound_replies,
            CrmCapability.erase,
            CrmCapability.label_corrections,
        }
    )
    # Batch endpoints take 100 inputs; a private app may make 100 requests per 10 s.
    limits = CrmLimits(max_batch=100, requests_per_second=10.0, burst=10)
    # A profile and a lead are properties of the contact: written in the contact's upsert.
    stored_on: Mapping[CrmObject, str] = {CrmObject.profile: "contact", CrmObject.lead: "contact"}

    def __init__(self, settings: AdapterSettings, context: AdapterContext) -> None:
        if not isinstance(settings, HubSpotSettings):
            raise TypeError(f"HubSpotCrm needs HubSpotCrm.Settings, got {type(settings).__name__}")
        super().__init__(settings, context)
        self.config = settings
        self.key = settings.key_property
        self.limits = CrmLimits(
            max_batch=100,
            requests_per_second=settings.requests_per_window / settings.window_seconds,
            burst=min(10, settings.requests_per_window),
        )
        self.api = HubSpotApi(settings, self.budget, context.run_blocking)
        self.writer = Writer(self.api, settings, context.state, self.definitions)
        self.ids = self.writer.ids
        self.notes = self.writer.notes
        self._definitions: Definitions | None = None
        self.corrections = CorrectionReader(self.api, self.definitions, self.key, log)

    def __repr__(self) -> str:
        return f"HubSpotCrm(name={self.context.name!r}, base_url={self.config.base_url!r})"

    async def start(self) -> None:
        if not hasattr(self.api, "objects"):
            await self.context.run_blocking(self.api.start)

    async def definitions(self) -> Definitions:
        """The account's property definitions of contacts, tickets and notes, read once per run."""
        if self._definitions is None:
            await self.start()
            self._definitions = await list_properties(self.api, patient=False)
        return self._definitions

    # ------------------------------------------------------------ apply

    async def apply(self, ops: Sequence[CrmOperation]) -> list[OperationResult]:
        if not ops:
            return []
        await self.start()
        self.api.prepaid = 1
        try:
            outcomes = await self.writer.apply(WriteBatch.of(ops))
        finally:
            self.api.prepaid = 0
        return [
            OperationResult(
                external_key=op.external_key,
                ok=o.ok,
                crm_id=o.crm_id,
                error=o.error,
                retryable=o.retryable,
                code=o.code,
                fix=o.fix,
            )
            for op in ops
            for o in [outcomes[(op.object, op.external_key)]]
        ]

    async def preview(self, ops: Sequence[CrmOperation]) -> list[PlannedWrite]:
        """What apply() would write: the records fitted, their current values read (batch reads only)."""
        if not ops:
            return []
        await self.start()
        return await self.writer.preview(WriteBatch.of(ops))

    async def _archive(self, obj: str, ids: list[str]) -> int:
        for part in chunks(ids):
            reply = await self.api.call(
                f"archive {obj}", self.api.objects.archive_with_http_info, obj, {"inputs": [{"id": i} for i in part]}
            )
            if not reply.ok:
                raise RetryableError(f"HubSpot refused to archive {obj} ({reply.status}); the erase will be retried")
        return len(ids)

    # ------------------------------------------------------------ erase

    async def erase(self, records_by_object: Mapping[CrmObject, Sequence[str]]) -> int:
        """Archive notes, tickets and contacts by key; clear a profile's or a lead's contact properties."""
        await self.start()
        erased = 0
        if keys := list(records_by_object.get(CrmObject.message, [])):
            note_ids = await self.notes.existing(keys, {})
            erased += await self._archive(NOTES, list(note_ids.values()))
            for key in note_ids:
                self.notes.forget(key)
        if keys := list(records_by_object.get(CrmObject.case, [])):
            erased += await self._archive(TICKETS, list((await self.ids.find(TICKETS, self.key, keys)).values()))
        for obj, prop, cleared in (
            (CrmObject.lead, LEAD_KEY, records.LEAD_PROPERTIES),
            (CrmObject.profile, PROFILE_KEY, records.PROFILE_PROPERTIES),
        ):
            if keys := list(records_by_object.get(obj, [])):
                contact_ids = list((await self.ids.find(CONTACTS, prop, keys)).values())
                erased += await self._clear(contact_ids, cleared)
        if keys := list(records_by_object.get(CrmObject.contact, [])):
            erased += await self._archive(CONTACTS, list((await self.ids.find(CONTACTS, self.key, keys)).values()))
        self.ids.clear()
        return erased

    async def _clear(self, contact_ids: list[str], properties: Sequence[str]) -> int:
        for part in chunks(contact_ids):
            inputs = [{"id": i, "properties": dict.fromkeys(properties, "")} for i in part]
            reply = await self.api.call(
                "clear contact properties", self.api.objects.update_with_http_info, CONTACTS, {"inputs": inputs}
            )
            if not reply.ok:
                raise RetryableError(f"HubSpot refused to clear contact properties ({reply.status}); retrying")
        return len(contact_ids)

    # ------------------------------------------------------------ replies written by agents

    async def pending_replies(self, cursor: str | None) -> tuple[list[PendingReply], str | None]:
        """Notes with ``scrm_direction = outbound`` and no scrm key, after the cursor (a note id).

        Found through the search API, sorted by id. HubSpot indexes a note a few seconds
        after it is written, so a note appears on a later poll, never twice.
        """
        await self.start()
        filters = [
            {"propertyName": "scrm_direction", "operator": "EQ", "value": "outbound"},
            {"propertyName": self.key, "operator": "NOT_HAS_PROPERTY"},
            {"propertyName": "hs_object_id", "operator": "GT", "value": cursor or "0"},
        ]
        body = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "properties": ["hs_note_body", "scrm_conversation_key", "scrm_in_reply_to"],
            "limit": 100,
        }
        reply = await self.api.search("search agent replies", NOTES, body)
        if not reply.ok:
            raise RetryableError(f"HubSpot refused the search for agent replies ({reply.status})")
        results = reply.body.get("results") or []
        conversations = await self._ticket_conversations(
            [str(r["id"]) for r in results if not (r.get("properties") or {}).get("scrm_conversation_key")]
        )
        replies = []
        for result in results:
            props, note_id = result.get("properties") or {}, str(result["id"])
            conversation = props.get("scrm_conversation_key") or conversations.get(note_id)
            text = plain_text(props.get("hs_note_body") or "")
            if not conversation or not text:
                log.warning("HubSpot note %s is marked outbound but has no conversation or text; skipped", note_id)
                continue
            in_reply_to = props.get("scrm_in_reply_to") or conversation.split(":", 1)[-1]
            replies.append(
                PendingReply(crm_id=note_id, conversation_key=conversation, in_reply_to=in_reply_to, text=text)
            )
        return replies, (str(results[-1]["id"]) if results else cursor)

    async def reply_sent(self, reply: PendingReply, external_key: str, network_message_id: str) -> None:
        """Make the agent's note the CRM record of the sent message.

        1. one batch update of the note: ``scrm_key`` = the message's external key (so
           ``pending_replies`` no longer finds it) and ``scrm_message_id`` = the network's id;
        2. the note is associated with the conversation's ticket (found by its unique
           ``scrm_key``, usually remembered; HubSpot keeps one association however often
           it is created), so the sync-back finds it among the ticket's notes even after a
           restart (:mod:`.notes`), and in this process by the remembered key at no cost.

        Before that, a note that already holds the key (the network's copy of the reply,
        synced first) is archived, so the agent's note stays the one record of it. Four
        requests (the ticket's notes, read directly; the update; the association), one more
        when the ticket id is not remembered, one more to archive a copy; each takes a token
        from the budget. A repeat in the same process costs none. A note deleted
        meanwhile is only logged: the sync-back then creates the message as a new note.
        """
        await self.start()
        if self.notes.known(external_key) == reply.crm_id:
            return  # done already in this process
        ticket_key = scrm_external_key(reply.conversation_key)
        ticket = (await self.ids.find(TICKETS, self.key, [ticket_key])).get(ticket_key)
        await self._drop_earlier_copy(reply.crm_id, external_key, ticket)
        body = {
            "inputs": [
                {"id": reply.crm_id, "properties": {self.key: external_key, "scrm_message_id": network_message_id}}
            ]
        }
        answer = await self.api.call("mark an agent's reply sent", self.api.objects.update_with_http_info, NOTES, body)
        answered = answer.body if isinstance(answer.body, dict) else {}
        if not answer.ok or answered.get("errors"):
            errors = answered.get("errors") or [answered]
            category, message = error_category(errors[0])
            if category == "OBJECT_NOT_FOUND":
                log.warning(
                    "HubSpot note %s was deleted after its reply was sent (%s); the message comes back as a new note",
                    reply.crm_id,
                    network_message_id,
                )
                return
            raise RetryableError(f"HubSpot refused to mark note {reply.crm_id} sent ({category}: {message})")
        if ticket is not None:
            failed = await self.writer.associate(NOTES, TICKETS, NOTE_TO_TICKET, {external_key: (reply.crm_id, ticket)})
            if failed:
                raise RetryableError(failed[external_key].error or f"could not associate note {reply.crm_id}")
        self.notes.remember(external_key, reply.crm_id)
        await self.context.state.put(REPLY_NOTE + external_key, reply.crm_id)  # the sync-back updates this note

    async def _drop_earlier_copy(self, note_id: str, external_key: str, ticket: str | None) -> None:
        """Archive a note already holding the sent message's key (the network's copy of the
        reply, synced before ``reply_sent`` ran): HubSpot notes have no unique property, so
        nothing else stops two notes from sharing the key, and the agent's note is the one
        to keep. Looked for among the ticket's notes (two requests, none if remembered)."""
        copy = self.notes.known(external_key)
        if copy is None and ticket is not None:
            copy = await self.notes.find_among_notes_of(TICKETS, ticket, external_key)
        if copy is not None and copy != note_id:
            log.info("HubSpot note %s copied reply note %s before it was marked sent; archived", copy, note_id)
            await self._archive(NOTES, [copy])
            self.notes.forget(external_key)

    async def _ticket_conversations(self, note_ids: list[str]) -> dict[str, str]:
        """Conversation keys of the tickets these notes are on (for replies that do not say)."""
        if not note_ids:
            return {}
        reply = await self.api.call(
            "read tickets of notes",
            self.api.associations.get_page_with_http_info,
            NOTES,
            TICKETS,
            {"inputs": [{"id": n} for n in note_ids]},
        )
        ticket_of = {
            str(r["from"]["id"]): str(r["to"][0]["toObjectId"])
            for r in (reply.body or {}).get("results") or []
            if r.get("to")
        }
        if not ticket_of:
            return {}
        body = {"inputs": [{"id": t} for t in set(ticket_of.values())], "properties": ["scrm_conversation_key"]}
        tickets = await self.api.call("read tickets", self.api.objects.read_with_http_info, TICKETS, body)
        keys = {
            str(r["id"]): (r.get("properties") or {}).get("scrm_conversation_key")
            for r in (tickets.body or {}).get("results") or []
        }
        return {n: k for n, t in ticket_of.items() if (k := keys.get(t))}

    # ------------------------------------------------------------ label corrections

    async def label_corrections(self, cursor: str | None) -> tuple[list[LabelCorrection], str | None]:
        """Intent labels agents set in ``scrm_intent_correction`` on notes and tickets since
        ``cursor`` (one search page per object type; see :mod:`.corrections`)."""
        await self.start()
        return await self.corrections.read(cursor)

    # ------------------------------------------------------------ check

    async def check(self) -> list[CheckProblem]:
        """Credentials, read scopes and the custom properties, each with the command that fixes it."""
        await self.start()
        try:
            self._definitions = await list_properties(self.api)
            plan = await plan_setup(self.api, self.key, self._definitions)
        except FatalError as e:
            self._definitions = None
            return [
                CheckProblem(
                    problem=e.operator_message,
                    fix="fix the credentials or scopes named, then run `scrm hubspot setup --dry-run`",
                )
            ]
        return plan.problems()
