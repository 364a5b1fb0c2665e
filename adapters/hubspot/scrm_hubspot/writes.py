"""Writing batches to HubSpot in as few requests as the batch caps allow, and never twice.

* **Contacts, with their profile and lead.** HubSpot keeps a profile and a lead as
  properties of the contact, so the adapter declares them ``stored_on`` the contact: the
  sink hands them over in the contact's batch and they go out in the same
  ``contacts/batch/upsert`` input (by the unique ``key_property``), one request per 100
  contacts. A lead or profile update for a contact not in the batch is an upsert of that
  contact's properties, by the same key.
* **Tickets.** A ticket the engine has never written is created with its association
  to the contact in the same request (``tickets/batch/create`` with ``associations``);
  should it exist after all, its unique key refuses the create (``CONFLICT``) and it is
  upserted instead. Tickets that exist, or may (``uncertain``), are upserted by key and
  associated once.
* **Notes** have no unique property (see :mod:`.notes`), so a note is created only when
  it is known not to exist: the engine never wrote it and either its contact was created
  by this deployment (so the contact had no notes but the ones its sinks wrote, which the
  engine knows; remembered in the adapter's durable state, so every worker of a fleet
  knows it) or the contact's notes were read and it is not among them. A note the engine knows (its id in the
  :class:`~scrm_core.WriteBatch`) is updated by id, without a search; so is an agent's
  reply note, which ``reply_sent`` remembered in the adapter's durable state.

Every record is fitted to the account's property definitions first (:mod:`.fit`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from scrm_core import AdapterState, CrmObject, CrmOperation, PlannedWrite, WriteBatch
from scrm_core.errors import RetryableError

from . import records
from .api import HubSpotApi, Reply
from .batches import RecordOutcome, write_batch
from .fit import Fitted, fit_properties
from .keys import LruMap, RecordIds
from .notes import NoteIndex
from .schema import CONTACTS, LEAD_KEY, NOTE_TO_CONTACT, NOTE_TO_TICKET, NOTES, PROFILE_KEY, TICKET_TO_CONTACT, TICKETS
from .settings import HubSpotSettings

__all__ = ["REPLY_NOTE", "Outcomes", "Writer", "association"]

log = logging.getLogger("scrm.hubspot")

Key = tuple[CrmObject, str]
Outcomes = dict[Key, RecordOutcome]
Definitions = dict[str, dict[str, dict[str, Any]]]
REPLY_NOTE = "reply-note:"  # state key prefix: message external key -> the agent's note id
#: State key prefix: a contact this deployment created (so it had no notes but the ones its
#: sinks wrote, which the engine knows or marks uncertain). Kept in the adapter's durable
#: state, so every worker of a fleet knows it, not only the one whose sink created it.
NEW_CONTACT = "new-contact:"
_ID_OBJECTS = {CrmObject.contact: CONTACTS, CrmObject.case: TICKETS}  # found by key through self.ids
_ON_CONTACT = {CrmObject.contact, CrmObject.profile, CrmObject.lead}


def association(to_id: str, type_id: int) -> dict[str, Any]:
    return {"to": {"id": to_id}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}


def _failed(error: str, *, retryable: bool) -> RecordOutcome:
    return RecordOutcome.failed(error, retryable=retryable)


class Writer:
    def __init__(
        self,
        api: HubSpotApi,
        config: HubSpotSettings,
        state: AdapterState,
        definitions: Callable[[], Awaitable[Definitions]],
    ) -> None:
        self.api = api
        self.config = config
        self.key = config.key_property
        self.state = state
        self.definitions = definitions
        self.ids = RecordIds(api)
        self.notes = NoteIndex(api, self.key)
        self.linked: LruMap[tuple[str, str, str], bool] = LruMap(100_000)  # (object, id, other id) associated
        self._new_contacts: LruMap[str, bool] = LruMap(100_000)  # contact ids this process created
        self._unanswered: set[Key] = set()  # sent in a call that failed after it may have landed

    def _send(self, what: str, method: Callable[..., Any], *path: str) -> Callable[[list[dict[str, Any]]], Any]:
        async def send(inputs: list[dict[str, Any]]) -> Reply:
            return await self.api.call(what, method, *path, {"inputs": inputs})

        return send

    def _key_of(self, result: dict[str, Any]) -> str | None:
        return result.get("objectWriteTraceId") or (result.get("properties") or {}).get(self.key)

    def _uncertain(self, batch: WriteBatch, op: CrmOperation) -> bool:
        return batch.is_uncertain(op) or (op.object, op.external_key) in self._unanswered

    async def _fit(self, obj: str, props: dict[str, str], who: str) -> dict[str, str]:
        fitted = fit_properties(obj, (await self.definitions()).get(obj, {}), props)
        for note in fitted.notes:
            log.info("HubSpot %s: %s", who, note)
        return fitted.properties

    async def apply(self, batch: WriteBatch) -> Outcomes:
        kinds = {op.object for op in batch}
        # Ids the engine's state store holds (also of the records the ops refer to, which
        # another worker of a fleet may have written): no read by key for these.
        for (obj, key), record_id in batch.known.items():
            if obj in _ID_OBJECTS:
                self.ids.remember(_ID_OBJECTS[obj], self.key, key, record_id)
        try:
            if kinds <= _ON_CONTACT:
                return await self.contacts(batch)
            if kinds == {CrmObject.case}:
                return await self.cases(batch)
            if kinds == {CrmObject.message}:
                return await self.messages(batch)
        except RetryableError:
            self._unanswered.update((op.object, op.external_key) for op in batch)
            raise
        raise ValueError(f"HubSpot: one apply() cannot write {sorted(k.value for k in kinds)} together")

    # ------------------------------------------------------------ contacts, with profiles and leads

    async def contacts(self, batch: WriteBatch) -> Outcomes:
        out: Outcomes = {}
        units: dict[str, list[CrmOperation]] = {}
        for op in batch:
            contact = op.external_key if op.object is CrmObject.contact else op.refs.get("contact")
            if contact is None:
                out[(op.object, op.external_key)] = _failed(
                    f"a {op.object.value} needs refs['contact']: HubSpot keeps it on the contact", retryable=False
                )
                continue
            units.setdefault(contact, []).append(op)
        items: list[tuple[str, dict[str, Any]]] = []
        members: dict[str, list[CrmOperation]] = {}
        for contact, ops in units.items():
            props: dict[str, str] = {}
            kept: list[CrmOperation] = []
            for op in ops:
                if any(o.object is op.object for o in kept):  # two profiles (linked) of one contact
                    out[(op.object, op.external_key)] = _failed(
                        f"another {op.object.value} of this contact is in the same batch", retryable=True
                    )
                    continue
                kept.append(op)
                props |= self._properties_of(op)
            members[contact] = kept
            properties = await self._fit(CONTACTS, props, contact)
            items.append((contact, {"idProperty": self.key, "id": contact, "properties": properties,
                                    "objectWriteTraceId": contact}))  # fmt: skip
        send = self._send("upsert contacts", self.api.objects.upsert_with_http_info, CONTACTS)
        written = await write_batch(send, items, self._key_of, {key: key for key, _ in items})
        created: dict[str, str] = {}
        for contact, outcome in written.items():
            if outcome.ok and outcome.crm_id:
                self.ids.remember(CONTACTS, self.key, contact, outcome.crm_id)
                if outcome.new:
                    self._new_contacts.put(outcome.crm_id, True)
                    created[NEW_CONTACT + outcome.crm_id] = "1"
            for op in members[contact]:
                out[(op.object, op.external_key)] = outcome
                if outcome.ok and outcome.crm_id and op.object is not CrmObject.contact:
                    prop = PROFILE_KEY if op.object is CrmObject.profile else LEAD_KEY
                    self.ids.remember(CONTACTS, prop, op.external_key, outcome.crm_id)
        if created:
            await self.state.put_many(created)
        return out

    def _properties_of(self, op: CrmOperation) -> dict[str, str]:
        if op.object is CrmObject.contact:
            return records.contact_properties(op.fields)
        if op.object is CrmObject.profile:
            return records.profile_properties(op.external_key, op.fields)
        return records.lead_properties(op.external_key, op.fields, self.config)

    async def contact_ids(self, ops: Sequence[CrmOperation], out: Outcomes) -> dict[str, str]:
        """Contact ids of the ops' ``refs["contact"]``; ops whose contact is unknown get their outcome."""
        wanted = [op.refs["contact"] for op in ops if "contact" in op.refs]
        found = await self.ids.find(CONTACTS, self.key, wanted)
        for op in ops:
            contact = op.refs.get("contact")
            if contact is not None and contact not in found:
                out[(op.object, op.external_key)] = _failed(f"contact {contact} is not in HubSpot yet", retryable=True)
        return found

    # ------------------------------------------------------------ tickets

    async def cases(self, batch: WriteBatch) -> Outcomes:
        out: Outcomes = {}
        contacts = await self.contact_ids(batch, out)
        pending = [op for op in batch if (op.object, op.external_key) not in out]
        new = [
            op
            for op in pending
            if not batch.known_id(op)
            and not self._uncertain(batch, op)
            and not self.ids.known(TICKETS, self.key, op.external_key)
        ]
        created = await self._create_tickets(new, contacts)
        out |= {k: v for k, v in created.items() if v.code != "CONFLICT"}
        existing = [op for op in pending if (op.object, op.external_key) not in out]  # incl. creates refused: exist
        out |= await self._upsert_tickets(existing, contacts)
        return out

    def _remembered(self, op: CrmOperation) -> bool:
        return self.ids.known(TICKETS, self.key, op.external_key) is not None

    async def _create_tickets(self, ops: Sequence[CrmOperation], contacts: Mapping[str, str]) -> Outcomes:
        items: list[tuple[str, dict[str, Any]]] = []
        for op in ops:
            props = records.ticket_properties(op.fields, self.config, new=True) | {self.key: op.external_key}
            links = [association(contacts[op.refs["contact"]], TICKET_TO_CONTACT)] if "contact" in op.refs else []
            properties = await self._fit(TICKETS, props, op.external_key)
            items.append((op.external_key, {"properties": properties, "associations": links,
                                            "objectWriteTraceId": op.external_key}))  # fmt: skip
        send = self._send("create tickets", self.api.objects.create_with_http_info, TICKETS)
        written = await write_batch(send, items, self._key_of, {key: key for key, _ in items})
        out: Outcomes = {}
        for op in ops:
            outcome = written[op.external_key]
            out[(op.object, op.external_key)] = outcome
            if outcome.ok and outcome.crm_id:
                self.ids.remember(TICKETS, self.key, op.external_key, outcome.crm_id)
                if "contact" in op.refs:
                    self.linked.put((TICKETS, outcome.crm_id, contacts[op.refs["contact"]]), True)
        return out

    async def _upsert_tickets(self, ops: Sequence[CrmOperation], contacts: Mapping[str, str]) -> Outcomes:
        items = []
        for op in ops:
            props = records.ticket_properties(op.fields, self.config, new="status" in op.fields)
            items.append((op.external_key, {"idProperty": self.key, "id": op.external_key,
                                            "properties": await self._fit(TICKETS, props, op.external_key),
                                            "objectWriteTraceId": op.external_key}))  # fmt: skip
        send = self._send("upsert tickets", self.api.objects.upsert_with_http_info, TICKETS)
        written = await write_batch(send, items, self._key_of, {key: key for key, _ in items})
        for key, outcome in written.items():
            if outcome.ok and outcome.crm_id:
                self.ids.remember(TICKETS, self.key, key, outcome.crm_id)
        links = {
            op.external_key: (outcome.crm_id, contacts[op.refs["contact"]])
            for op in ops
            if "contact" in op.refs
            for outcome in [written.get(op.external_key)]
            if outcome is not None and outcome.ok and outcome.crm_id
        }
        linked = await self.associate(TICKETS, CONTACTS, TICKET_TO_CONTACT, links)
        out: Outcomes = {}
        for op in ops:
            out[(op.object, op.external_key)] = linked.get(op.external_key) or written[op.external_key]
        return out

    async def associate(
        self, obj: str, to: str, type_id: int, links: Mapping[str, tuple[str | None, str]]
    ) -> dict[str, RecordOutcome]:
        """Associate records (key -> (id, other id)); keys whose association failed get an outcome."""
        todo = {k: (i, o) for k, (i, o) in links.items() if i and not self.linked.get((obj, i, o))}
        out: dict[str, RecordOutcome] = {}
        items = list(todo.items())
        for part in [items[i : i + 100] for i in range(0, len(items), 100)]:
            inputs = [{"from": {"id": i}, **association(o, type_id)} for _, (i, o) in part]
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
                    self.linked.put((obj, str(i), o), True)
        return out

    # ------------------------------------------------------------ notes

    async def messages(self, batch: WriteBatch) -> Outcomes:
        out: Outcomes = {}
        contacts = await self.contact_ids(batch, out)
        tickets = await self.ids.find(TICKETS, self.key, [op.refs["case"] for op in batch if "case" in op.refs])
        for op in batch:
            case = op.refs.get("case")
            if case is not None and case not in tickets and (op.object, op.external_key) not in out:
                out[(op.object, op.external_key)] = _failed(f"case {case} is not in HubSpot yet", retryable=True)
        pending = [op for op in batch if (op.object, op.external_key) not in out]
        existing = await self._note_ids(batch, pending, contacts)
        creates = [op for op in pending if op.external_key not in existing]
        updates = [op for op in pending if op.external_key in existing]
        out |= await self._create_notes(creates, contacts, tickets)
        out |= await self._update_notes(updates, existing, contacts, tickets)
        return out

    async def _note_ids(
        self, batch: WriteBatch, ops: Sequence[CrmOperation], contacts: Mapping[str, str]
    ) -> dict[str, str]:
        """Note ids of the messages that exist; a note is created only when this says it does not."""
        found: dict[str, str] = {}
        for op in ops:
            note_id = batch.known_id(op) or self.notes.known(op.external_key)
            if note_id:
                found[op.external_key] = note_id
        outbound = [op.external_key for op in ops if op.fields.get("direction") == "outbound"]
        outbound = [key for key in outbound if key not in found]
        if outbound:
            marked = await self.state.get_many([REPLY_NOTE + key for key in outbound])
            found |= {key.removeprefix(REPLY_NOTE): note_id for key, note_id in marked.items()}
        await self._recall_new_contacts([contacts[c] for op in ops if (c := op.refs.get("contact", "")) in contacts])
        look: list[CrmOperation] = []
        for op in ops:
            if op.external_key in found:
                continue
            contact_id = contacts.get(op.refs.get("contact", ""))
            fresh_contact = contact_id is not None and self._new_contacts.get(contact_id) is not None
            if self._uncertain(batch, op) or not fresh_contact:
                look.append(op)
        if look:
            with_contact = {op.external_key: contacts[op.refs["contact"]] for op in look if "contact" in op.refs}
            found |= await self.notes.existing([op.external_key for op in look], with_contact)
            self._unanswered.difference_update((op.object, op.external_key) for op in look)
        return found

    async def _recall_new_contacts(self, contact_ids: Sequence[str]) -> None:
        """Which of these contacts this deployment created (another worker's sink, or this
        process before a restart): one read of the adapter's state for those not in memory."""
        unknown = [cid for cid in dict.fromkeys(contact_ids) if self._new_contacts.get(cid) is None]
        if unknown:
            for key in await self.state.get_many([NEW_CONTACT + cid for cid in unknown]):
                self._new_contacts.put(key.removeprefix(NEW_CONTACT), True)

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
            if not op.refs and "created_at" not in op.fields:  # an edit, redaction or link of a note not found
                out[(op.object, op.external_key)] = _failed(
                    "the note of this message is not in HubSpot yet", retryable=True
                )
                continue
            if "text" not in op.fields or not op.fields.get("created_at"):
                out[(op.object, op.external_key)] = _failed(
                    "a new message needs its text and created_at", retryable=False
                )
                continue
            props = records.note_properties(op.fields, op.refs.get("profile")) | {self.key: op.external_key}
            item = {
                "properties": await self._fit(NOTES, props, op.external_key),
                "associations": [association(i, t) for i, t in self._note_links(op, contacts, tickets)],
                "objectWriteTraceId": op.external_key,
            }
            items.append((op.external_key, item))
        send = self._send("create notes", self.api.objects.create_with_http_info, NOTES)
        written = await write_batch(send, items, self._key_of, {key: key for key, _ in items})
        for key, outcome in written.items():
            out[(CrmObject.message, key)] = outcome
            if outcome.ok and outcome.crm_id:
                self.notes.remember(key, outcome.crm_id)
        return out

    async def _update_notes(
        self,
        ops: Sequence[CrmOperation],
        existing: Mapping[str, str],
        contacts: Mapping[str, str],
        tickets: Mapping[str, str],
    ) -> Outcomes:
        by_id = {existing[op.external_key]: op.external_key for op in ops}
        items = []
        for op in ops:
            props = records.note_properties(op.fields, op.refs.get("profile"))
            fitted = await self._fit(NOTES, props, op.external_key)
            items.append((op.external_key, {"id": existing[op.external_key], "properties": fitted}))
        send = self._send("update notes", self.api.objects.update_with_http_info, NOTES)
        written = await write_batch(send, items, lambda r: by_id.get(str(r.get("id"))), by_id)
        for key, outcome in written.items():
            if outcome.ok:
                self.notes.remember(key, existing[key])
            elif outcome.code == "OBJECT_NOT_FOUND":
                self.notes.forget(key)  # deleted in HubSpot since: the retry creates it again
                written[key] = _failed(outcome.error or "the note was deleted in HubSpot", retryable=True)
        # A note found again (a retried create) or a link added later needs its associations.
        for type_id, to in ((NOTE_TO_CONTACT, CONTACTS), (NOTE_TO_TICKET, TICKETS)):
            links = {
                op.external_key: (existing[op.external_key], other)
                for op in ops
                if written[op.external_key].ok
                for other, t in self._note_links(op, contacts, tickets)
                if t == type_id
            }
            written |= await self.associate(NOTES, to, type_id, links)
        return {(CrmObject.message, key): outcome for key, outcome in written.items()}

    # ------------------------------------------------------------ preview (scrm run --dry-run)

    async def _read(self, obj: str, ids: list[str], by: str | None, props: list[str]) -> dict[str, dict[str, str]]:
        """Current properties of records, by id or by a unique property (batch read: writes nothing)."""
        found: dict[str, dict[str, str]] = {}
        for part in [ids[i : i + 100] for i in range(0, len(ids), 100)]:
            body: dict[str, Any] = {"inputs": [{"id": i} for i in part], "properties": sorted({*props, self.key})}
            if by:
                body["idProperty"] = by
            reply = await self.api.call(f"read {obj}", self.api.objects.read_with_http_info, obj, body)
            for result in (reply.body or {}).get("results") or [] if reply.ok else []:
                properties = result.get("properties") or {}
                found[str(properties.get(by) if by else result["id"])] = {"id": str(result["id"]), **properties}
        return found

    async def preview(self, batch: WriteBatch) -> list[PlannedWrite]:
        obj = batch[0].object
        planned: dict[Key, tuple[str, str, Fitted]] = {}  # op -> (HubSpot object, lookup key, fitted)
        definitions = await self.definitions()
        for op in batch:
            if obj in _ON_CONTACT:
                target, lookup = (
                    CONTACTS,
                    op.external_key if op.object is CrmObject.contact else op.refs.get("contact", ""),
                )
                props = self._properties_of(op)
            elif obj is CrmObject.case:
                target, lookup = TICKETS, op.external_key
                props = records.ticket_properties(op.fields, self.config, new="status" in op.fields)
            else:
                target, lookup = NOTES, batch.known_id(op) or ""
                props = records.note_properties(op.fields, op.refs.get("profile"))
            planned[(op.object, op.external_key)] = (
                target,
                lookup,
                fit_properties(target, definitions.get(target, {}), props),
            )
        by = None if obj is CrmObject.message else self.key
        wanted = sorted({lookup for _, lookup, _ in planned.values() if lookup})
        names = sorted({name for _, _, fitted in planned.values() for name in fitted.properties})
        target = next(iter(planned.values()))[0]
        current = await self._read(target, wanted, by, names)
        out = []
        for op in batch:
            target, lookup, fitted = planned[(op.object, op.external_key)]
            now = current.get(lookup)
            changes = {
                name: (None if now is None else now.get(name), value)
                for name, value in fitted.properties.items()
                if now is None or (now.get(name) or "") != value
            }
            notes = list(fitted.notes)
            if now is None and target == NOTES:
                notes.append("created unless its contact's notes already hold it (notes have no unique key)")
            out.append(
                PlannedWrite(
                    object=op.object,
                    external_key=op.external_key,
                    action="create" if now is None else "update",
                    crm_object=target,
                    crm_id=None if now is None else now["id"],
                    changes=changes,
                    notes=notes,
                )
            )
        return out
