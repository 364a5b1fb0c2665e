"""``HubSpotCrm``: scrm's records as HubSpot contacts, tickets and notes.

========== ======================================================================
scrm       HubSpot
========== ======================================================================
contact    contact, upserted by the unique ``key_property`` (``scrm_key``)
profile    ``scrm_*`` properties of the referenced contact, found by the unique
           ``scrm_profile_key`` (HubSpot has no persona object)
lead       ``lifecyclestage`` / ``hs_lead_status`` (as configured) and ``scrm_lead_*``
           properties of the referenced contact, found by ``scrm_lead_key``
case       ticket, upserted by ``key_property``, associated with the contact (type 16)
message    note, associated with the contact (202) and the ticket (228); see
           :mod:`.notes` for how it stays idempotent without a unique property
reply      a note an agent writes with ``scrm_direction = outbound`` and no key;
           once sent it gets the message's key and becomes that message's note
========== ======================================================================

Every ``apply`` is one object type; the first request was paid for by the sink, each
further one (a lookup, an association) takes its own token from the budget.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any

from scrm_core import (
    AdapterContext,
    AdapterSettings,
    CheckProblem,
    CrmAdapter,
    CrmCapability,
    CrmLimits,
    CrmObject,
    CrmOperation,
    OperationResult,
    PendingReply,
)
from scrm_core import external_key as scrm_external_key
from scrm_core.errors import FatalError, RetryableError

from . import records
from .api import HubSpotApi, Reply, error_category
from .batches import RecordOutcome, write_batch
from .keys import LruMap, RecordIds, chunks
from .notes import NoteIndex
from .schema import CONTACTS, LEAD_KEY, NOTE_TO_CONTACT, NOTE_TO_TICKET, NOTES, PROFILE_KEY, TICKET_TO_CONTACT, TICKETS
from .settings import HubSpotSettings
from .setup import plan_setup

__all__ = ["HubSpotCrm"]

log = logging.getLogger("scrm.hubspot")

Outcomes = dict[str, RecordOutcome]
_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"<br\s*/?>|</p>\s*<p[^>]*>", re.IGNORECASE)


def _failed(error: str, *, retryable: bool) -> RecordOutcome:
    return RecordOutcome.failed(error, retryable=retryable)


def _association(to_id: str, type_id: int) -> dict[str, Any]:
    return {"to": {"id": to_id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}


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
        }
    )
    # Batch endpoints take 100 inputs; a private app may make 100 requests per 10 s.
    limits = CrmLimits(max_batch=100, requests_per_second=10.0, burst=10)

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
        self.ids = RecordIds(self.api)
        self.notes = NoteIndex(self.api, self.key)
        self._linked: LruMap[tuple[str, str, str], bool] = LruMap(100_000)  # (object, id, other id) associated

    def __repr__(self) -> str:
        return f"HubSpotCrm(name={self.context.name!r}, base_url={self.config.base_url!r})"

    async def start(self) -> None:
        if not hasattr(self.api, "objects"):
            await self.context.run_blocking(self.api.start)

    # ------------------------------------------------------------ apply

    async def apply(self, ops: Sequence[CrmOperation]) -> list[OperationResult]:
        if not ops:
            return []
        await self.start()
        handlers: dict[CrmObject, Callable[[Sequence[CrmOperation]], Awaitable[Outcomes]]] = {
            CrmObject.contact: self._contacts,
            CrmObject.profile: partial(self._on_contacts, PROFILE_KEY, self._profile_properties),
            CrmObject.lead: partial(self._on_contacts, LEAD_KEY, self._lead_properties),
            CrmObject.case: self._cases,
            CrmObject.message: self._messages,
        }
        self.api.prepaid = 1
        try:
            outcomes = await handlers[ops[0].object](ops)
        finally:
            self.api.prepaid = 0
        return [
            OperationResult(
                external_key=op.external_key, ok=o.ok, crm_id=o.crm_id, error=o.error, retryable=o.retryable
            )
            for op in ops
            for o in [outcomes[op.external_key]]
        ]

    def _send(self, what: str, method: Callable[..., Any], *path: str) -> Callable[[list[dict[str, Any]]], Any]:
        async def send(inputs: list[dict[str, Any]]) -> Reply:
            return await self.api.call(what, method, *path, {"inputs": inputs})

        return send

    async def _contacts(self, ops: Sequence[CrmOperation]) -> Outcomes:
        items = [
            (
                op.external_key,
                {
                    "idProperty": self.key,
                    "id": op.external_key,
                    "properties": records.contact_properties(op.fields),
                    "objectWriteTraceId": op.external_key,
                },
            )
            for op in ops
        ]
        send = self._send("upsert contacts", self.api.objects.upsert_with_http_info, CONTACTS)
        keys = {op.external_key: op.external_key for op in ops}
        outcomes = await write_batch(send, items, self._key_of, keys)
        self._remember(CONTACTS, self.key, outcomes)
        return outcomes

    def _key_of(self, result: dict[str, Any]) -> str | None:
        return result.get("objectWriteTraceId") or (result.get("properties") or {}).get(self.key)

    def _remember(self, obj: str, prop: str, outcomes: Outcomes) -> None:
        for key, outcome in outcomes.items():
            if outcome.ok and outcome.crm_id:
                self.ids.remember(obj, prop, key, outcome.crm_id)

    def _profile_properties(self, op: CrmOperation) -> dict[str, str]:
        return records.profile_properties(op.external_key, op.fields)

    def _lead_properties(self, op: CrmOperation) -> dict[str, str]:
        return records.lead_properties(op.external_key, op.fields, self.config)

    async def _contact_ids(self, ops: Sequence[CrmOperation], out: Outcomes) -> dict[str, str]:
        """Contact ids of the ops' ``refs["contact"]``; ops whose contact is unknown get their outcome."""
        wanted = [op.refs["contact"] for op in ops if "contact" in op.refs]
        found = await self.ids.find(CONTACTS, self.key, wanted)
        for op in ops:
            contact = op.refs.get("contact")
            if contact is not None and contact not in found:
                out[op.external_key] = _failed(f"contact {contact} is not in HubSpot yet", retryable=True)
        return found

    async def _on_contacts(
        self, prop: str, properties: Callable[[CrmOperation], dict[str, str]], ops: Sequence[CrmOperation]
    ) -> Outcomes:
        """Profiles and leads: properties of the referenced contact."""
        out: Outcomes = {}
        contacts = await self._contact_ids(ops, out)
        items: list[tuple[str, dict[str, Any]]] = []
        by_id: dict[str, str] = {}
        for op in ops:
            if op.external_key in out:
                continue
            contact = op.refs.get("contact")
            if contact is None:
                kind = op.object.value
                out[op.external_key] = _failed(
                    f"a {kind} needs refs['contact']: HubSpot keeps it on the contact", retryable=False
                )
            elif contacts[contact] in by_id:  # one contact, two profiles in one batch: HubSpot refuses duplicate ids
                out[op.external_key] = _failed("another record of this contact is in the same batch", retryable=True)
            else:
                by_id[contacts[contact]] = op.external_key
                items.append((op.external_key, {"id": contacts[contact], "properties": properties(op)}))
        send = self._send(f"update contacts ({ops[0].object.value})", self.api.objects.update_with_http_info, CONTACTS)
        written = await write_batch(send, items, lambda r: by_id.get(str(r.get("id"))), by_id)
        self._remember(CONTACTS, prop, written)
        return out | written

    async def _cases(self, ops: Sequence[CrmOperation]) -> Outcomes:
        out: Outcomes = {}
        contacts = await self._contact_ids(ops, out)
        items = [
            (
                op.external_key,
                {
                    "idProperty": self.key,
                    "id": op.external_key,
                    "properties": records.ticket_properties(op.fields, self.config, new="subject" in op.fields),
                    "objectWriteTraceId": op.external_key,
                },
            )
            for op in ops
            if op.external_key not in out
        ]
        send = self._send("upsert tickets", self.api.objects.upsert_with_http_info, TICKETS)
        written = await write_batch(send, items, self._key_of, {key: key for key, _ in items})
        self._remember(TICKETS, self.key, written)
        links = {
            key: (outcome.crm_id, contacts[op.refs["contact"]])
            for op in ops
            if "contact" in op.refs
            for key, outcome in [(op.external_key, written.get(op.external_key))]
            if outcome is not None and outcome.ok and outcome.crm_id
        }
        linked = await self._associate(TICKETS, CONTACTS, TICKET_TO_CONTACT, links)
        return out | written | linked

    async def _associate(
        self, obj: str, to: str, type_id: int, links: Mapping[str, tuple[str | None, str]]
    ) -> Outcomes:
        """Associate records (key -> (id, other id)); keys whose association failed get an outcome."""
        todo = {k: (i, o) for k, (i, o) in links.items() if i and not self._linked.get((obj, i, o))}
        out: Outcomes = {}
        items = list(todo.items())
        for part in [items[i : i + 100] for i in range(0, len(items), 100)]:
            inputs = [{"from": {"id": i}, **_association(o, type_id)} for _, (i, o) in part]
            reply = await self.api.call(
                f"associate {obj} with {to}", self.api.associations.create_with_http_info, obj, to, {"inputs": inputs}
            )
            failed = {
                str(i)
                for e in (reply.body or {}).get("errors") or []
                for i in (e.get("context") or {}).get("fromObjectId", [])
            }
            for key, (i, o) in part:
                if not reply.ok or i in failed:
                    out[key] = _failed(f"could not associate {obj} {i} with {to} {o}; retrying", retryable=True)
                    if to == CONTACTS:
                        self.ids.clear()  # a contact we thought we knew may be gone
                else:
                    self._linked.put((obj, str(i), o), True)
        return out

    async def _messages(self, ops: Sequence[CrmOperation]) -> Outcomes:
        out: Outcomes = {}
        contacts = await self._contact_ids(ops, out)
        tickets = await self.ids.find(TICKETS, self.key, [op.refs["case"] for op in ops if "case" in op.refs])
        for op in ops:
            case = op.refs.get("case")
            if case is not None and case not in tickets and op.external_key not in out:
                out[op.external_key] = _failed(f"case {case} is not in HubSpot yet", retryable=True)
        pending = [op for op in ops if op.external_key not in out]
        with_contact = {op.external_key: contacts[op.refs["contact"]] for op in pending if "contact" in op.refs}
        # An outbound message may be an agent's note on the ticket (see reply_sent).
        on_ticket = {
            op.external_key: tickets[op.refs["case"]]
            for op in pending
            if op.fields.get("direction") == "outbound" and op.refs.get("case") in tickets
        }
        existing = await self.notes.existing([op.external_key for op in pending], with_contact, on_ticket)
        creates = [op for op in pending if op.external_key not in existing]
        updates = [op for op in pending if op.external_key in existing]
        out |= await self._create_notes(creates, contacts, tickets)
        out |= await self._update_notes(updates, existing, contacts, tickets)
        return out

    def _note_links(
        self, op: CrmOperation, contacts: Mapping[str, str], tickets: Mapping[str, str]
    ) -> list[tuple[str, int]]:
        links = []
        if "contact" in op.refs:
            links.append((contacts[op.refs["contact"]], NOTE_TO_CONTACT))
        if "case" in op.refs:
            links.append((tickets[op.refs["case"]], NOTE_TO_TICKET))
        return links

    async def _create_notes(
        self, ops: Sequence[CrmOperation], contacts: Mapping[str, str], tickets: Mapping[str, str]
    ) -> Outcomes:
        out: Outcomes = {}
        items: list[tuple[str, dict[str, Any]]] = []
        for op in ops:
            if "contact" not in op.refs:
                out[op.external_key] = _failed("the note of this message is not in HubSpot yet", retryable=True)
            elif "text" not in op.fields or not op.fields.get("created_at"):
                out[op.external_key] = _failed("a new message needs its text and created_at", retryable=False)
            else:
                props = records.note_properties(op.fields, op.refs.get("profile")) | {self.key: op.external_key}
                links = self._note_links(op, contacts, tickets)
                item = {
                    "properties": props,
                    "associations": [_association(i, t) for i, t in links],
                    "objectWriteTraceId": op.external_key,
                }
                items.append((op.external_key, item))
        send = self._send("create notes", self.api.objects.create_with_http_info, NOTES)
        written = await write_batch(send, items, self._key_of, {key: key for key, _ in items})
        for key, outcome in written.items():
            if outcome.ok and outcome.crm_id:
                self.notes.remember(key, outcome.crm_id)
        return out | written

    async def _update_notes(
        self,
        ops: Sequence[CrmOperation],
        existing: Mapping[str, str],
        contacts: Mapping[str, str],
        tickets: Mapping[str, str],
    ) -> Outcomes:
        by_id = {existing[op.external_key]: op.external_key for op in ops}
        items = [
            (
                op.external_key,
                {
                    "id": existing[op.external_key],
                    "properties": records.note_properties(op.fields, op.refs.get("profile")),
                },
            )
            for op in ops
        ]
        send = self._send("update notes", self.api.objects.update_with_http_info, NOTES)
        written = await write_batch(send, items, lambda r: by_id.get(str(r.get("id"))), by_id)
        for key, outcome in written.items():
            if not outcome.ok and outcome.error and outcome.error.startswith("OBJECT_NOT_FOUND"):
                self.notes.forget(key)  # deleted in HubSpot since: the retry creates it again
        # A note found again (a retried create) may need the associations it was created with.
        for type_id, to in ((NOTE_TO_CONTACT, CONTACTS), (NOTE_TO_TICKET, TICKETS)):
            links = {
                op.external_key: (existing[op.external_key], other)
                for op in ops
                if written[op.external_key].ok
                for other, t in self._note_links(op, contacts, tickets)
                if t == type_id
            }
            written |= await self._associate(NOTES, to, type_id, links)
        return written

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

    async def _archive(self, obj: str, ids: list[str]) -> int:
        for part in chunks(ids):
            reply = await self.api.call(
                f"archive {obj}", self.api.objects.archive_with_http_info, obj, {"inputs": [{"id": i} for i in part]}
            )
            if not reply.ok:
                raise RetryableError(f"HubSpot refused to archive {obj} ({reply.status}); the erase will be retried")
        return len(ids)

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
        reply = await self.api.call("search agent replies", self.api.search_api.do_search_with_http_info, NOTES, body)
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
            text = _plain_text(props.get("hs_note_body") or "")
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
            failed = await self._associate(NOTES, TICKETS, NOTE_TO_TICKET, {external_key: (reply.crm_id, ticket)})
            if failed:
                raise RetryableError(failed[external_key].error or f"could not associate note {reply.crm_id}")
        self.notes.remember(external_key, reply.crm_id)

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

    # ------------------------------------------------------------ check

    async def check(self) -> list[CheckProblem]:
        """Credentials, read scopes and the custom properties, each with the command that fixes it."""
        await self.start()
        try:
            plan = await plan_setup(self.api, self.key)
        except FatalError as e:
            return [
                CheckProblem(
                    problem=e.operator_message,
                    fix="fix the credentials or scopes named, then run `scrm hubspot setup --dry-run`",
                )
            ]
        return plan.problems()


def _plain_text(body: str) -> str:
    """A note body (HTML an agent wrote) as the plain text a social network takes."""
    return html.unescape(_TAG.sub("", _BREAK.sub("\n", body))).strip()
