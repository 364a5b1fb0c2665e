"""Behaviour of the SQLite state store and its async wrapper, on real files in tmp_path."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scrm_core.errors import FatalError
from scrm_core.models import Conversation, CrmObject, CrmOperation, SocialProfile
from scrm_core.store import (
    AsyncStore,
    AuditEntry,
    MessageRecord,
    NewDeadLetter,
    PageCommit,
    ProfileRecord,
    Refusal,
    Settlement,
    SqliteStore,
    StateStore,
    open_store,
)
from scrm_core.store.sqlite import MIGRATIONS


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "scrm.db"


@pytest.fixture
def store(db: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(db)
    s.migrate()
    yield s
    s.close()


def profile(account: str) -> SocialProfile:
    return SocialProfile(network="demo", account_id=account, handle=f"@{account}", email=f"{account}@example.com")


def conversation(root: str, started_by: str) -> Conversation:
    return Conversation(
        network="demo",
        root_id=root,
        started_by=started_by,
        subject="hello",
        message_count=1,
        first_at=datetime(2026, 1, 1, tzinfo=UTC),
        labels=["support"],
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


# -- schema


def test_migrate_is_idempotent_and_reports_the_version(db: Path) -> None:
    s = SqliteStore(db)
    assert s.migrate() == len(MIGRATIONS)
    assert s.migrate() == len(MIGRATIONS)
    s.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [
            (v,) for v in range(1, len(MIGRATIONS) + 1)
        ]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_newer_schema_is_refused(db: Path) -> None:
    SqliteStore(db).migrate()
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (len(MIGRATIONS) + 1,))
    conn.close()
    with pytest.raises(FatalError, match="Upgrade scrm"):
        SqliteStore(db).migrate()


def test_memory_store_works() -> None:
    s = SqliteStore(":memory:")
    s.migrate()
    s.commit_page(person_page("a", "1"))
    assert s.counts()["messages"] == 1


# -- commit_page


def test_commit_page_round_trips_everything(store: SqliteStore) -> None:
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


def test_upserts_replace_and_events_accumulate(store: SqliteStore) -> None:
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
                MessageRecord("demo:m-alice", "demo:m-alice", p.key, deleted=True),
                MessageRecord("demo:spam", "demo:spam", p.key, in_crm=False),
            ],
        )
    )
    assert store.profiles([p.key])[p.key] == ProfileRecord(p, "person:7", "fp2")
    assert store.messages(["demo:m-alice"])["demo:m-alice"].deleted
    assert not store.messages(["demo:spam"])["demo:spam"].in_crm
    assert store.checkpoint("demo") == "2"
    assert store.checkpoints()[0].events == 3
    assert store.checkpoint("other") is None


def test_unseen_dedups_across_pages_and_chunks(store: SqliteStore) -> None:
    keys = [f"c:demo:{i}" for i in range(1200)]  # more than two IN (...) chunks
    store.commit_page(PageCommit("demo", "1", event_keys=keys[:700]))
    assert store.unseen(keys) == set(keys[700:])
    assert store.unseen([]) == set()
    store.commit_page(PageCommit("demo", "2", event_keys=keys[650:750]))  # overlap is ignored
    assert store.counts()["seen_events"] == 750


@pytest.mark.parametrize("odd", ["nul\x00byte", 'quote"back\\slash', "caf\u00e9 \U0001f600", "tab\tnewline\n", "[1]"])
def test_keys_with_any_characters_round_trip(store: SqliteStore, odd: str) -> None:
    # Lookups and seen events pass keys to SQLite as one JSON array; none may be mangled.
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


def test_keys_sqlite_cannot_encode_fail_as_before(store: SqliteStore) -> None:
    with pytest.raises(UnicodeEncodeError):
        store.unseen(["broken \ud800"])
    with pytest.raises(UnicodeEncodeError):
        store.commit_page(PageCommit("demo", "1", event_keys=["broken \ud800"]))
    assert store.checkpoint("demo") is None


def test_commit_page_is_all_or_nothing(store: SqliteStore) -> None:
    store.commit_page(person_page("alice", "cur-1"))
    before = dict(store.counts())
    bad = person_page("bob", "cur-2")
    # The unserialisable op comes after the seen events, profiles, conversations and
    # messages have been written inside the transaction.
    bad.ops = [*bad.ops, CrmOperation(object=CrmObject.message, external_key="scrm:x", fields={"x": object()})]
    with pytest.raises(TypeError):
        store.commit_page(bad)
    assert store.counts() == before
    assert store.checkpoint("demo") == "cur-1"
    assert store.checkpoints()[0].events == 1
    assert store.unseen(["c:demo:m-bob"]) == {"c:demo:m-bob"}
    assert store.profiles(["demo:bob"]) == {}


def test_failure_at_the_checkpoint_rolls_back_the_page(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    import scrm_core.store.sqlite as mod

    monkeypatch.setattr(mod, "_UPSERT_CHECKPOINT", "INSERT INTO no_such_table VALUES (?, ?, ?, ?)")
    with pytest.raises(sqlite3.OperationalError):
        store.commit_page(person_page("alice", "cur-1"))
    assert set(store.counts().values()) == {0}
    assert store.audit_log() == []
    monkeypatch.undo()
    store.commit_page(person_page("alice", "cur-1"))  # the connection is still usable
    assert store.checkpoint("demo") == "cur-1"


# -- outbox


def test_outbox_keeps_order_and_pages_by_seq(store: SqliteStore) -> None:
    ops = [op(CrmObject.message, f"demo:{i}") for i in range(7)]
    store.commit_page(PageCommit("demo", "1", ops=ops[:4]))
    store.commit_page(PageCommit("demo", "2", ops=ops[4:]))
    first = store.outbox_take(5)
    assert [i.op.external_key for i in first] == [o.external_key for o in ops[:5]]
    assert [i.seq for i in first] == sorted(i.seq for i in first)
    rest = store.outbox_take(5, after_seq=first[-1].seq)
    assert [i.op for i in rest] == ops[5:]
    assert store.outbox_depth() == 7


def test_settle_done_failed_retry(store: SqliteStore) -> None:
    a, b, c = op(CrmObject.contact, "demo:a"), op(CrmObject.contact, "demo:b"), op(CrmObject.case, "demo:c")
    store.commit_page(PageCommit("demo", "1", ops=[a, b, c]))
    sa, sb, sc = (i.seq for i in store.outbox_take(10))
    store.outbox_settle(
        Settlement(
            done=[sa],
            crm_ids=[(CrmObject.contact, a.external_key, "003A")],
            failed=[Refusal(sb, "bad field")],
            retry=[sc],
        )
    )
    (left,) = store.outbox_take(10)
    assert (left.seq, left.op, left.attempts) == (sc, c, 1)
    assert store.crm_ids(CrmObject.contact, [a.external_key, b.external_key]) == {a.external_key: "003A"}
    assert store.crm_ids(CrmObject.lead, [a.external_key]) == {}
    (dl,) = store.dead_letters()
    assert (dl.source, dl.reason, dl.locator, dl.op, dl.attempts) == ("sink", "bad field", b.external_key, b, 1)
    # a CRM id can change (record merged in the CRM): the latest wins
    store.outbox_settle(Settlement(crm_ids=[(CrmObject.contact, a.external_key, "003B")]))
    assert store.crm_ids(CrmObject.contact, [a.external_key]) == {a.external_key: "003B"}


def test_settle_deletes_exactly_the_done_seqs(store: SqliteStore) -> None:
    ops = [op(CrmObject.message, f"demo:{i}") for i in range(12)]
    seqs = store.commit_page(PageCommit("demo", "1", ops=ops))
    done = [seqs[i] for i in (7, 0, 1, 2, 4, 5, 9, 10, 11, 1)]  # any order, repeats, gaps at 3, 6 and 8
    store.outbox_settle(Settlement(done=done, retry=[seqs[6]]))
    assert [(i.seq, i.attempts) for i in store.outbox_take(100)] == [(seqs[3], 0), (seqs[6], 1), (seqs[8], 0)]
    store.outbox_settle(Settlement(done=[]))
    assert store.outbox_depth() == 3


def test_commit_page_returns_the_seqs_outbox_take_sees(store: SqliteStore) -> None:
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
    assert len(first) == 4 and first[0] == dead.seq and second[0] == first[-1] + 1
    store.requeue_dead_letters()
    third = store.commit_page(PageCommit("demo", "4", ops=ops[:2]))
    assert [i.seq for i in store.outbox_take(100, after_seq=second[-1])][-2:] == third


def test_seqs_are_not_reused_after_the_outbox_empties(store: SqliteStore) -> None:
    store.commit_page(PageCommit("demo", "1", ops=[op(CrmObject.contact, "demo:a")]))
    (item,) = store.outbox_take(1)
    store.outbox_settle(Settlement(done=[item.seq]))
    store.commit_page(PageCommit("demo", "2", ops=[op(CrmObject.contact, "demo:b")]))
    assert store.outbox_take(1, after_seq=item.seq)[0].seq > item.seq


# -- dead letters


def test_requeue_moves_only_crm_writes(store: SqliteStore) -> None:
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


def test_requeue_selected_ids(store: SqliteStore) -> None:
    letters = [NewDeadLetter("sink", "x", op=op(CrmObject.contact, f"demo:{i}")) for i in range(3)]
    store.commit_page(PageCommit("demo", "1", dead_letters=letters))
    ids = [d.id for d in store.dead_letters()]
    assert store.requeue_dead_letters([ids[2], 999]) == 1
    assert [i.op.external_key for i in store.outbox_take(10)] == ["scrm:demo:2"]
    assert [d.id for d in store.dead_letters()] == ids[:2]


# -- erase


def test_erase_person_removes_exactly_their_data(store: SqliteStore, db: Path) -> None:
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
    with sqlite3.connect(db) as conn:  # no method writes identity links yet
        conn.executemany(
            "INSERT INTO identity_links (profile_key, person_key, evidence, created_at) VALUES (?, ?, 'email', '')",
            [("demo:alice", "demo:alice"), ("demo:bob", "demo:bob")],
        )
    conn.close()

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
    assert [i.op.external_key for i in store.outbox_take(10)] == ["scrm:demo:bob", "scrm:demo:m-bob", "scrm:demo:m-bob"]
    assert store.dead_letter_count() == 0
    assert store.crm_ids(CrmObject.contact, ["scrm:demo:alice", "scrm:demo:bob"]) == {"scrm:demo:bob": "2"}
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT profile_key FROM identity_links").fetchall() == [("demo:bob",)]
    conn.close()
    _, entry = store.audit_log(1)[0]
    assert (entry.action, entry.subject) == ("subject.erased", "(erased)")  # the action, not whom
    assert "alice" not in entry.detail and "profiles=1" in entry.detail


def test_erase_unknown_person_still_names_the_contact(store: SqliteStore) -> None:
    plan = store.erase_person("person:404")
    assert plan.records[CrmObject.contact] == ["scrm:person:404"]
    assert plan.records[CrmObject.message] == []


# -- durability and damage


def test_reopen_keeps_everything(db: Path) -> None:
    s = SqliteStore(db)
    s.migrate()
    s.commit_page(person_page("alice", "cur-9"))
    counts = dict(s.counts())
    s.close()

    s = SqliteStore(db)
    assert s.migrate() == len(MIGRATIONS)
    assert s.counts() == counts
    assert s.checkpoint("demo") == "cur-9"
    assert s.unseen(["c:demo:m-alice"]) == set()
    assert len(s.outbox_take(10)) == 3
    s.close()


def test_corrupt_json_names_table_and_key(store: SqliteStore, db: Path) -> None:
    store.commit_page(person_page("alice", "1"))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE profiles SET data = '{not json' WHERE key = 'demo:alice'")
        conn.execute("UPDATE outbox SET refs = '[' WHERE seq = (SELECT MIN(seq) FROM outbox)")
    conn.close()
    with pytest.raises(FatalError, match="'demo:alice' of table 'profiles'"):
        store.profiles(["demo:alice"])
    with pytest.raises(FatalError, match="table 'outbox'"):
        store.outbox_take(10)


# -- open_store


def test_open_store_urls(tmp_path: Path) -> None:
    rel = open_store("sqlite:///data/rel.db", tmp_path)
    absolute = open_store(f"sqlite:///{tmp_path / 'abs.db'}", Path("/nonexistent"))
    memory = open_store("sqlite:///:memory:", tmp_path)
    for s in (rel, absolute, memory):
        assert isinstance(s, SqliteStore)
        s.migrate()
        s.close()
    assert (tmp_path / "data" / "rel.db").exists()
    assert (tmp_path / "abs.db").exists()


@pytest.mark.parametrize("url", ["postgresql://scrm:s3cret@db/scrm", "mysql://x", "scrm.db", "sqlite://host/x.db"])
def test_open_store_rejects_other_urls(url: str, tmp_path: Path) -> None:
    with pytest.raises(FatalError) as err:
        open_store(url, tmp_path)
    assert "s3cret" not in str(err.value)
    if url.startswith("postgresql"):
        assert "'postgresql://'" in str(err.value) and "PostgreSQL is planned" in str(err.value)


# -- AsyncStore


class _ThreadRecordingStore(SqliteStore):
    def __init__(self, path: Path, threads: list[int]) -> None:
        threads.append(threading.get_ident())
        self.threads = threads
        super().__init__(path)

    def checkpoint(self, source: str) -> str | None:
        self.threads.append(threading.get_ident())
        return super().checkpoint(source)


def test_async_store_runs_every_call_on_one_worker_thread(db: Path) -> None:
    threads: list[int] = []

    async def main() -> tuple[int, str | None, int]:
        store = AsyncStore(lambda: _ThreadRecordingStore(db, threads))
        await store.migrate()
        await asyncio.gather(*(store.commit_page(person_page(f"p{i}", str(i), f"s{i}")) for i in range(5)))
        cursor = await store.checkpoint(source="s3")
        await store.checkpoint("s1")
        counts = await store.counts()
        await store.close()
        return threading.get_ident(), cursor, counts["profiles"]

    loop_thread, cursor, profiles = asyncio.run(main())
    assert (cursor, profiles) == ("3", 5)
    assert len(threads) == 3 and len(set(threads)) == 1
    assert threads[0] != loop_thread


def test_async_store_covers_the_whole_interface() -> None:
    assert StateStore.__abstractmethods__ <= set(vars(AsyncStore))


def test_async_store_close_without_use_and_errors_propagate(db: Path) -> None:
    async def main() -> None:
        unused = AsyncStore(lambda: SqliteStore(db))
        await unused.close()
        store = AsyncStore(lambda: SqliteStore(db))
        with pytest.raises(sqlite3.OperationalError):
            await store.outbox_depth()  # not migrated yet
        assert await store.migrate() == len(MIGRATIONS)
        await store.close()

    asyncio.run(main())
