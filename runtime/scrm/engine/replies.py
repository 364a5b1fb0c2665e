"""Replies going out: from ``scrm reply`` and from agents in the CRM, to the network, once.

The state store's ``replies`` table is the outbox towards the networks. A reply is sent
with an idempotency key fixed when it was queued (for a CRM reply: derived from the CRM
record's id, so finding the same record twice queues it once). Sending is:

1. claim the reply (``sending``, one attempt counted; another sender's claim blocks it
   until ``claim_seconds`` pass, so two processes never send it at the same time);
2. the first time only, ``scrm_before_reply`` may hold, change or refuse it; the final
   text is saved before anything leaves, so every retry sends the same text;
3. ``send_reply`` with the key: the adapter posts once per key, also after a crash or a
   lost answer;
4. for a CRM reply, ``CrmAdapter.reply_sent`` marks the agent's record as sent;
5. the sent message is committed through ingest (it reaches the CRM as an outbound
   message through the normal outbox), and only then the reply is marked ``sent``.

A crash between any two steps leaves the reply ``sending``; the next attempt repeats the
steps with the same key, and each step is idempotent.

Networks whose adapter declares ``ReplyGuarantee.at_most_once`` (no key, no way to look)
get one try: just before ``send_reply`` the reply's ``error`` is set to :data:`POSTING`,
and a claim that finds it there (the process died, or was stopped, during the post) does
not post again: the reply fails with a reason that tells the agent to check the thread.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from scrm.hooks import Hooks
from scrm.store import AsyncStore, AuditEntry, NewReply, ReplyRecord, ReplyStatus, StateStore
from scrm_core.adapters import (
    CrmAdapter,
    CrmCapability,
    NetworkAdapter,
    NetworkCapability,
    PendingReply,
    ReplyGuarantee,
    SentReply,
)
from scrm_core.config import RepliesConfig
from scrm_core.errors import RetryableError, SkippableError
from scrm_core.models import ReplyDraft, external_key

from .crm_pages import crm_pages

__all__ = ["CRM_REPLIES", "REPLIES", "ReplyCounts", "ReplySender", "crm_reply_key"]

log = logging.getLogger("scrm.replies")

#: The mark of an at-most-once reply whose post may have started (see the module doc).
POSTING = "posting: no answer from the network yet"
MAY_HAVE_POSTED = (
    "the network may or may not have posted this reply (scrm stopped while posting it, and this network "
    "offers no way to check or to post exactly once); look at the thread and send it again by hand if missing"
)

#: Checkpoint names; a source name cannot contain "@", so these never clash with one.
CRM_REPLIES = "@crm-replies"
REPLIES = "@replies"


def crm_reply_key(crm: str, crm_id: str) -> str:
    """The idempotency key of an agent's reply: the same CRM record always gives the same key."""
    return "scrm-" + hashlib.sha256(f"{crm}:{crm_id}".encode()).hexdigest()[:32]


@dataclass
class ReplyCounts:
    collected: int = 0  # replies found in the CRM
    sent: int = 0
    held: int = 0
    refused: int = 0
    failed: int = 0
    retried: int = 0


