"""The sink's pool: operations waiting for the CRM, merged per record and grouped into batches.

Every outbox item the sink has in hand is here until it is settled. Items on the same
record are merged (in outbox order) into one :class:`Group`; groups are kept per object
type in arrival order, so a batch is simply the next ``size`` groups of a type that are
*ready*. A group is ready when no record it refers to is still in the pool: a message
waits for its contact, profile and case to be written first, so a reference never points
at a record the CRM does not have yet.

For a CRM that keeps an object type on another record (:attr:`CrmAdapter.stored_on`,
e.g. HubSpot's profile and lead properties on the contact), such a group joins the
*unit* of the record it lands on: a unit is one record written, whatever operations it
carries, and the batch size counts units.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from scrm.store import OutboxItem
from scrm_core.models import CRM_OBJECT_ORDER, CrmObject, CrmOperation

__all__ = ["Group", "Pool", "ref_target"]

Key = tuple[CrmObject, str]
_BY_NAME = {obj.value: obj for obj in CrmObject}


def ref_target(name: str, key: str) -> Key | None:
    """The record a reference points at: ``refs["contact"] = k`` is (contact, k)."""
    obj = _BY_NAME.get(name)
    return None if obj is None else (obj, key)


@dataclass(eq=False, slots=True)
class Group:
    """One record's operations in hand, merged, and the outbox items they came from."""

    op: CrmOperation
    items: list[OutboxItem]
    since: float  # when the first of them arrived (monotonic seconds)
    uncertain: bool = False  # an earlier write of it may have landed unseen
    unit: Key = field(default=(CrmObject.contact, ""))
    # The records ``op`` refers to, worked out once per op (a merge replaces the op).
    _targets: tuple[Key, ...] = field(default=(), repr=False)
    _targets_of: CrmOperation | None = field(default=None, repr=False)
    # The record that held it back at the last readiness check: looked at first next time
    # (a message waits for its contact while the sink scans the bucket again and again).
    blocker: Key | None = field(default=None, repr=False)

    @property
    def targets(self) -> tuple[Key, ...]:
        """The records this group's operation refers to (its known references)."""
        op = self.op
        if self._targets_of is not op:
            self._targets = tuple(t for name, key in op.refs.items() if (t := ref_target(name, key)) is not None)
            self._targets_of = op
            self.blocker = None  # a merge may have changed what it refers to
        return self._targets

    @property
    def key(self) -> Key:
        return (self.op.object, self.op.external_key)

    @property
    def seqs(self) -> list[int]:
        return [item.seq for item in self.items]

    @property
    def attempts(self) -> int:
        return max(item.attempts for item in self.items)


