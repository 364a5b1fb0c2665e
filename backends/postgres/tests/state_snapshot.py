"""Everything a state store holds, read through the StateStore interface only, so a copy can
be compared with its original without trusting the code that copied it."""

from __future__ import annotations

from typing import Any

from scrm.store import StateStore

from scrm_core.models import CrmObject

ALL = 10**7


def snapshot(
    store: StateStore,
    message_keys: list[str],
    *,
    webhook_sources: tuple[str, ...] = ("hooks",),
    adapters: tuple[str, ...] = (),
) -> Any:
    """``message_keys``: the store keys of the messages to compare (the interface has no listing)."""
    profiles = store.profiles_page(limit=ALL)
    keys = [p.profile.key for p in profiles]
    people = sorted({p.person_key for p in profiles})
    outbox = store.outbox_take(ALL)
    crm_keys = sorted({i.op.external_key for i in outbox} | {f"scrm:{k}" for k in keys})
    model = store.model("intent")
    return {
        "counts": dict(store.counts()),
        "checkpoints": [(c.source, c.cursor, c.events, c.updated_at) for c in store.checkpoints()],
        "profiles": profiles,
        "people": [store.person(person) for person in people],  # conversations, links, CRM ids
        "messages": store.messages(message_keys),
        "unseen": store.unseen([f"c:{k}" for k in message_keys]),
        "outbox": [(i.seq, i.op, i.attempts) for i in outbox],
        "crm_ids": {obj: store.crm_ids(obj, crm_keys) for obj in CrmObject},
        "dead_letters": [
            (d.id, d.source, d.reason, d.locator, d.op, d.payload, d.attempts, d.code, d.retryable, d.created_at)
            for d in store.dead_letters(ALL)
        ],
        "dead_letter_keys": store.dead_letter_keys(),
        "pending_links": store.pending_links(ALL),
        "webhooks": [store.stored_webhooks(source, 0, ALL) for source in webhook_sources],
        "replies": store.replies((), ALL),
        "identity_links": store.identity_links(),
        "labels": store.label_examples(),
        "model": None if model is None else (model.id, model.data, model.report, model.trained_until),
        "adapter_state": {a: store.adapter_state_prefixed(a, "") for a in adapters},
        "audit": [(at, e) for at, e in store.audit_log(ALL) if e.action != "state.migrated"],
    }