class ReplySender:
    """Sends queued replies through the network adapters that can reply."""

    def __init__(
        self,
        store: AsyncStore,
        hooks: Hooks,
        crm: CrmAdapter,
        sources: dict[str, NetworkAdapter],
        config: RepliesConfig,
    ) -> None:
        self.store = store
        self.hooks = hooks
        self.crm = crm
        self.config = config
        self.counts = ReplyCounts()
        # The first source of each network that can reply (config order).
        self.networks: dict[str, NetworkAdapter] = {}
        for adapter in sources.values():
            if NetworkCapability.reply in type(adapter).capabilities:
                self.networks.setdefault(adapter.network, adapter)

    async def collect_from_crm(self) -> int:
        """Queue the replies agents wrote in the CRM since the saved cursor."""
        if CrmCapability.outbound_replies not in type(self.crm).capabilities:
            return 0
        found = 0
        async for page, new_cursor in crm_pages(self.store, CRM_REPLIES, self.crm.pending_replies):
            replies = [
                NewReply(
                    idempotency_key=crm_reply_key(self.crm.name, r.crm_id),
                    origin="crm",
                    conversation_key=r.conversation_key,
                    in_reply_to=r.in_reply_to,
                    text=r.text,
                    crm_id=r.crm_id,
                )
                for r in page
            ]
            await self.store.call(StateStore.enqueue_replies, replies, checkpoint=(CRM_REPLIES, new_cursor))
            found += len(page)
            self.counts.collected += len(page)
        return found

    async def due(self) -> list[ReplyRecord]:
        return await self.store.call(StateStore.replies, [ReplyStatus.pending, ReplyStatus.sending], limit=1000)

    async def send(self, reply: ReplyRecord) -> tuple[ReplyRecord, SentReply] | None:
        """Steps 1-4 for one reply; the sent message, or None if it did not go out (now)."""
        claimed = await self.store.call(StateStore.claim_reply, reply.id, self.config.claim_seconds)
        if claimed is None:
            return None  # settled meanwhile, or another sender holds it
        try:
            return await self._send_claimed(claimed)
        except BaseException:
            # Cancelled or failed mid-way: give the claim back; the key keeps a retry single
            # (an at-most-once post that may have started keeps its mark: it is not retried).
            current = await self.store.call(StateStore.reply, claimed.id)
            posting = current is not None and current.error == POSTING
            error = POSTING if posting else "interrupted; will be retried"
            await self.store.call(StateStore.update_reply, claimed.id, ReplyStatus.pending, error=error)
            raise

    async def _send_claimed(self, reply: ReplyRecord) -> tuple[ReplyRecord, SentReply] | None:
        network = reply.conversation_key.partition(":")[0]
        adapter = self.networks.get(network)
        if adapter is None:
            await self._settle(reply, ReplyStatus.failed, f"no enabled source for network {network!r} can send replies")
            return None
        at_most_once = type(adapter).reply_guarantee is ReplyGuarantee.at_most_once
        if at_most_once and reply.network_message_id is not None:
            # Posted, and the network's answer was kept; only recording it was cut short.
            self.counts.sent += 1
            await self.store.call(
                StateStore.update_reply,
                reply.id,
                ReplyStatus.sent,
                network_message_id=reply.network_message_id,
                audit=[AuditEntry("reply.sent", reply.conversation_key, f"reply {reply.id} ({reply.origin})")],
            )
            return None
        if at_most_once and reply.error == POSTING:
            await self._settle(reply, ReplyStatus.failed, MAY_HAVE_POSTED)
            return None
        if not reply.approved:
            checked = await self._before_reply(reply)
            if checked is None:
                return None
            reply = checked
        if at_most_once:
            reply = await self.store.call(StateStore.update_reply, reply.id, ReplyStatus.sending, error=POSTING)
        try:
            sent = await adapter.send_reply(reply.in_reply_to, reply.text, reply.idempotency_key)
        except RetryableError as exc:
            self.counts.retried += 1
            await self.store.call(StateStore.update_reply, reply.id, ReplyStatus.pending, error=exc.operator_message)
            log.warning("reply %d: %s; it is tried again later", reply.id, exc.operator_message)
            return None
        except SkippableError as exc:
            await self._settle(reply, ReplyStatus.failed, exc.operator_message)
            return None
        if at_most_once:  # posted: never again, whatever happens before it is recorded
            reply = await self.store.call(
                StateStore.update_reply, reply.id, ReplyStatus.sending, network_message_id=sent.message.id
            )
        if reply.origin == "crm" and reply.crm_id is not None:
            pending = PendingReply(
                crm_id=reply.crm_id,
                conversation_key=reply.conversation_key,
                in_reply_to=reply.in_reply_to,
                text=reply.text,
            )
            await self.crm.reply_sent(pending, external_key(sent.message.key), sent.message.id)
        return reply, sent

    async def _before_reply(self, reply: ReplyRecord) -> ReplyRecord | None:
        """Run ``scrm_before_reply`` once; save the outcome before anything is sent."""
        draft = ReplyDraft(conversation_key=reply.conversation_key, in_reply_to=reply.in_reply_to, text=reply.text)
        if self.hooks.has("scrm_before_reply"):
            draft = await self.hooks.before_reply(draft)
        if draft.refused:
            await self._settle(reply, ReplyStatus.refused, draft.refused)
            return None
        if draft.hold:
            self.counts.held += 1
            await self.store.call(
                StateStore.update_reply,
                reply.id,
                ReplyStatus.held,
                text=draft.text,
                audit=[AuditEntry("reply.held", reply.conversation_key, f"reply {reply.id} waits for approval")],
            )
            return None
        return await self.store.call(
            StateStore.update_reply, reply.id, ReplyStatus.sending, text=draft.text, approved=True
        )

    async def mark_sent(self, reply: ReplyRecord, sent: SentReply) -> ReplyRecord:
        """Step 5, after the sent message has been committed."""
        self.counts.sent += 1
        return await self.store.call(
            StateStore.update_reply,
            reply.id,
            ReplyStatus.sent,
            network_message_id=sent.message.id,
            audit=[AuditEntry("reply.sent", sent.message.key, f"reply {reply.id} ({reply.origin})")],
        )

    async def _settle(self, reply: ReplyRecord, status: ReplyStatus, reason: str) -> None:
        if status is ReplyStatus.refused:
            self.counts.refused += 1
        else:
            self.counts.failed += 1
        log.warning("reply %d %s: %s", reply.id, status.value, reason)
        await self.store.call(
            StateStore.update_reply,
            reply.id,
            status,
            error=reason,
            audit=[AuditEntry(f"reply.{status.value}", reply.conversation_key, reason)],
        )