class Pool:
    def __init__(self, stored_on: Mapping[CrmObject, str]) -> None:
        self.stored_on = dict(stored_on)
        self.groups: dict[Key, Group] = {}
        # unit (the record written) -> its groups, per object type of the unit, in arrival order
        self.buckets: dict[CrmObject, dict[Key, list[Group]]] = {obj: {} for obj in CRM_OBJECT_ORDER}
        # While older outbox rows are still unread, newer records wait: an older row of the same
        # record (its creation, say) or of a record it refers to may still be in the outbox.
        self.hold_from: int | None = None
        self.held = 0  # groups waiting because of hold_from
        #: Records outside the pool that still have an operation in the outbox (in a fleet:
        #: another sink's partition); a group referring to one of them waits for it.
        self.elsewhere: set[Key] = set()

    def _is_held(self, group: Group) -> bool:
        return self.hold_from is not None and group.items[0].seq >= self.hold_from

    def release(self) -> None:
        """The older rows are all read: nothing waits for them any more."""
        self.hold_from, self.held = None, 0

    def __len__(self) -> int:
        """Records in hand (units)."""
        return sum(len(units) for units in self.buckets.values())

    def __contains__(self, key: Key) -> bool:
        return key in self.groups

    def oldest(self) -> float | None:
        first = next(iter(self.groups.values()), None)
        return None if first is None else first.since

    def _unit_of(self, op: CrmOperation) -> Key:
        ref = self.stored_on.get(op.object)
        if ref is not None and ref in op.refs and (target := ref_target(ref, op.refs[ref])) is not None:
            return target
        return (op.object, op.external_key)

    def add(self, item: OutboxItem, now: float, *, uncertain: bool = False) -> None:
        """Merge an outbox item into its record's group, in outbox (seq) order: a backlog item
        read after newer items of the same record arrived is older than they are."""
        key = (item.op.object, item.op.external_key)
        group = self.groups.get(key)
        if group is None:
            self._insert(Group(item.op, [item], now, uncertain))
            return
        if item.seq < group.items[0].seq:
            was_held = self._is_held(group)
            group.op = item.op.merged_with(group.op)
            group.items.insert(0, item)
            if was_held and not self._is_held(group):
                self.held -= 1
        else:
            group.op = group.op.merged_with(item.op)
            group.items.append(item)
        group.uncertain |= uncertain

    def add_committed(self, seqs: Sequence[int], ops: Sequence[CrmOperation], now: float) -> None:
        """:meth:`add` for the items of a page this process just committed, in seq order, with
        the usual case written out (a record not in the pool, kept on its own: one new group)."""
        groups, buckets, stored_on, hold_from = self.groups, self.buckets, self.stored_on, self.hold_from
        for seq, op in zip(seqs, ops, strict=True):
            item = OutboxItem(seq, op)
            key = (op.object, op.external_key)
            if key in groups or op.object in stored_on:
                self.add(item, now)
                continue
            groups[key] = group = Group(op, [item], now, False, key)
            if hold_from is not None and seq >= hold_from:
                self.held += 1
            bucket = buckets[key[0]]
            unit = bucket.get(key)
            if unit is None:
                bucket[key] = [group]
            else:  # another record's group kept on this one (stored_on) came first
                unit.append(group)

    def put_back(self, group: Group) -> None:
        """A group to send again: older than whatever arrived for the same record meanwhile."""
        pooled = self.groups.get(group.key)
        if pooled is None:
            self._insert(group)
            return
        pooled.op = group.op.merged_with(pooled.op)
        pooled.items[:0] = group.items
        pooled.uncertain |= group.uncertain
        pooled.since = min(pooled.since, group.since)

    def _insert(self, group: Group) -> None:
        self.held += self._is_held(group)
        group.unit = self._unit_of(group.op)
        self.groups[group.key] = group
        self.buckets[group.unit[0]].setdefault(group.unit, []).append(group)

    def ready(self, unit: list[Group]) -> bool:
        """Whether every group of ``unit`` may go: not held back (``hold_from``), and no record it
        refers to is pooled in another unit or being written by another sink of the fleet
        (:attr:`elsewhere`). The sink's hot loop (two or three calls per record): written
        out inline, locals bound once."""
        hold_from = self.hold_from
        pooled_get = self.groups.get
        elsewhere = self.elsewhere
        for group in unit:
            if hold_from is not None and group.items[0].seq >= hold_from:
                return False
            targets = group._targets if group._targets_of is group.op else group.targets
            own = group.unit
            blocker = group.blocker  # first: a merged operation forgets its old blocker (above)
            if blocker is not None:
                pooled = pooled_get(blocker)
                if (pooled.unit != own) if pooled is not None else (blocker in elsewhere):
                    return False
            for target in targets:
                pooled = pooled_get(target)
                if (pooled.unit != own) if pooled is not None else (target in elsewhere):
                    group.blocker = target
                    return False
        return True

    def take(self, bucket: CrmObject, size: int, *, partial: bool) -> list[list[Group]]:
        """The next ``size`` ready units of ``bucket`` (fewer only when ``partial``), out of the pool."""
        units = self.buckets[bucket]
        if not units or (not partial and len(units) < size):
            return []
        chosen: list[Key] = []
        ready = self.ready
        needed, left = size, len(units)
        for unit_key, unit in units.items():
            if needed > left and not partial:
                return []  # a full batch can no longer be made: no need to look at the rest
            left -= 1
            if ready(unit):
                chosen.append(unit_key)
                needed -= 1
                if not needed:
                    break
        if not chosen or (len(chosen) < size and not partial):
            return []
        taken = [units.pop(unit_key) for unit_key in chosen]
        for unit in taken:
            for group in unit:
                del self.groups[group.key]
        return taken

    def all_groups(self) -> Iterator[Group]:
        return iter(list(self.groups.values()))
