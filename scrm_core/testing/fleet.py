"""Conformance suite for stores shared by a fleet of workers (:class:`~scrm_core.store.FleetStore`)::

    from scrm_core.testing.fleet import FleetStoreConformance

    class TestPostgresFleet(FleetStoreConformance):
        def make_store(self, tmp_path):
            return PostgresStore(url_for(tmp_path))  # the same tmp_path: the same state, a new connection

Each worker is its own store (its own connection), as each process of a fleet is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ..models import CrmObject, CrmOperation
from ..store import FleetStore, Lease, LeaseLost, OutboxItem, PageCommit, Settlement, StateStore, WorkerInfo
from ..store.base import partition_of

__all__ = ["FleetStoreConformance", "eventually"]

T = TypeVar("T")
SHORT = 0.3  # seconds: a lease meant to expire during the test
LONG = 60.0


def eventually(attempt: Callable[[], T | None], what: str, within: float = 15.0, every: float = 0.02) -> T:
    """``attempt()`` until it returns something truthy, which is returned (polled; the deadline
    only stops a hung test: a fleet's tests wait on conditions, never for fixed times)."""
    deadline = time.monotonic() + within
    while not (found := attempt()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        time.sleep(every)  # polling interval, not a wait for the outcome
    return found


class FleetStoreConformance:
    """Subclass with ``make_store`` returning a store that is also a :class:`FleetStore`."""

    def make_store(self, tmp_path: Path) -> StateStore:
        raise NotImplementedError

    @pytest.fixture
    def workers(self, tmp_path: Path) -> Iterator[Callable[[str], Any]]:
        opened: list[StateStore] = []

        def worker(name: str) -> Any:
            store = self.make_store(tmp_path)
            assert isinstance(store, FleetStore)
            store.migrate()
            store.join_fleet(WorkerInfo(name, "host", 1000 + len(opened), "scrm run"))
            opened.append(store)
            return store

        yield worker
        for store in opened:
            store.close()

    def test_a_lease_has_one_holder_until_it_expires_then_another_takes_it(self, workers: Any) -> None:
        a, b = workers("a"), workers("b")
        assert [x.name for x in a.acquire_leases("a", ["s1", "s2", "s3"], 2, LONG)] == ["s1", "s2"]
        assert [x.name for x in b.acquire_leases("b", ["s1", "s2", "s3"], 3, LONG)] == ["s3"]
        (short,) = a.acquire_leases("a", ["s4"], 1, SHORT)
        assert b.acquire_leases("b", ["s4"], 1, LONG) == []
        (taken,) = eventually(lambda: b.acquire_leases("b", ["s4"], 1, LONG), "the expired lease taken over")
        assert taken.holder == "b" and taken.token > short.token
        assert [x.name for x in a.fleet_heartbeat("a", LONG)] == ["s1", "s2"]  # s4 is no longer a's
        a.release_leases("a", ["s1"])
        assert [x.name for x in b.acquire_leases("b", ["s1", "s2"], 2, LONG)] == ["s1"]

    def test_workers_asking_at_once_never_share_a_lease(self, workers: Any) -> None:
        stores = [workers(f"w{i}") for i in range(4)]
        names = [f"src-{i}" for i in range(20)]
        got: dict[str, list[Lease]] = {}
        barrier = threading.Barrier(len(stores))

        def take(i: int) -> None:
            barrier.wait()
            got[f"w{i}"] = stores[i].acquire_leases(f"w{i}", names, 5, LONG)

        threads = [threading.Thread(target=take, args=(i,)) for i in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        held = [lease.name for leases in got.values() for lease in leases]
        assert sorted(held) == sorted(names) and all(len(v) == 5 for v in got.values())

    def test_a_commit_under_a_lost_lease_is_refused_and_writes_nothing(self, workers: Any) -> None:
        a, b = workers("a"), workers("b")
        (old,) = a.acquire_leases("a", ["demo"], 1, SHORT)
        a.commit_page(PageCommit("demo", "1", event_keys=["c:1"], lease=old))
        (new,) = eventually(lambda: b.acquire_leases("b", ["demo"], 1, LONG), "takeover")
        with pytest.raises(LeaseLost):
            a.commit_page(PageCommit("demo", "2", event_keys=["c:2"], lease=old))
        assert b.checkpoint("demo") == "1" and b.unseen(["c:2"]) == {"c:2"}
        b.commit_page(PageCommit("demo", "2", event_keys=["c:2"], lease=new))
        assert a.checkpoint("demo") == "2"

    def test_outbox_partitions_split_the_work_and_keep_each_records_writes_in_order(self, workers: Any) -> None:
        a, b = workers("a"), workers("b")
        parts = a.outbox_partitions
        ops = [
            CrmOperation(object=CrmObject.message, external_key=f"scrm:m{k}", fields={"v": v})
            for v in range(3)
            for k in range(24)
        ]
        a.commit_page(PageCommit("demo", "1", ops=ops))
        names = [f"outbox#{p}" for p in range(parts)]
        mine = a.acquire_leases("a", names, (parts + 1) // 2, LONG)
        theirs = b.acquire_leases("b", names, parts, LONG)
        assert len(mine) + len(theirs) == parts
        claimed = {
            s: [(item, again) for lease in leases for item, again in s.outbox_claim(lease, 1000)]
            for s, leases in ((a, mine), (b, theirs))
        }
        seqs = [item.seq for got in claimed.values() for item, _ in got]
        assert sorted(seqs) == sorted(i.seq for i in a.outbox_take(1000)) and len(set(seqs)) == len(ops)
        assert not any(again for got in claimed.values() for _, again in got)
        for store, got in claimed.items():
            values: dict[str, list[int]] = {}
            for item, _ in got:
                values.setdefault(item.op.external_key, []).append(item.op.fields["v"])
                held = mine if store is a else theirs
                assert f"outbox#{partition_of(item.op.external_key, parts)}" in {x.name for x in held}
            assert all(v == [0, 1, 2] for v in values.values())  # one record's writes, in order
        assert a.outbox_claim(mine[0], 1000) == []  # handed out once

    def test_a_partition_taken_over_hands_out_what_the_dead_holder_had_in_hand(self, workers: Any) -> None:
        a, b = workers("a"), workers("b")
        op = CrmOperation(object=CrmObject.contact, external_key="scrm:p1", fields={"name": "x"})
        a.commit_page(PageCommit("demo", "1", ops=[op]))
        name = f"outbox#{partition_of(op.external_key, a.outbox_partitions)}"
        (old,) = a.acquire_leases("a", [name], 1, SHORT)
        ((item, again),) = a.outbox_claim(old, 10)
        assert not again
        (new,) = eventually(lambda: b.acquire_leases("b", [name], 1, LONG), "takeover")
        with pytest.raises(LeaseLost):
            a.outbox_claim(old, 10)
        ((item2, again2),) = b.outbox_claim(new, 10)
        assert item2.seq == item.seq and again2  # it may have reached the CRM unrecorded: sent again, by key
        assert b.outbox_waiting([(CrmObject.contact, "scrm:p1"), (CrmObject.contact, "scrm:p2")]) == {
            (CrmObject.contact, "scrm:p1")
        }

    @staticmethod
    def _partitions(store: Any) -> list[str]:
        return [f"outbox#{p}" for p in range(store.outbox_partitions)]

    def test_two_sinks_draining_at_once_never_claim_the_same_row(self, workers: Any) -> None:
        """Two sinks claim their partitions in small slices while a third worker commits; every
        row is handed out once, to the holder of its partition, and the old partition leases of
        a worker that gave them back claim nothing."""
        a, b, writer = workers("a"), workers("b"), workers("w")
        names = self._partitions(a)
        leases = {"a": a.acquire_leases("a", names, len(names) // 2, LONG)}
        leases["b"] = b.acquire_leases("b", names, len(names), LONG)
        assert {x.name for x in leases["a"]}.isdisjoint(x.name for x in leases["b"])
        committed: list[int] = []
        claimed: dict[str, list[OutboxItem]] = {"a": [], "b": []}
        done = threading.Event()

        def write() -> None:
            for page in range(20):
                ops = [
                    CrmOperation(object=CrmObject.message, external_key=f"scrm:m{page % 7}-{k}", fields={"p": page})
                    for k in range(10)
                ]
                committed.extend(writer.commit_page(PageCommit("demo", str(page), ops=ops)))
            done.set()

        def drain(name: str, store: Any) -> None:
            while True:
                finished = done.is_set()  # then a round that finds nothing more ends it
                if name == "a":  # one partition at a time
                    got = [item for lease in leases[name] for item, _ in store.outbox_claim(lease, 7)]
                else:  # all of its partitions in one claim
                    claimed_each, lost = store.outbox_claim_each(leases[name], 7)
                    assert lost == []
                    got = [item for item, _ in claimed_each]
                claimed[name] += got
                if finished and not got:
                    return

        threads = [threading.Thread(target=write)] + [
            threading.Thread(target=drain, args=(n, s)) for n, s in (("a", a), ("b", b))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seqs_a, seqs_b = [i.seq for i in claimed["a"]], [i.seq for i in claimed["b"]]
        assert set(seqs_a).isdisjoint(seqs_b) and len(set(seqs_a)) == len(seqs_a) and len(set(seqs_b)) == len(seqs_b)
        assert sorted(seqs_a + seqs_b) == sorted(committed)
        for name in ("a", "b"):
            mine = {x.name for x in leases[name]}
            assert all(f"outbox#{partition_of(i.op.external_key, len(names))}" in mine for i in claimed[name])
        # Every row of a record came out of one sink, in the order it was committed.
        for got in claimed.values():
            pages: dict[str, list[int]] = {}
            for item in got:
                pages.setdefault(item.op.external_key, []).append(item.op.fields["p"])
            assert all(p == sorted(p) for p in pages.values())

    def test_a_records_later_write_is_never_claimed_before_an_earlier_one(self, workers: Any) -> None:
        """Slices of a partition come out oldest first even when the record's writes arrive
        between the claims, and a settled row is not handed out again."""
        a, w = workers("a"), workers("w")
        key = "scrm:the-record"
        name = f"outbox#{partition_of(key, a.outbox_partitions)}"
        (lease,) = a.acquire_leases("a", [name], 1, LONG)
        order: list[int] = []
        for v in range(6):
            w.commit_page(
                PageCommit("demo", str(v), ops=[CrmOperation(object=CrmObject.case, external_key=key, fields={"v": v})])
            )
            if v % 2:
                got = a.outbox_claim(lease, 1)
                order += [item.op.fields["v"] for item, _ in got]
                a.outbox_settle(Settlement(done=[item.seq for item, _ in got]))
        order += [item.op.fields["v"] for item, _ in a.outbox_claim(lease, 100)]
        assert order == list(range(6))
        assert a.outbox_claim(lease, 100) == []

    def test_a_child_knows_its_parent_waits_in_another_partition_until_it_is_settled(self, workers: Any) -> None:
        a = workers("a")
        parts = a.outbox_partitions
        parent = next(f"scrm:p{i}" for i in range(1000) if partition_of(f"scrm:p{i}", parts) == 0)
        child = next(f"scrm:m{i}" for i in range(1000) if partition_of(f"scrm:m{i}", parts) == min(1, parts - 1))
        ops = [
            CrmOperation(object=CrmObject.contact, external_key=parent, fields={"name": "x"}),
            CrmOperation(object=CrmObject.message, external_key=child, fields={"text": "hi"}, refs={"contact": parent}),
        ]
        a.commit_page(PageCommit("demo", "1", ops=ops))
        leases = a.acquire_leases("a", self._partitions(a), parts, LONG)
        by_name = {x.name: x for x in leases}
        (m,) = [item for item, _ in a.outbox_claim(by_name[f"outbox#{partition_of(child, parts)}"], 10)]
        target = (CrmObject.contact, parent)
        assert a.outbox_waiting([target], m.seq) == {target}  # the child must wait
        # An edit of the parent committed after the child does not hold the child up.
        later = CrmOperation(object=CrmObject.contact, external_key=parent, fields={"name": "y"})
        a.commit_page(PageCommit("demo", "2", ops=[later]))
        (c, c2) = [item for item, _ in a.outbox_claim(by_name[f"outbox#{partition_of(parent, parts)}"], 10)]
        a.outbox_settle(Settlement(done=[c.seq], crm_ids=[(CrmObject.contact, parent, "001")]))
        assert a.outbox_waiting([target], m.seq) == set()
        assert a.outbox_waiting([target]) == {target} and c2.seq > m.seq  # the edit still waits, for itself

    def test_a_dead_holders_rows_go_to_the_next_holder_once_and_marked(self, workers: Any) -> None:
        """A holder that stops renewing (killed) loses its partitions after the lease time; the
        next holder gets what it had in hand (possibly written) and what it never claimed
        (not), and the dead one's settlement of a row it sent still counts once."""
        a, b = workers("a"), workers("b")
        key = "scrm:c1"
        name = f"outbox#{partition_of(key, a.outbox_partitions)}"
        ops = [CrmOperation(object=CrmObject.contact, external_key=key, fields={"v": v}) for v in range(3)]
        a.commit_page(PageCommit("demo", "1", ops=ops[:2]))
        (old,) = a.acquire_leases("a", [name], 1, SHORT)
        in_hand = a.outbox_claim(old, 10)
        assert [again for _, again in in_hand] == [False, False]
        b.commit_page(PageCommit("demo", "2", ops=ops[2:]))
        assert b.fleet_heartbeat("b", LONG) == []
        (new,) = eventually(lambda: b.acquire_leases("b", [name], 1, LONG), "the dead holder's partition taken over")
        assert a.fleet_heartbeat("a", LONG) == []  # expired: not renewed for the old holder
        got = b.outbox_claim(new, 10)
        assert [(item.op.fields["v"], again) for item, again in got] == [(0, True), (1, True), (2, False)]
        assert b.outbox_claim(new, 10) == []
        b.outbox_settle(Settlement(done=[item.seq for item, _ in got]))
        assert b.outbox_depth() == 0

    @pytest.mark.parametrize("how", ["store", "default"])
    def test_claiming_several_partitions_at_once_skips_the_lost_ones_and_takes_the_oldest(
        self, workers: Any, how: str
    ) -> None:
        """:meth:`FleetStore.outbox_claim_each`, as the store does it and as the interface's
        default does (lease by lease): the rows of the partitions still held, oldest first in
        each, up to the limit in all; a lost partition is named and none of its rows handed out."""
        a, b = workers("a"), workers("b")
        parts = a.outbox_partitions
        keys = {
            p: next(f"scrm:k{i}" for i in range(10_000) if partition_of(f"scrm:k{i}", parts) == p) for p in (0, 1, 2)
        }
        ops = [
            CrmOperation(object=CrmObject.contact, external_key=keys[p], fields={"v": v})
            for v in range(2)
            for p in keys
        ]
        seqs = a.commit_page(PageCommit("demo", "1", ops=ops))
        (p0,) = a.acquire_leases("a", ["outbox#0"], 1, LONG)
        (p2,) = a.acquire_leases("a", ["outbox#2"], 1, LONG)
        (p1_old,) = a.acquire_leases("a", ["outbox#1"], 1, SHORT)
        (p1_new,) = eventually(lambda: b.acquire_leases("b", ["outbox#1"], 1, LONG), "partition 1 taken over")
        claim = (
            a.outbox_claim_each
            if how == "store"
            else lambda leases, limit: FleetStore.outbox_claim_each(a, leases, limit)
        )
        first, lost = claim([p0, p1_old, p2], 3)
        assert lost == ["outbox#1"]
        mine = [s for s, op in zip(seqs, ops, strict=True) if op.external_key != keys[1]]
        got = [item.seq for item, _ in first]
        assert len(got) == 3 and not any(again for _, again in first)
        rest, lost = claim([p0, p2], 100)
        assert lost == [] and sorted(got + [item.seq for item, _ in rest]) == mine
        if how == "store":  # in one go: the oldest across the partitions
            assert got == mine[:3]
        for key in (keys[0], keys[2]):  # each record's writes in order, whichever slice they came in
            values = [item.op.fields["v"] for item, _ in first + rest if item.op.external_key == key]
            assert values == [0, 1]
        assert claim([p0, p2], 100) == ([], [])
        theirs = b.outbox_claim(p1_new, 100)  # never handed to the lost lease: not "possibly written"
        assert [(item.op.external_key, again) for item, again in theirs] == [(keys[1], False)] * 2

    def test_the_fleet_view_and_leaving(self, workers: Any) -> None:
        a, b = workers("a"), workers("b")
        a.acquire_leases("a", ["s1"], 1, LONG)
        a.commit_page(PageCommit("demo", "1", ops=[CrmOperation(object=CrmObject.contact, external_key="k")]))
        assert a.live_workers(LONG) == ["a", "b"]
        view = b.fleet(LONG)
        assert [w.id for w in view.workers] == ["a", "b"] and all(w.alive for w in view.workers)
        assert [(x.name, x.holder) for x in view.leases] == [("s1", "a")] and view.leases[0].expires_in > 0
        assert sum(view.outbox_by_partition.values()) == 1
        a.leave_fleet("a")
        assert b.live_workers(LONG) == ["b"]
        released = b.fleet(LONG)  # a released lease is free at once (and shows so)
        assert [(x.name, x.holder) for x in released.leases] == [("s1", None)] and released.leases[0].expires_in < 0
        assert [x.name for x in b.acquire_leases("b", ["s1"], 1, LONG)] == ["s1"]
