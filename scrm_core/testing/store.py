"""Conformance suite for state-store back ends: what every :class:`~scrm_core.store.StateStore`
must do, in one subclass::

    from scrm_core.testing.store import StateStoreConformance

    class TestPostgresStore(StateStoreConformance):
        def make_store(self, tmp_path):
            return PostgresStore(dsn_for(tmp_path))  # not migrated: the suite calls migrate()

``make_store`` is called again with the same ``tmp_path`` to reopen the same state (a
second connection); each ``tmp_path`` must start empty. Optional: :meth:`~StateStoreConformance.cells`
(every stored value, as text) lets the suite prove that secrets are kept redacted and that
an erase leaves nothing of the person behind.

Every test drives the synchronous interface, except those of the async wrapper
(:class:`~scrm_core.store.AsyncStore`), which run it with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ..models import Conversation, CrmObject, CrmOperation, SocialProfile
from ..store import (
    AsyncStore,
    AuditEntry,
    LinkStatus,
    MessageRecord,
    NewDeadLetter,
    NewLabelExample,
    NewReply,
    PageCommit,
    ProfileRecord,
    Refusal,
    ReplyStatus,
    Settlement,
    StateStore,
)
from ..store.base import INTERFACE

__all__ = ["StateStoreConformance", "conversation", "op", "person_page", "profile"]

SECRET = "sk_live_conformance0123456789abcdef"  # noqa: S105  (a made-up credential the redaction layer knows the shape of)


def profile(account: str, **more: str) -> SocialProfile:
    return SocialProfile(
        network="demo", account_id=account, handle=f"@{account}", email=f"{account}@example.com", **more
    )


def conversation(root: str, started_by: str, **more: object) -> Conversation:
    return Conversation.model_validate(
        {
            "network": "demo",
            "root_id": root,
            "started_by": started_by,
            "subject": "hello",
            "message_count": 1,
            "first_at": datetime(2026, 1, 1, tzinfo=UTC),
            "labels": ["support"],
        }
        | more
    )


def op(obj: CrmObject, key: str, **refs: str) -> CrmOperation:
    return CrmOperation(object=obj, external_key=f"scrm:{key}", fields={"n": 1, "at": "x"}, refs=refs)


def person_page(account: str, cursor: str, source: str = "demo") -> PageCommit:
    """A page where ``account`` starts a thread with one message, with the CRM ops for it."""
    p = profile(account)
    msg = f"demo:m-{account}"
    return PageCommit(
        source=source,
        cursor=cursor,
        event_keys=[f"c:{msg}"],
        profiles=[ProfileRecord(p, p.key, "fp1")],
        conversations=[conversation(f"m-{account}", p.key)],
        messages=[MessageRecord(msg, msg, p.key)],
        ops=[
            op(CrmObject.contact, p.key),
            op(CrmObject.case, msg, contact=f"scrm:{p.key}"),
            op(CrmObject.message, msg, case=f"scrm:{msg}"),
        ],
        audit=[AuditEntry("page", source)],
    )


def _label(key: str, label: str, text: str = "text", source: str = "localcrm") -> NewLabelExample:
    return NewLabelExample(key, label.partition(":")[0], label, text, source)


class StateStoreConformance:
    """Subclass with ``make_store``; pytest collects the tests of the subclass."""

    def make_store(self, tmp_path: Path) -> StateStore:
        """A store for the state kept under ``tmp_path``, not migrated yet."""
        raise NotImplementedError

    def cells(self, tmp_path: Path) -> Iterable[tuple[str, str, str]] | None:
        """(table, column, value as text) of every value the store under ``tmp_path`` keeps,
        read after the store is closed; None (the default) skips the tests that need it."""
        return None

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[StateStore]:
        s = self.make_store(tmp_path)
        s.migrate()
        yield s
        s.close()

    def _cells(self, tmp_path: Path) -> list[tuple[str, str, str]]:
        found = self.cells(tmp_path)
        if found is None:
            pytest.skip("the back end's test class does not implement cells()")
        return list(found)

    # ------------------------------------------------------------ lifecycle

    def test_migrate_is_idempotent(self, tmp_path: Path) -> None:
        s = self.make_store(tmp_path)
        version = s.migrate()
        assert version >= 1 and s.migrate() == version
        s.close()

    def test_reopen_keeps_everything(self, tmp_path: Path) -> None:
        s = self.make_store(tmp_path)
        version = s.migrate()
        s.commit_page(person_page("alice", "cur-9"))
        counts = dict(s.counts())
        s.close()

        s = self.make_store(tmp_path)
        assert s.migrate() == version
        assert s.counts() == counts
        assert s.checkpoint("demo") == "cur-9"
        assert s.unseen(["c:demo:m-alice"]) == set()
        assert len(s.outbox_take(10)) == 3
        s.close()

    # ------------------------------------------------------------ commit_page

    def test_commit_page_round_trips_everything(self, store: StateStore) -> None:
        page = person_page("alice", "cur-1")
        page.dead_letters = [
            NewDeadLetter("demo", "bad json", locator="demo.ndjson:3", payload="{oops"),
            NewDeadLetter("sink", "refused", locator="scrm:x", op=op(CrmObject.lead, "x", contact="scrm:c")),
        ]
        store.commit_page(page)

        (record,) = store.profiles(["demo:alice", "demo:nobody"]).values()
        assert record == page.profiles[0]
        assert store.conversations(["demo:m-alice"]) == {"demo:m-alice": page.conversations[0]}
        assert store.messages(["demo:m-alice"])["demo:m-alice"] == page.messages[0]
        assert [item.op for item in store.outbox_take(10)] == list(page.ops)
        rejects = store.dead_letters()
        assert [(d.source, d.locator, d.payload, d.op) for d in rejects] == [
            ("demo", "demo.ndjson:3", "{oops", None),
            ("sink", "scrm:x", "", page.dead_letters[1].op),
        ]
        assert store.audit_log()[0][1] == AuditEntry("page", "demo")
        (cp,) = store.checkpoints()
        assert (cp.source, cp.cursor, cp.events) == ("demo", "cur-1", 1)
        assert cp.updated_at is not None and cp.updated_at.tzinfo is not None
        assert dict(store.counts()) == {
            "profiles": 1,
            "conversations": 1,
            "messages": 1,
            "outbox": 3,
            "dead_letters": 2,
            "seen_events": 1,
        }

    def test_upserts_replace_and_events_accumulate(self, store: StateStore) -> None:
        store.commit_page(person_page("alice", "1"))
        p = profile("alice")
        p.display_name = "Alice"
        store.commit_page(
            PageCommit(
                "demo",
                "2",
                event_keys=["p:demo:alice:2", "d:demo:m-alice"],
                profiles=[ProfileRecord(p, "person:7", "fp2")],
                messages=[
                    MessageRecord("demo:m-alice", "demo:m-alice", p.key, deleted=True, version="v2"),
                    MessageRecord("demo:spam", "demo:spam", p.key, in_crm=False),
                ],
            )
        )
        assert store.profiles([p.key])[p.key] == ProfileRecord(p, "person:7", "fp2")
        found = store.messages(["demo:m-alice"])["demo:m-alice"]
        assert found.deleted and found.version == "v2"
        assert not store.messages(["demo:spam"])["demo:spam"].in_crm
        assert store.checkpoint("demo") == "2"
        assert store.checkpoints()[0].events == 3
        assert store.checkpoint("other") is None

    def test_unseen_dedups_across_pages_and_chunks(self, store: StateStore) -> None:
        keys = [f"c:demo:{i}" for i in range(1200)]  # more than two IN (...) chunks
        store.commit_page(PageCommit("demo", "1", event_keys=keys[:700]))
        assert store.unseen(keys) == set(keys[700:])
        assert store.unseen([]) == set()
        store.commit_page(PageCommit("demo", "2", event_keys=keys[650:750]))  # overlap is ignored
        assert store.counts()["seen_events"] == 750

    @pytest.mark.parametrize(
        "odd", ["nul\x00byte", 'quote"back\\slash', "caf\u00e9 \U0001f600", "tab\tnewline\n", "[1]"]
    )
    def test_keys_with_any_characters_round_trip(self, store: StateStore, odd: str) -> None:
        p = SocialProfile(network="demo", account_id=odd)
        msg = MessageRecord(f"demo:{odd}", f"demo:{odd}", p.key)
        conv = conversation(odd, p.key)
        keys = [f"c:{odd}", "c:plain"]
        assert store.unseen(keys) == set(keys)
        store.commit_page(
            PageCommit("demo", "1", event_keys=keys[:1], profiles=[ProfileRecord(p, p.key, "f")], conversations=[conv])
        )
        store.commit_page(PageCommit("demo", "2", messages=[msg]))
        assert store.unseen(keys) == {"c:plain"}
        assert store.unseen((f"c:{odd}",)) == set()  # any sequence, not only lists
        assert store.profiles([p.key, "demo:x"]) == {p.key: ProfileRecord(p, p.key, "f")}
        assert store.conversations([conv.key]) == {conv.key: conv}
        assert store.messages([msg.key, "demo:nul"]) == {msg.key: msg}
        assert store.counts()["seen_events"] == 1

    def test_commit_page_is_all_or_nothing(self, store: StateStore) -> None:
        store.commit_page(person_page("alice", "cur-1"))
        before = dict(store.counts())
        bad = person_page("bob", "cur-2")
        # The unserialisable op comes after the seen events, profiles, conversations and
        # messages of the page.
        bad.ops = [*bad.ops, CrmOperation(object=CrmObject.message, external_key="scrm:x", fields={"x": object()})]
        with pytest.raises(TypeError):
            store.commit_page(bad)
        assert store.counts() == before
        assert store.checkpoint("demo") == "cur-1"
        assert store.checkpoints()[0].events == 1
        assert store.unseen(["c:demo:m-bob"]) == {"c:demo:m-bob"}
        assert store.profiles(["demo:bob"]) == {}
        assert [e.subject for _, e in store.audit_log()] == ["demo"]
        store.commit_page(person_page("bob", "cur-2"))  # the store is still usable
        assert store.checkpoint("demo") == "cur-2"

    # ------------------------------------------------------------ outbox

    def test_outbox_keeps_order_and_pages_by_seq(self, store: StateStore) -> None:
        ops = [op(CrmObject.message, f"demo:{i}") for i in range(7)]
        store.commit_page(PageCommit("demo", "1", ops=ops[:4]))
        store.commit_page(PageCommit("demo", "2", ops=ops[4:]))
        first = store.outbox_take(5)
        assert [i.op.external_key for i in first] == [o.external_key for o in ops[:5]]
        assert [i.seq for i in first] == sorted(i.seq for i in first)
        rest = store.outbox_take(5, after_seq=first[-1].seq)
        assert [i.op for i in rest] == ops[5:]
        assert store.outbox_depth() == 7
        assert (store.outbox_depth(at_most=4), store.outbox_depth(at_most=7), store.outbox_depth(at_most=0)) == (
            4,
            7,
            0,
        )

    def test_settle_done_failed_retry(self, store: StateStore) -> None:
        a, b, c = op(CrmObject.contact, "demo:a"), op(CrmObject.contact, "demo:b"), op(CrmObject.case, "demo:c")
        store.commit_page(PageCommit("demo", "1", ops=[a, b, c]))
        sa, sb, sc = (i.seq for i in store.outbox_take(10))
        store.outbox_settle(
            Settlement(
                done=[sa],
                crm_ids=[(CrmObject.contact, a.external_key, "003A")],
                failed=[Refusal(sb, "bad field", code="INVALID", fix="fix the field")],
                retry=[sc],
            )
        )
        (left,) = store.outbox_take(10)
        assert (left.seq, left.op, left.attempts) == (sc, c, 1)
        assert store.crm_ids(CrmObject.contact, [a.external_key, b.external_key]) == {a.external_key: "003A"}
        assert store.crm_ids(CrmObject.lead, [a.external_key]) == {}
        (dl,) = store.dead_letters()
        assert (dl.source, dl.reason, dl.locator, dl.op, dl.attempts) == ("sink", "bad field", b.external_key, b, 1)
        assert (dl.code, dl.retryable, dl.fix) == ("INVALID", False, "fix the field")
        assert store.dead_letter_keys() == {(CrmObject.contact, b.external_key)}
        # a CRM id can change (record merged in the CRM): the latest wins
        store.outbox_settle(Settlement(crm_ids=[(CrmObject.contact, a.external_key, "003B")]))
        assert store.crm_ids(CrmObject.contact, [a.external_key]) == {a.external_key: "003B"}

    def test_settle_deletes_exactly_the_done_seqs(self, store: StateStore) -> None:
        ops = [op(CrmObject.message, f"demo:{i}") for i in range(12)]
        seqs = store.commit_page(PageCommit("demo", "1", ops=ops))
        done = [seqs[i] for i in (7, 0, 1, 2, 4, 5, 9, 10, 11, 1)]  # any order, repeats, gaps at 3, 6 and 8
        store.outbox_settle(Settlement(done=done, retry=[seqs[6]]))
        assert [(i.seq, i.attempts) for i in store.outbox_take(100)] == [(seqs[3], 0), (seqs[6], 1), (seqs[8], 0)]
        store.outbox_settle(Settlement(done=[]))
        assert store.outbox_depth() == 3

    def test_commit_page_returns_the_seqs_outbox_take_sees(self, store: StateStore) -> None:
        ops = [op(CrmObject.message, f"demo:{i}") for i in range(9)]
        assert store.commit_page(PageCommit("demo", "0")) == []
        first = store.commit_page(PageCommit("demo", "1", ops=ops[:4], audit=[AuditEntry("a", "b")]))
        (dead,) = store.outbox_take(1)  # a settled seq is never given out again
        store.outbox_settle(Settlement(failed=[Refusal(dead.seq, "refused")]))  # writes dead_letters rows too
        letters = [NewDeadLetter("sink", "x", op=ops[0])]
        second = store.commit_page(PageCommit("demo", "2", ops=ops[4:], dead_letters=letters))
        assert store.commit_page(PageCommit("demo", "3", event_keys=["k"])) == []
        taken = store.outbox_take(100)
        assert [(i.seq, i.op) for i in taken] == list(zip(first[1:] + second, ops[1:], strict=True))
        assert len(first) == 4 and first[0] == dead.seq and second[0] > first[-1]
        store.requeue_dead_letters()
        third = store.commit_page(PageCommit("demo", "4", ops=ops[:2]))
        assert [i.seq for i in store.outbox_take(100, after_seq=second[-1])][-2:] == third

    def test_seqs_are_not_reused_after_the_outbox_empties(self, store: StateStore) -> None:
        store.commit_page(PageCommit("demo", "1", ops=[op(CrmObject.contact, "demo:a")]))
        (item,) = store.outbox_take(1)
        store.outbox_settle(Settlement(done=[item.seq]))
        store.commit_page(PageCommit("demo", "2", ops=[op(CrmObject.contact, "demo:b")]))
        assert store.outbox_take(1, after_seq=item.seq)[0].seq > item.seq

    def test_a_held_back_link_is_queued_once_its_parent_is_written(self, store: StateStore) -> None:
        from ..store import PendingLink

        child = op(CrmObject.message, "demo:m1")
        store.commit_page(PageCommit("demo", "1", ops=[child]))
        (item,) = store.outbox_take(1)
        link = PendingLink(CrmObject.contact, "scrm:demo:a", CrmObject.message, child.external_key, "contact")
        assert store.outbox_settle(Settlement(done=[item.seq], links=[link])) == []
        assert store.pending_links() == [link]
        released = store.outbox_settle(Settlement(crm_ids=[(CrmObject.contact, "scrm:demo:a", "003")]))
        assert [i.op for i in released] == [link.op()]
        assert [i.seq for i in store.outbox_take(10)] == [released[0].seq]
        assert store.pending_links() == []

    def test_ids_that_follow_from_keys_are_not_kept_but_still_release_links(self, store: StateStore) -> None:
        from ..store import PendingLink

        child = op(CrmObject.message, "demo:m1")
        store.commit_page(PageCommit("demo", "1", ops=[child]))
        (item,) = store.outbox_take(1)
        link = PendingLink(CrmObject.contact, "scrm:demo:a", CrmObject.message, child.external_key, "contact")
        store.outbox_settle(Settlement(done=[item.seq], links=[link], keep_ids=False))
        written = [(CrmObject.contact, "scrm:demo:a", "17")]
        released = store.outbox_settle(Settlement(crm_ids=written, keep_ids=False))
        assert [i.op for i in released] == [link.op()]
        assert store.crm_ids(CrmObject.contact, ["scrm:demo:a"]) == {}

    # ------------------------------------------------------------ dead letters

    def test_requeue_moves_only_crm_writes(self, store: StateStore) -> None:
        ops = [op(CrmObject.contact, "demo:a"), op(CrmObject.message, "demo:b", contact="scrm:demo:a")]
        store.commit_page(PageCommit("demo", "1", ops=ops, dead_letters=[NewDeadLetter("demo", "unparseable", "f:1")]))
        seqs = [i.seq for i in store.outbox_take(10)]
        store.outbox_settle(Settlement(failed=[Refusal(seqs[0], "down"), Refusal(seqs[1], "down")]))
        assert store.dead_letter_count() == 3

        assert store.requeue_dead_letters() == 2
        assert [(i.op, i.attempts) for i in store.outbox_take(10)] == [(ops[0], 0), (ops[1], 0)]
        (left,) = store.dead_letters()
        assert (left.op, left.reason) == (None, "unparseable")
        assert store.audit_log(1)[0][1].action == "dlq.requeued"
        assert store.requeue_dead_letters() == 0

    def test_requeue_selected_ids(self, store: StateStore) -> None:
        letters = [NewDeadLetter("sink", "x", op=op(CrmObject.contact, f"demo:{i}")) for i in range(3)]
        store.commit_page(PageCommit("demo", "1", dead_letters=letters))
        ids = [d.id for d in store.dead_letters()]
        assert store.requeue_dead_letters([ids[2], 999]) == 1
        assert [i.op.external_key for i in store.outbox_take(10)] == ["scrm:demo:2"]
        assert [d.id for d in store.dead_letters()] == ids[:2]

    # ------------------------------------------------------------ replies

    def test_replies_are_queued_once_per_key_and_claimed_by_one_sender(self, store: StateStore) -> None:
        new = NewReply("k-1", "cli", "demo:m-1", "m-1", "hello")
        (first,) = store.enqueue_replies([new], checkpoint=("crm@replies", "c1"))
        (again,) = store.enqueue_replies([NewReply("k-1", "cli", "demo:m-1", "m-1", "other text")])
        assert again.id == first.id and again.text == "hello" and first.status is ReplyStatus.pending
        assert store.checkpoint("crm@replies") == "c1"
        claimed = store.claim_reply(first.id, 60)
        assert claimed is not None and claimed.status is ReplyStatus.sending and claimed.attempts == 1
        assert store.claim_reply(first.id, 60) is None, "nobody else may send it meanwhile"
        taken_over = store.claim_reply(first.id, -1)  # the claim has expired
        assert taken_over is not None and taken_over.attempts == 2
        sent = store.update_reply(
            first.id, ReplyStatus.sent, network_message_id="n-9", audit=[AuditEntry("reply.sent", "k-1")]
        )
        assert (sent.status, sent.network_message_id, sent.error) == (ReplyStatus.sent, "n-9", None)
        assert store.claim_reply(first.id, -1) is None, "a settled reply is never claimed"
        assert store.reply(first.id) == sent
        assert store.audit_log(1)[0][1].action == "reply.sent"
        with pytest.raises(KeyError):
            store.reply(999)
        with pytest.raises(KeyError):
            store.update_reply(999, ReplyStatus.failed)

    def test_replies_filter_by_status_and_keep_errors_redacted(self, store: StateStore) -> None:
        a, b, c = store.enqueue_replies(
            [NewReply(f"k-{i}", "crm", "demo:t", "t", f"r{i}", crm_id=f"c{i}") for i in range(3)]
        )
        store.update_reply(b.id, ReplyStatus.held)
        store.update_reply(c.id, ReplyStatus.failed, error=f"refused: api_key={SECRET}")
        assert [r.id for r in store.replies([ReplyStatus.pending])] == [a.id]
        assert [r.id for r in store.replies([ReplyStatus.held, ReplyStatus.failed])] == [b.id, c.id]
        assert [r.id for r in store.replies()] == [a.id, b.id, c.id]
        assert [r.id for r in store.replies(limit=1)] == [a.id]
        failed = store.reply(c.id)
        assert failed.error is not None and SECRET not in failed.error and failed.crm_id == "c2"
        approved = store.update_reply(b.id, ReplyStatus.pending, text="edited", approved=True)
        assert (approved.text, approved.approved) == ("edited", True)

    # ------------------------------------------------------------ webhook inbox

    def test_webhooks_are_kept_once_read_in_order_and_pruned(self, store: StateStore) -> None:
        first = store.store_webhook("hooks", "d1", {"x-sig": "a"}, b'{"n": 1}')
        assert first is not None
        assert store.store_webhook("hooks", "d1", {"x-sig": "a"}, b'{"n": 1}') is None, "a redelivery is kept once"
        second = store.store_webhook("hooks", "d2", {}, b"\x00binary")
        other = store.store_webhook("elsewhere", "d1", {}, b"{}")
        assert second is not None and other is not None and second > first
        found = store.stored_webhooks("hooks", 0, 10)
        assert [(w.id, w.headers, w.body) for w in found] == [
            (first, {"x-sig": "a"}, b'{"n": 1}'),
            (second, {}, b"\x00binary"),
        ]
        assert found[0].received_at.tzinfo is not None
        assert [w.id for w in store.stored_webhooks("hooks", first, 10)] == [second]
        assert store.prune_webhooks("hooks", first, datetime.now(UTC) - timedelta(hours=1)) == 0, "too recent"
        assert store.prune_webhooks("hooks", first, datetime.now(UTC) + timedelta(seconds=5)) == 1
        assert [w.id for w in store.stored_webhooks("hooks", 0, 10)] == [second]
        assert [w.id for w in store.stored_webhooks("elsewhere", 0, 10)] == [other]

    # ------------------------------------------------------------ identity

    def _two_profiles(self, store: StateStore) -> None:
        records = [ProfileRecord(p, p.key, "fp") for p in (profile("ada"), profile("bob"), profile("cy"))]
        store.commit_page(PageCommit("demo", "1", profiles=records))

    def test_link_then_undo_restores_the_person_and_queues_the_crm_copy(self, store: StateStore) -> None:
        self._two_profiles(store)
        repoint = [op(CrmObject.profile, "demo:bob", contact="scrm:demo:ada")]
        made = store.link_identity("demo:bob", "demo:ada", "customer confirmed by DM", True, repoint)
        assert (made.status, made.previous_person_key, made.verified) == (LinkStatus.linked, "demo:bob", True)
        assert store.profiles(["demo:bob"])["demo:bob"].person_key == "demo:ada"
        assert [i.op for i in store.outbox_take(10)] == repoint
        view = store.person("demo:ada")
        assert {p.profile.key for p in view.profiles} == {"demo:ada", "demo:bob"}
        assert [link.id for link in view.links] == [made.id]

        back = [op(CrmObject.profile, "demo:bob", contact="scrm:demo:bob")]
        undone = store.undo_link(made.id, back)
        assert undone.status is LinkStatus.undone and undone.undone_at is not None
        assert undone.evidence == "customer confirmed by DM"
        assert store.profiles(["demo:bob"])["demo:bob"].person_key == "demo:bob"
        assert store.outbox_take(10)[-1].op == back[0]
        assert [a.action for _, a in store.audit_log()][:2] == ["identity.unlinked", "identity.linked"]
        with pytest.raises(ValueError, match="nothing to undo"):
            store.undo_link(made.id, [])
        with pytest.raises(KeyError):
            store.link_identity("demo:nobody", "demo:ada", "x", True, [])
        with pytest.raises(KeyError):
            store.identity_link(999)

    def test_undo_refuses_when_the_profile_moved_since(self, store: StateStore) -> None:
        self._two_profiles(store)
        first = store.link_identity("demo:bob", "demo:ada", "confirmed", True, [])
        store.link_identity("demo:bob", "demo:cy", "confirmed again", True, [])
        with pytest.raises(ValueError, match="linked elsewhere"):
            store.undo_link(first.id, [])

    def test_a_suggestion_is_made_once_and_a_rejected_one_never_again(self, store: StateStore) -> None:
        self._two_profiles(store)
        suggestion = store.suggest_link("demo:bob", "demo:ada", "same email", False)
        assert suggestion is not None and suggestion.status is LinkStatus.suggested
        assert store.suggest_link("demo:bob", "demo:ada", "same email", False) is None
        assert store.suggest_link("demo:nobody", "demo:ada", "x", False) is None
        assert store.suggest_link("demo:ada", "demo:ada", "x", False) is None, "already that person"
        assert store.identity_links(LinkStatus.suggested) == [suggestion]
        assert store.profiles(["demo:bob"])["demo:bob"].person_key == "demo:bob", "no link without an operator"
        rejected = store.reject_suggestion(suggestion.id)
        assert rejected.status is LinkStatus.rejected
        assert store.suggest_link("demo:bob", "demo:ada", "same email", False) is None
        with pytest.raises(ValueError, match="not a suggestion"):
            store.reject_suggestion(suggestion.id)
        other = store.suggest_link("demo:cy", "demo:ada", "one-way link", False)
        assert other is not None
        accepted = store.link_identity("demo:cy", "demo:ada", "one-way link, confirmed", True, [])
        assert accepted.id == other.id and accepted.status is LinkStatus.linked, "accepting the open suggestion"
        assert [p.profile.key for p in store.profiles_page()] == ["demo:ada", "demo:bob", "demo:cy"]
        assert [p.profile.key for p in store.profiles_page("demo:ada", 1)] == ["demo:bob"]

    # ------------------------------------------------------------ audit and adapters' areas

    def test_audit_log_is_newest_first_and_redacted(self, store: StateStore) -> None:
        store.audit([AuditEntry("one", "a"), AuditEntry("two", "b", f"api_key={SECRET}")])
        (at, newest), (_, oldest) = store.audit_log()
        assert (newest.action, oldest.action) == ("two", "one") and SECRET not in newest.detail
        assert at.tzinfo is not None and abs((datetime.now(UTC) - at).total_seconds()) < 600
        assert len(store.audit_log(1)) == 1

    def test_adapter_state_is_kept_per_adapter(self, store: StateStore) -> None:
        store.adapter_state_put("crm", {"a:1": "x", "a:2": "y", "b": "z"})
        store.adapter_state_put("other", {"a:1": "elsewhere"})
        store.adapter_state_put("crm", {"a:2": "y2"})
        assert store.adapter_state_get("crm", ["a:1", "a:2", "nope"]) == {"a:1": "x", "a:2": "y2"}
        assert store.adapter_state_prefixed("crm", "a:") == {"a:1": "x", "a:2": "y2"}
        store.adapter_state_delete("crm", ["a:1"])
        assert store.adapter_state_get("crm", ["a:1", "b"]) == {"b": "z"}
        assert store.adapter_state_get("other", ["a:1"]) == {"a:1": "elsewhere"}

    # ------------------------------------------------------------ learning

    def test_the_newest_correction_of_a_message_wins_with_a_new_seq(self, store: StateStore) -> None:
        store.save_label_examples(
            [_label("x:1", "intent:complaint"), _label("x:2", "intent:praise")], checkpoint=("crm@labels", "7")
        )
        assert store.checkpoint("crm@labels") == "7"
        first = {e.message_key: e for e in store.label_examples()}
        store.save_label_examples([_label("x:1", "intent:none")], checkpoint=("crm@labels", "8"))
        now = {e.message_key: e for e in store.label_examples("intent")}
        assert now["x:1"].label == "intent:none" and now["x:1"].seq > first["x:2"].seq
        assert now["x:2"] == first["x:2"]
        assert store.checkpoint("crm@labels") == "8"
        assert store.label_examples("topic") == []
        assert [a.action for _, a in store.audit_log()].count("labels.corrected") == 2

    def test_examples_of_deleted_messages_are_left_out_and_erase_removes_the_persons(self, store: StateStore) -> None:
        alice = SocialProfile(network="x", account_id="alice")
        store.commit_page(
            PageCommit(
                "src",
                "1",
                profiles=[ProfileRecord(alice, alice.key, "fp")],
                messages=[MessageRecord("x:1", "x:1", alice.key), MessageRecord("x:2", "x:1", alice.key, deleted=True)],
            )
        )
        store.save_label_examples(
            [_label("x:1", "intent:complaint"), _label("x:2", "intent:spam"), _label("y:9", "intent:praise")]
        )
        assert sorted(e.message_key for e in store.label_examples()) == ["x:1", "y:9"]
        store.erase_person(alice.key)
        assert [e.message_key for e in store.label_examples()] == ["y:9"]
        assert "label_examples=2" in store.audit_log()[0][1].detail

    def test_models_are_kept_and_the_newest_is_in_force(self, store: StateStore) -> None:
        assert store.model("intent") is None
        store.save_model("intent", b"one", {"f1": 0.5}, 3)
        second = store.save_model("intent", b"two", {"f1": 0.6}, 5)
        found = store.model("intent")
        assert found is not None and (found.id, found.data, found.report, found.trained_until) == (
            second.id,
            b"two",
            {"f1": 0.6},
            5,
        )
        assert store.model("other") is None
        assert store.drop_models("intent") == 1 and store.model("intent") is None
        assert store.drop_models("intent") == 0

    # ------------------------------------------------------------ erase

    def test_erase_person_removes_exactly_their_data(self, store: StateStore) -> None:
        store.commit_page(person_page("alice", "1"))
        store.commit_page(person_page("bob", "2"))
        # bob replies in alice's thread; alice replies in bob's thread
        store.commit_page(
            PageCommit(
                "demo",
                "3",
                messages=[
                    MessageRecord("demo:r-bob", "demo:m-alice", "demo:bob"),
                    MessageRecord("demo:r-alice", "demo:m-bob", "demo:alice"),
                ],
                dead_letters=[NewDeadLetter("sink", "x", op=op(CrmObject.message, "demo:r-alice"))],
            )
        )
        store.outbox_settle(
            Settlement(crm_ids=[(CrmObject.contact, "scrm:demo:alice", "1"), (CrmObject.contact, "scrm:demo:bob", "2")])
        )
        store.suggest_link("demo:alice", "demo:bob", "same email", False)
        store.suggest_link("demo:bob", "demo:alice", "same email", False)
        assert store.erase_plan("demo:alice").records[CrmObject.case] == ["scrm:demo:m-alice"]
        assert store.counts()["profiles"] == 2, "a plan erases nothing"

        plan = store.erase_person("demo:alice")

        assert plan.person_key == "demo:alice"
        assert {obj: sorted(keys) for obj, keys in plan.records.items()} == {
            CrmObject.contact: ["scrm:demo:alice"],
            CrmObject.profile: ["scrm:demo:alice"],
            CrmObject.case: ["scrm:demo:m-alice"],
            CrmObject.lead: ["scrm:demo:alice"],
            CrmObject.message: ["scrm:demo:m-alice", "scrm:demo:r-alice"],
        }
        assert store.profiles(["demo:alice", "demo:bob"]).keys() == {"demo:bob"}
        assert store.conversations(["demo:m-alice", "demo:m-bob"]).keys() == {"demo:m-bob"}
        assert store.messages(["demo:m-alice", "demo:r-alice", "demo:m-bob", "demo:r-bob"]).keys() == {
            "demo:m-bob",
            "demo:r-bob",
        }
        # alice's contact, her case and the message on her case are gone; bob's three remain
        assert [i.op.external_key for i in store.outbox_take(10)] == [
            "scrm:demo:bob",
            "scrm:demo:m-bob",
            "scrm:demo:m-bob",
        ]
        assert store.dead_letter_count() == 0
        assert store.crm_ids(CrmObject.contact, ["scrm:demo:alice", "scrm:demo:bob"]) == {"scrm:demo:bob": "2"}
        assert store.identity_links() == [], "links to and from her are gone"
        _, entry = store.audit_log(1)[0]
        assert (entry.action, entry.subject) == ("subject.erased", "(erased)")  # the action, not whom
        assert "alice" not in entry.detail and "profiles=1" in entry.detail

    def test_erase_unknown_person_still_names_the_contact(self, store: StateStore) -> None:
        assert store.erase_plan("person:404").records == {}
        plan = store.erase_person("person:404")
        assert plan.records[CrmObject.contact] == ["scrm:person:404"]
        assert plan.records[CrmObject.message] == []

    def test_erase_scrubs_the_person_from_every_part(self, store: StateStore, tmp_path: Path) -> None:
        alice = SocialProfile(network="demo", account_id="alice-77", handle="alice_l", display_name="Alice Liddell")
        bob = SocialProfile(network="demo", account_id="bob-88", handle="bobs", display_name="Bob Stone")
        bobs_thread = conversation(
            "b1", bob.key, subject="kettles", draft_reply="Hi Alice Liddell", last_inbound_id="a2"
        )
        store.commit_page(
            PageCommit(
                "demo",
                "1",
                event_keys=["c:demo:a1", "c:demo:a2", "p:demo:alice-77:v1", "c:demo:b1"],
                profiles=[ProfileRecord(alice, alice.key, "f"), ProfileRecord(bob, bob.key, "f")],
                conversations=[conversation("a1", alice.key, subject="whistles off-key"), bobs_thread],
                messages=[
                    MessageRecord("demo:a1", "demo:a1", alice.key),
                    MessageRecord("demo:a2", "demo:b1", alice.key),
                    MessageRecord("demo:b1", "demo:b1", bob.key),
                ],
                dead_letters=[NewDeadLetter("demo", "malformed post by alice_l", "demo.ndjson:4")],
                audit=[AuditEntry("message.redacted", "demo:a2", "deleted by its author on the network")],
            )
        )
        store.enqueue_replies([NewReply("k1", "cli", "demo:b1", "a2", "Sorry Alice Liddell")])
        store.store_webhook("hooks", "d1", {}, b'{"from": {"id": "alice-77", "name": "Alice Liddell"}, "text": "hi"}')
        store.store_webhook("hooks", "d2", {}, b'{"from": {"id": "alice-77"}, "text": "not synced yet"}')
        store.commit_page(PageCommit("hooks@webhooks", "1"))  # the first payload is processed, not the second
        plan = store.erase_person(alice.key)
        assert plan.removed["webhook_inbox"] == 1 and plan.removed["replies"] == 1
        assert plan.removed["seen_events"] == 1 and plan.removed["dead_letters.inputs"] == 1
        assert any("not synced yet" in k and "scrm run --once" in k for k in plan.kept), plan.kept
        thread = store.conversations(["demo:b1"])["demo:b1"]
        assert thread.draft_reply is None and thread.last_inbound_id is None and thread.subject == "kettles"
        assert store.unseen(["p:demo:alice-77:v1", "c:demo:a1"]) == {"p:demo:alice-77:v1"}
        assert store.replies() == []
        assert [w.body for w in store.stored_webhooks("hooks", 0, 10)] == [
            b'{"from": {"id": "alice-77"}, "text": "not synced yet"}'
        ]
        assert [(e.action, e.subject) for _, e in store.audit_log()] == [
            ("subject.erased", "(erased)"),
            ("message.redacted", "(erased)"),
        ]
        store.close()
        needles = ("alice-77", "alice liddell", "alice_l", "whistles off-key")
        left = [(t, c, v) for t, c, v in self._cells(tmp_path) if any(n in v.lower() for n in needles)]
        assert [(t, v) for t, _, v in left] == [
            ("webhook_inbox", '{"from": {"id": "alice-77"}, "text": "not synced yet"}')
        ], left

    # ------------------------------------------------------------ secrets

    def test_the_store_keeps_no_secret_in_its_text(self, store: StateStore, tmp_path: Path) -> None:
        store.commit_page(
            PageCommit(
                "s",
                "1",
                dead_letters=[NewDeadLetter("s", f"refused: api_key={SECRET}", "x:1", payload=f"Bearer {SECRET}")],
                audit=[AuditEntry("test", "subject", f"with api_key={SECRET}")],
            )
        )
        (letter,) = store.dead_letters()
        assert SECRET not in letter.reason + letter.payload and "[REDACTED]" in letter.reason
        store.close()
        values = [v for _, _, v in self._cells(tmp_path)]
        assert not [v for v in values if SECRET in v] and any("[REDACTED]" in v for v in values)

    # ------------------------------------------------------------ the async wrapper

    def test_async_store_runs_every_call_on_one_worker_thread(self, tmp_path: Path) -> None:
        opened_in: list[int] = []

        def factory() -> StateStore:
            opened_in.append(threading.get_ident())
            return self.make_store(tmp_path)

        async def main() -> tuple[int, str | None, int, set[int]]:
            store = AsyncStore(factory)
            await store.call(StateStore.migrate)
            pages = (store.call(StateStore.commit_page, person_page(f"p{i}", str(i), f"s{i}")) for i in range(5))
            await asyncio.gather(*pages)
            cursor = await store.call(StateStore.checkpoint, source="s3")
            counts = await store.call(StateStore.counts)
            threads = {await store.run(lambda _: threading.get_ident()) for _ in range(3)}
            await store.close()
            return threading.get_ident(), cursor, counts["profiles"], threads

        loop_thread, cursor, profiles, threads = asyncio.run(main())
        assert (cursor, profiles) == ("3", 5)
        assert len(opened_in) == 1 and threads == set(opened_in) and loop_thread not in threads

    def test_async_store_calls_only_the_interface_and_errors_propagate(self, tmp_path: Path) -> None:
        async def main() -> None:
            unused = AsyncStore(lambda: self.make_store(tmp_path))
            await unused.close()
            store = AsyncStore(lambda: self.make_store(tmp_path))
            with pytest.raises(TypeError, match="not a method of the StateStore interface"):
                await store.call(len)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match=r"AsyncStore\.close"):
                await store.call(StateStore.close)
            await store.call(StateStore.migrate)
            with pytest.raises(KeyError):
                await store.call(StateStore.reply, 404)
            assert await store.call(StateStore.outbox_depth) == 0
            await store.close()

        asyncio.run(main())
        assert {"commit_page", "erase_person", "store_webhook", "adapter_state_get"} <= INTERFACE
