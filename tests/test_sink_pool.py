"""The sink's pool: records merged in outbox order, parents before children, batches counted in records."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scrm.engine.pool import Pool
from scrm.store import OutboxItem

from scrm_core.models import CrmObject, CrmOperation


def op(obj: CrmObject, key: str, refs: dict[str, str] | None = None, **fields: object) -> CrmOperation:
    return CrmOperation(object=obj, external_key=key, fields=fields, refs=refs or {})


def test_a_backlog_item_read_after_a_newer_one_is_merged_as_the_older() -> None:
    pool = Pool({})
    pool.add(OutboxItem(20, op(CrmObject.message, "m", text="edited")), 0.0)  # committed by this run
    pool.add(OutboxItem(7, op(CrmObject.message, "m", text="original", network="x")), 0.0, uncertain=True)
    ((group,),) = pool.take(CrmObject.message, 10, partial=True)
    assert group.op.fields == {"text": "edited", "network": "x"}, "the newer text must win"
    assert group.seqs == [7, 20] and group.uncertain


def test_children_wait_for_their_parents_and_full_batches_wait_for_more() -> None:
    pool = Pool({})
    pool.add(OutboxItem(1, op(CrmObject.contact, "c1")), 0.0)
    for n in range(3):
        pool.add(OutboxItem(10 + n, op(CrmObject.message, f"m{n}", {"contact": "c1"})), 0.0)
    assert pool.take(CrmObject.message, 2, partial=False) == [], "their contact is not written yet"
    assert pool.take(CrmObject.contact, 2, partial=False) == [], "a partial batch waits for more"
    assert len(pool.take(CrmObject.contact, 2, partial=True)) == 1
    assert len(pool.take(CrmObject.message, 2, partial=False)) == 2
    assert len(pool.take(CrmObject.message, 2, partial=False)) == 0
    assert len(pool.take(CrmObject.message, 2, partial=True)) == 1


def test_records_stored_on_another_count_as_that_one_record() -> None:
    pool = Pool({CrmObject.profile: "contact", CrmObject.lead: "contact"})
    for n in range(2):
        pool.add(OutboxItem(3 * n, op(CrmObject.contact, f"k{n}")), 0.0)
        pool.add(OutboxItem(3 * n + 1, op(CrmObject.profile, f"k{n}", {"contact": f"k{n}"})), 0.0)
        pool.add(OutboxItem(3 * n + 2, op(CrmObject.lead, f"k{n}", {"contact": f"k{n}"})), 0.0)
    assert len(pool) == 2
    units = pool.take(CrmObject.contact, 2, partial=False)
    assert [[g.op.object for g in unit] for unit in units] == [
        [CrmObject.contact, CrmObject.profile, CrmObject.lead]
    ] * 2
    assert len(pool) == 0


def test_records_committed_by_this_run_wait_while_older_rows_are_unread() -> None:
    pool = Pool({})
    pool.hold_from = 100  # the first seq this run committed; the outbox still has older rows
    pool.add(OutboxItem(100, op(CrmObject.message, "m1", text="edited")), 0.0)
    pool.add(OutboxItem(101, op(CrmObject.message, "m2", text="new")), 0.0)
    assert pool.held == 2 and pool.take(CrmObject.message, 1, partial=True) == []
    pool.add(OutboxItem(7, op(CrmObject.message, "m1", text="original", network="x")), 0.0, uncertain=True)
    assert pool.held == 1, "merged with its older row, m1 may go"
    ((group,),) = pool.take(CrmObject.message, 1, partial=True)
    assert group.key == (CrmObject.message, "m1") and group.op.fields["text"] == "edited"
    pool.release()
    assert len(pool.take(CrmObject.message, 1, partial=True)) == 1


def test_a_record_waits_only_for_what_it_refers_to_now() -> None:
    pool = Pool({})
    pool.add(OutboxItem(1, op(CrmObject.case, "case-1")), 0.0)
    pool.add(OutboxItem(2, op(CrmObject.message, "m", {"case": "case-1"}, text="a")), 0.0)
    assert pool.take(CrmObject.message, 10, partial=True) == [], "its case is not written yet"
    # A later operation on the message moves it to another case, one the CRM already has.
    pool.add(OutboxItem(3, op(CrmObject.message, "m", {"case": "case-2"}, text="b")), 0.0)
    ((group,),) = pool.take(CrmObject.message, 10, partial=True)
    assert group.op.refs == {"case": "case-2"} and group.seqs == [2, 3]
    assert len(pool.take(CrmObject.case, 10, partial=True)) == 1


_OBJECTS = [CrmObject.contact, CrmObject.profile, CrmObject.lead, CrmObject.message]


def _snapshot(pool: Pool) -> object:
    """Everything the pool holds, in order: buckets, units, groups (op, seqs, unit), held."""
    return (
        {
            obj: [
                (unit, [(g.key, g.op, g.seqs, g.unit, g.since, g.uncertain) for g in groups])
                for unit, groups in units.items()
            ]
            for obj, units in pool.buckets.items()
        },
        list(pool.groups),
        pool.held,
    )


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(_OBJECTS), st.sampled_from("abc"), st.sampled_from("xyz"), st.booleans()),
        max_size=30,
    ),
    stored_on=st.booleans(),
    hold_from=st.one_of(st.none(), st.integers(0, 30)),
    cut=st.integers(0, 30),
)
def test_a_committed_page_lands_as_if_added_one_item_at_a_time(
    ops: list[tuple[CrmObject, str, str, bool]], stored_on: bool, hold_from: int | None, cut: int
) -> None:
    """Pool.add_committed (the sink's fast path for a page this run committed) leaves the pool
    exactly as Pool.add item by item would: groups, merges, units, order and held count."""
    crm_ops = [
        op(obj, key, {"contact": contact} if obj is not CrmObject.contact and with_ref else None, n=n)
        for n, (obj, key, contact, with_ref) in enumerate(ops)
    ]
    placed = {CrmObject.profile: "contact", CrmObject.lead: "contact"} if stored_on else {}
    one, page = Pool(placed), Pool(placed)
    one.hold_from = page.hold_from = hold_from
    for seq, crm_op in enumerate(crm_ops):
        one.add(OutboxItem(seq, crm_op), 1.0)
    seqs = list(range(len(crm_ops)))
    page.add_committed(seqs[:cut], crm_ops[:cut], 1.0)  # two pages
    page.add_committed(seqs[cut:], crm_ops[cut:], 1.0)
    assert _snapshot(page) == _snapshot(one)
    for obj in _OBJECTS:
        assert [[g.key for g in u] for u in page.take(obj, 5, partial=True)] == [
            [g.key for g in u] for u in one.take(obj, 5, partial=True)
        ]
