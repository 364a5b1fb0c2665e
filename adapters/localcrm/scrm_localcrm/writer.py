"""The synchronous write path: one batch of upserts in one transaction.

Runs only in the adapter's worker thread, which owns the connection. It is built for
throughput (the engine targets >= 20,000 messages/s end to end on one core), so the
per-record Python work is kept to a minimum:

1. ``BEGIN IMMEDIATE`` takes the write lock first, so the existence check cannot go stale
   before the writes: no ``ON CONFLICT`` is needed, inserts and updates are separate;
2. one query finds which external keys exist, one query per ref type resolves refs;
3. ops are grouped by shape (field names + ref names), and each group is checked and
   converted column by column (a set of the column's types decides whether any value
   needs a closer look), then written with one ``executemany`` of a cached INSERT (new
   rows, ids assigned here) or UPDATE (only the columns the ops carry: a partial update
   keeps the rest);
4. no savepoints unless SQLite refuses a value (then the batch is written again, group by
   group under savepoints: see ``Writer._execute``).
"""

from __future__ import annotations

import sqlite3
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from itertools import islice, repeat
from operator import attrgetter, itemgetter
from types import NoneType
from typing import Any

import orjson
from pydantic import TypeAdapter

from scrm_core import CrmLimits, CrmObject, CrmOperation, OperationResult
from scrm_core.errors import FatalError, RetryableError
from scrm_core.fitting import cut_text

from .db import utc_now
from .schema import LABEL_CORRECTIONS, OUTBOUND_REPLIES, SPECS, Kind, TableSpec

__all__ = ["Writer", "validate_batch"]

# Frame columns a field may not overwrite; a field with one of these names goes to extra.
_RESERVED = frozenset({"id", "external_key", "extra", "crm_created_at", "crm_updated_at"})
_MAX_PLANS = 1024
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# Ids of referenced records kept per table: the most recently looked up, the oldest dropped
# first. A message refers to its author's contact and profile, read a moment earlier; old
# authors who post again are looked up again (one query per batch for all the misses). At
# ~130 bytes an entry, 200,000 per table (what it was) grew to ~75 MB over a 1M-message
# backfill; 20,000 is ~2.6 MB and costs no measurable CPU (docs/benchmarks.md, "Memory").
_MAX_CACHED_REFS = 20_000
# A table whose last batch was at least this share of new records gets its next batch
# inserted without looking its keys up first (messages: nearly always).
_GUESS_NEW_FROM = 0.9
_fromisoformat = datetime.fromisoformat
_ONLY_NONE = {NoneType}
_get_object = attrgetter("object")
_get_key = attrgetter("external_key")
_get_fields = attrgetter("fields")
_get_refs = attrgetter("refs")
# What OperationResult(...) calls, without BaseModel.__init__ around it: same checks, same model.
_validate_result = OperationResult.__pydantic_validator__.validate_python
# The same for a whole batch in one call, strict (the values are exactly str and bool):
# a fifth cheaper than one call per result.
_validate_results = partial(TypeAdapter(list[OperationResult]).validate_python, strict=True)
# What SQLite's binding or constraints raise for one bad value (not for a bad database).
_VALUE_ERRORS = (
    sqlite3.InterfaceError,
    sqlite3.IntegrityError,
    sqlite3.ProgrammingError,
    UnicodeEncodeError,
    OverflowError,
)


# ---------------------------------------------------------------- value checks


class _FieldError(Exception):
    pass


class _ValueRefused(Exception):
    """SQLite refused a value of a batch written without savepoints: write it again with them."""


def _evict_oldest(cache: dict[str, int], excess: int) -> None:
    """Make room for ``excess`` more entries: the oldest quarter goes at once (dicts keep
    insertion order), so eviction is rare and costs O(1) per entry."""
    if excess <= 0:
        return
    for key in list(islice(cache, max(excess, _MAX_CACHED_REFS // 4))):
        del cache[key]


def _text(v: Any) -> Any:
    if v is None or type(v) is str:
        return v
    if isinstance(v, str):  # a StrEnum, say
        return str(v)
    if isinstance(v, int | float) and not isinstance(v, bool):
        return str(v)
    raise _FieldError(f"must be a string, got {type(v).__name__}")


def _time(v: Any) -> Any:
    if v is None:
        return None
    if type(v) is str:
        try:
            _fromisoformat(v)
        except ValueError:
            raise _FieldError(f"is not an ISO-8601 time: {v[:40]!r}") from None
        return v
    if isinstance(v, datetime):
        return v.isoformat()
    raise _FieldError(f"must be an ISO-8601 time, got {type(v).__name__}")


def _int(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if v is None or (type(v) is int and _INT64_MIN <= v <= _INT64_MAX):
        return v
    if type(v) is int:
        raise _FieldError(f"is out of range: {v}")
    raise _FieldError(f"must be an integer, got {type(v).__name__}")


def _check_ints(col: Sequence[Any]) -> Sequence[Any]:
    values = [v for v in col if v is not None]
    if values and (min(values) < _INT64_MIN or max(values) > _INT64_MAX):
        raise ValueError("out of range")
    return col


def _real(v: Any) -> Any:
    if v is None or type(v) is float:
        return v
    if type(v) is int:
        return float(v)
    raise _FieldError(f"must be a number, got {type(v).__name__}")


def _bool(v: Any) -> Any:
    if v is None or type(v) is bool:
        return None if v is None else int(v)
    if type(v) is int and v in (0, 1):
        return v
    raise _FieldError(f"must be true or false, got {type(v).__name__}")


def _json(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, list | tuple):
        try:
            return orjson.dumps(v).decode()
        except TypeError as e:
            raise _FieldError(f"cannot be stored as JSON: {e}") from None
    raise _FieldError(f"must be a list, got {type(v).__name__}")


def _check_times(col: Sequence[Any]) -> Sequence[Any]:
    deque(map(_fromisoformat, [v for v in col if v is not None]), maxlen=0)  # raises on a bad one
    return col


def _dump_lists(col: Sequence[Any]) -> list[Any]:
    return list(map(bytes.decode, map(orjson.dumps, col)))


# Per kind: the value types that need no per-value work, and the whole-column conversion
# for them (it may raise; then every value goes through the per-value check instead).
_FAST: dict[Kind, tuple[frozenset[type], Callable[[Sequence[Any]], Sequence[Any]] | None]] = {
    Kind.text: (frozenset({str, NoneType}), None),
    Kind.time: (frozenset({str, NoneType}), _check_times),
    Kind.int: (frozenset({int, NoneType}), _check_ints),
    Kind.real: (frozenset({float, int, NoneType}), None),
    Kind.bool: (frozenset({bool}), lambda col: list(map(int, col))),
    Kind.json: (frozenset({list}), _dump_lists),
}
_SLOW: dict[Kind, Callable[[Any], Any]] = {
    Kind.text: _text,
    Kind.time: _time,
    Kind.int: _int,
    Kind.real: _real,
    Kind.bool: _bool,
    Kind.json: _json,
}


# ---------------------------------------------------------------- plans


@dataclass(frozen=True, eq=False)  # eq=False: hashed by identity, cheap as a dict key
class _Plan:
    """How to write ops of one shape: which fields are columns, which go to extra, the SQL."""

    table: str
    names: tuple[str, ...]
    kinds: tuple[Kind, ...]
    extras: tuple[str, ...]
    refs: tuple[str, ...]
    unknown_refs: tuple[str, ...]
    cols: tuple[str, ...]  # the columns written: names, then <ref>_id, then extra if any
    _sql: dict[tuple[bool, tuple[int, ...], bool], str] = field(default_factory=dict)

    def columns(self, all_fields: list[dict[str, Any]]) -> list[Sequence[Any]]:
        """The values of each of ``names``, column by column (row lookups by one itemgetter in C)."""
        if len(self.names) > 1:
            return list(zip(*map(itemgetter(*self.names), all_fields), strict=True))
        return [[f[name] for f in all_fields] for name in self.names]

    def sql(self, insert: bool, nulls: tuple[int, ...] = (), skip_existing: bool = False) -> str:
        """The INSERT (values: id, external_key, cols..., created, updated) or UPDATE (values:
        cols..., updated, id) of this shape; the cols at positions ``nulls`` are set to a
        literal NULL and get no value (binding None costs sqlite3 an adapter lookup).
        ``skip_existing``: the INSERT leaves a row whose external key exists alone."""
        key = (insert, nulls, skip_existing)
        sql = self._sql.get(key)
        if sql is None:
            values = ["NULL" if j in nulls else "?" for j in range(len(self.cols))]
            if insert:
                names = ", ".join(["id", "external_key", *self.cols, "crm_created_at", "crm_updated_at"])
                sql = f"INSERT INTO {self.table} ({names}) VALUES ({', '.join(['?', '?', *values, '?', '?'])})"
                if skip_existing:
                    sql += " ON CONFLICT (external_key) DO NOTHING"
            else:
                sets = ", ".join(
                    [*(f"{c} = {v}" for c, v in zip(self.cols, values, strict=True)), "crm_updated_at = ?"]
                )
                sql = f"UPDATE {self.table} SET {sets} WHERE id = ?"
            self._sql[key] = sql
        return sql


def _make_plan(spec: TableSpec, field_names: tuple[str, ...], ref_names: tuple[str, ...]) -> _Plan:
    names = tuple(n for n in field_names if n in spec.columns and n not in _RESERVED)
    extras = tuple(n for n in field_names if n not in spec.columns or n in _RESERVED)
    refs = tuple(r for r in ref_names if r in spec.refs)
    unknown_refs = tuple(r for r in ref_names if r not in spec.refs)
    return _Plan(
        table=spec.table,
        names=names,
        kinds=tuple(spec.columns[n] for n in names),
        extras=extras,
        refs=refs,
        unknown_refs=unknown_refs,
        cols=(*names, *(f"{r}_id" for r in refs), *(["extra"] if extras else [])),
    )


def validate_batch(ops: Sequence[CrmOperation], limits: CrmLimits) -> None:
    """The batch contract of :meth:`CrmAdapter.apply`; breaking it is a bug in the caller."""
    if not ops:
        return
    obj = CrmObject(ops[0].object)  # a model_construct()ed op may hold a plain str
    if list(map(_get_object, ops)).count(obj) != len(ops):  # some op.object != obj
        kinds = sorted({str(op.object) for op in ops})
        raise ValueError(f"apply() takes one object type per call, got {', '.join(kinds)}")
    if len(ops) > limits.batch_size(obj):
        raise ValueError(f"apply() got {len(ops)} {obj.value} operations; the limit is {limits.batch_size(obj)}")
    if len(set(map(_get_key, ops))) != len(ops):
        dups = sorted(k for k, n in Counter(op.external_key for op in ops).items() if n > 1)
        raise ValueError(f"apply() got the same external key twice in one batch: {', '.join(dups[:5])}")


# ---------------------------------------------------------------- the writer


class Writer:
    """Owns the connection of the adapter's worker thread; every public method is one transaction."""

    def __init__(self, conn: sqlite3.Connection, limits: CrmLimits) -> None:
        self.conn = conn
        self.limits = limits
        self._plans: dict[tuple[CrmObject, tuple[str, ...], tuple[str, ...]], _Plan] = {}
        # Referenced table -> external key -> id. A record keeps its id for life and ids are
        # never reused, so only erase() (which clears it) can make an entry stale. Saves a
        # third of a batch's lookups, as authors and contacts repeat. One writing process
        # per database is assumed (the CLI only writes outbound_replies).
        self._ref_ids: dict[str, dict[str, int]] = {}
        self._careful = False  # savepoints around each group (after SQLite refused a value)
        self._new_share: dict[str, float] = {}  # table -> share of new records in its last batch
        self._inserted = 0  # rows inserted by the batch being written

    def close(self) -> None:
        self.conn.close()

    def _lookup(self, table: str, keys: Iterable[str], column: str = "id") -> dict[str, Any]:
        """external key -> id (or another column) for the keys that exist; one query: json_each
        walks the keys, each looked up in the external_key index (no temporary index of
        them first, as ``IN (SELECT value FROM json_each(?))`` builds)."""
        cur = self.conn.execute(
            f"SELECT t.external_key, t.{column} FROM json_each(?) AS j CROSS JOIN {table} AS t"
            " ON t.external_key = j.value",
            (orjson.dumps(list(keys)).decode(),),
        )
        return dict(cur.fetchall())

    def _resolve(self, table: str, targets: list[str]) -> list[int | None]:
        """The id of each external key in ``targets`` (a ref into ``table``), None for a
        record that is not there: from the cache, the rest in one query."""
        cache = self._ref_ids.setdefault(table, {})
        ids: list[int | None] = list(map(cache.get, targets))
        if None in ids:
            missing = {key for key, found in zip(targets, ids, strict=True) if found is None}
            found = self._lookup(table, missing)
            _evict_oldest(cache, len(cache) + len(found) - _MAX_CACHED_REFS)
            cache.update(found)
            ids = [i if i is not None else found.get(key) for key, i in zip(targets, ids, strict=True)]
        return ids

    def _plan(self, spec: TableSpec, op: CrmOperation) -> _Plan:
        key = (spec.obj, tuple(op.fields), tuple(op.refs))
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= _MAX_PLANS:  # third-party shapes cannot grow it without bound
                self._plans.clear()
            plan = self._plans[key] = _make_plan(spec, key[1], key[2])
        return plan

    def _transaction(self, fn: Callable[[], Any]) -> Any:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise RetryableError("the localcrm database is busy (another writer holds it)", retry_after=1.0) from e
        try:
            result = fn()
            self.conn.execute("COMMIT")
            return result
        except BaseException as e:
            if self.conn.in_transaction:  # SQLite may have rolled back already (disk full, I/O error)
                self.conn.execute("ROLLBACK")
            if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
                raise RetryableError("the localcrm database is busy", retry_after=1.0, detail=str(e)) from e
            if isinstance(e, sqlite3.DatabaseError) and any(w in str(e) for w in ("disk is full", "readonly", "I/O")):
                raise FatalError(f"cannot write the localcrm database: {e}", detail=repr(e)) from e
            raise

    # ------------------------------------------------------------ apply

    def apply(self, ops: Sequence[CrmOperation]) -> list[OperationResult]:
        validate_batch(ops, self.limits)
        if not ops:
            return []
        spec = SPECS[CrmObject(ops[0].object)]
        try:
            results: list[OperationResult] = self._transaction(lambda: self._apply(spec, ops))
        except _ValueRefused:
            # SQLite refused a value somewhere in the batch (rare): it was rolled back whole;
            # write it again group by group under savepoints, so only that record fails.
            self._careful = True
            try:
                results = self._transaction(lambda: self._apply(spec, ops))
            finally:
                self._careful = False
        return results

    def _apply(self, spec: TableSpec, ops: Sequence[CrmOperation]) -> list[OperationResult]:
        now = utc_now()
        keys = list(map(_get_key, ops))
        groups = self._groups(spec, ops)
        # Where the last batch of this table was (nearly) all new records, guess so again and
        # skip looking the keys up: the insert finds the few that exist (see _write_group).
        looked_up = self._careful or len(groups) > 1 or self._new_share.get(spec.table, 0.0) < _GUESS_NEW_FROM
        if looked_up:
            existing = self._lookup(spec.table, keys)
            crm_ids: list[int | None] = list(map(existing.get, keys))
        else:
            crm_ids = [None] * len(ops)
        errors: dict[int, OperationResult] = {}

        self._inserted = 0
        first_id = next_id = self._next_id(spec.table)
        for plan, idx in groups.items():
            gops = ops if len(idx) == len(ops) else [ops[i] for i in idx]
            next_id = self._write_group(spec, plan, gops, idx, crm_ids, errors, now, next_id, looked_up)
        if next_id != first_id:
            self.conn.execute("UPDATE localcrm_ids SET last_id = ? WHERE tbl = ?", (next_id - 1, spec.table))
        self._new_share[spec.table] = self._inserted / len(ops)

        if not errors:
            return _validate_results(
                [{"external_key": k, "ok": True, "crm_id": c} for k, c in zip(keys, map(str, crm_ids), strict=True)]
            )
        return [
            errors.get(i) or _validate_result({"external_key": key, "ok": True, "crm_id": str(crm_ids[i])})
            for i, key in enumerate(keys)
        ]

    def _groups(self, spec: TableSpec, ops: Sequence[CrmOperation]) -> dict[_Plan, Sequence[int]]:
        """Positions of the ops by plan (field names + ref names); mostly one plan for all."""
        names = list(map(tuple, map(_get_fields, ops)))
        ref_names = list(map(tuple, map(_get_refs, ops)))
        obj, plans = spec.obj, self._plans
        if names.count(names[0]) == len(ops) and ref_names.count(ref_names[0]) == len(ops):
            # In C: the usual batch, every op of one shape.
            plan = plans.get((obj, names[0], ref_names[0])) or self._plan(spec, ops[0])
            return {plan: range(len(ops))}
        shapes = list(zip(names, ref_names, strict=True))
        groups: dict[_Plan, list[int]] = {}
        shape: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        group: list[int] = []
        for i, op_shape in enumerate(shapes):
            if op_shape != shape:  # ops of one shape mostly come in runs
                shape = op_shape
                plan = plans.get((obj, *shape)) or self._plan(spec, ops[i])
                group = groups.setdefault(plan, [])
            group.append(i)
        return dict(groups)

    def _next_id(self, table: str) -> int:
        # Ids are never reused (a stale CRM id must not point at someone else after an
        # erase); localcrm_ids keeps the high-water mark, cheaper than AUTOINCREMENT.
        row = self.conn.execute(
            f"SELECT max(coalesce((SELECT last_id FROM localcrm_ids WHERE tbl = ?), 0),"
            f" coalesce((SELECT max(id) FROM {table}), 0))",
            (table,),
        ).fetchone()
        return int(row[0]) + 1

    def _write_group(
        self,
        spec: TableSpec,
        plan: _Plan,
        gops: Sequence[CrmOperation],
        gidx: Sequence[int],
        crm_ids: list[int | None],
        errors: dict[int, OperationResult],
        now: str,
        next_id: int,
        looked_up: bool = True,
    ) -> int:
        """Check, convert and write ops of one shape; returns the next free id.

        ``looked_up`` False: ``crm_ids`` holds None for every op, nobody looked; the ops are
        inserted skipping the keys that exist, which are then updated (when every op can
        be a new record: its required fields set, no extra fields to merge), or looked up
        here first."""
        m = len(gops)

        def fail(k: int, error: str, retryable: bool = False) -> None:
            i = gidx[k]
            if i not in errors:  # the first problem found is the one reported
                errors[i] = OperationResult(
                    external_key=gops[k].external_key, ok=False, error=error, retryable=retryable
                )

        what = spec.obj.value
        if plan.unknown_refs:
            for k in range(m):
                fail(
                    k,
                    f"{what} {gops[k].external_key} has unknown reference(s) {', '.join(plan.unknown_refs)};"
                    f" a {what} may refer to: {', '.join(spec.refs) or 'nothing'}",
                )
            return next_id

        columns = plan.columns(list(map(_get_fields, gops)))
        pos = {name: j for j, name in enumerate(plan.names)}
        if not looked_up and (
            plan.extras or any(r not in pos or None in columns[pos[r]] for r in spec.required)
        ):  # whether a record exists decides what is checked, or its extra fields are merged
            found = self._lookup(spec.table, list(map(_get_key, gops)))
            for k, key in enumerate(map(_get_key, gops)):
                crm_ids[gidx[k]] = found.get(key)
            looked_up = True

        # Required fields: a new record needs them; an existing one may not clear them.
        if spec.required:
            absent = [r for r in spec.required if r not in pos]
            nulls = [(r, columns[pos[r]]) for r in spec.required if r in pos and None in columns[pos[r]]]
            if absent or nulls:
                for k in range(m):
                    if crm_ids[gidx[k]] is None:
                        missing = [r for r in spec.required if r not in pos or columns[pos[r]][k] is None]
                        if missing:
                            fail(
                                k,
                                f"new {what} {gops[k].external_key} is missing {', '.join(missing)}"
                                f" (a new {what} needs {', '.join(spec.required)})",
                            )
                    elif cleared := [r for r, col in nulls if col[k] is None]:
                        fail(k, f"{what} {gops[k].external_key}: {', '.join(cleared)} cannot be set to null")

        # Types, column by column; per value only when the column holds an unusual type.
        null_cols: list[int] = []  # columns holding only None: written as a literal NULL
        for j, kind in enumerate(plan.kinds):
            col = columns[j]
            fast_types, convert = _FAST[kind]
            try:
                types = set(map(type, col))
                if types == _ONLY_NONE:
                    null_cols.append(j)
                if not types <= fast_types:
                    raise _FieldError
                if convert is not None:
                    columns[j] = convert(col)
            except (_FieldError, ValueError, TypeError):
                slow = _SLOW[kind]
                out: list[Any] = []
                for k, v in enumerate(col):
                    try:
                        out.append(slow(v))
                    except _FieldError as e:
                        fail(k, f"{what} {gops[k].external_key}: {plan.names[j]} {e}")
                        out.append(None)
                columns[j] = out

        for name, limit in spec.max_length.items():
            if name in pos:
                col = columns[pos[name]]
                if max(map(len, filter(None, col)), default=0) > limit:
                    # Fitted, not refused (CrmAdapter.apply): cut with scrm's marker giving the full length.
                    columns[pos[name]] = [cut_text(v, limit) if v and len(v) > limit else v for v in col]

        all_refs = [op.refs for op in gops] if plan.refs else []
        for ref in plan.refs:
            ref_targets = list(map(itemgetter(ref), all_refs))
            ids = self._resolve(spec.refs[ref], ref_targets)
            if None in ids:
                for k, ref_id in enumerate(ids):
                    if ref_id is None:
                        # The sink orders batches so this should not happen; if it does, the
                        # referenced record may simply not have arrived yet: worth a retry.
                        fail(k, f"{ref} {ref_targets[k]} not found", retryable=True)
            columns.append(ids)

        if plan.extras:
            old = self._lookup(spec.table, [op.external_key for op in gops], column="extra")
            merged: list[Any] = []
            for k, op in enumerate(gops):
                try:
                    stored = orjson.loads(old[op.external_key]) if op.external_key in old else {}
                    merged.append(orjson.dumps({**stored, **{n: op.fields[n] for n in plan.extras}}).decode())
                except TypeError as e:
                    fail(k, f"{what} {op.external_key}: extra fields cannot be stored as JSON: {e}")
                    merged.append(None)
            columns.append(merged)

        none_cols = tuple(null_cols)
        gids = crm_ids if len(crm_ids) == m else [crm_ids[i] for i in gidx]  # a copy unless one group
        n_new = gids.count(None)
        new: Sequence[int]
        old_rows: Sequence[int]
        if errors:
            ok = [k for k in range(m) if gidx[k] not in errors]
            new = [k for k in ok if gids[k] is None]
            old_rows = [k for k in ok if gids[k] is not None]
        elif n_new in (0, m):  # the usual batch: all new records or all existing ones, in C
            new, old_rows = (range(m), ()) if n_new else ((), range(m))
        else:
            new = [k for k in range(m) if gids[k] is None]
            old_rows = [k for k in range(m) if gids[k] is not None]
        if old_rows:  # before the inserts below fill in crm_ids
            cols = columns if len(old_rows) == m else [[col[k] for k in old_rows] for col in columns]
            if none_cols:
                cols = [col for j, col in enumerate(cols) if j not in none_cols]
            ids_ = gids if len(old_rows) == m else [gids[k] for k in old_rows]
            self._execute(plan.sql(False, none_cols), list(zip(*cols, repeat(now), ids_)), old_rows, fail)
        if new:
            new_ids = range(next_id, next_id + len(new))
            next_id += len(new)
            cols = columns if len(new) == m else [[col[k] for k in new] for col in columns]
            if none_cols:
                cols = [col for j, col in enumerate(cols) if j not in none_cols]
            new_keys = list(map(_get_key, gops)) if len(new) == m else [gops[k].external_key for k in new]
            rows = list(zip(new_ids, new_keys, *cols, repeat(now), repeat(now)))
            before = self.conn.total_changes
            refused = self._execute(plan.sql(True, none_cols, skip_existing=not looked_up), rows, new, fail)
            if not refused and len(new) == len(crm_ids):
                crm_ids[:] = new_ids
            else:
                for k, row_id in zip(new, new_ids, strict=True):
                    if k not in refused:
                        crm_ids[gidx[k]] = row_id
            inserted = self.conn.total_changes - before
            self._inserted += inserted
            if inserted < len(rows) - len(refused):  # guessed new, but some exist: update those
                found = self._lookup(spec.table, new_keys)
                existed = [
                    (k, found[key])
                    for k, key, row_id in zip(new, new_keys, new_ids, strict=True)
                    if found.get(key) != row_id
                ]
                for k, row_id in existed:
                    crm_ids[gidx[k]] = row_id
                ks = [k for k, _ in existed]
                cols = [[col[k] for k in ks] for col in columns]
                if none_cols:
                    cols = [col for j, col in enumerate(cols) if j not in none_cols]
                rows = list(zip(*cols, repeat(now), [row_id for _, row_id in existed]))
                self._execute(plan.sql(False, none_cols), rows, ks, fail)
        return next_id

    def _execute(
        self, sql: str, rows: list[tuple[Any, ...]], ks: Sequence[int], fail: Callable[[int, str], None]
    ) -> set[int]:
        """executemany; returns the positions (of ``ks``) of the rows SQLite refused.

        A savepoint around it would let a refused value (a lone surrogate, an int over 64
        bits...) undo only its group, but it costs every update a copy of each page it
        touches (a fifth of an update's cost). So the first try has none: a refusal rolls
        the whole batch back (``_ValueRefused``), and :meth:`apply` writes it again with
        ``_careful`` set: each group under a savepoint and, where SQLite refuses, row by row,
        so only the offending records fail."""
        if not self._careful:
            try:
                self.conn.executemany(sql, rows)
            except _VALUE_ERRORS as e:
                raise _ValueRefused from e
            return set()
        # Any other error leaves the savepoint to the whole transaction's rollback.
        self.conn.execute("SAVEPOINT localcrm_group")
        refused: set[int] = set()
        try:
            self.conn.executemany(sql, rows)
        except _VALUE_ERRORS:
            self.conn.execute("ROLLBACK TO localcrm_group")
            for k, row in zip(ks, rows, strict=True):
                try:
                    self.conn.execute(sql, row)
                except _VALUE_ERRORS as e:
                    fail(k, f"the CRM refused a value: {type(e).__name__}: {str(e)[:200]}")
                    refused.add(k)
        self.conn.execute("RELEASE localcrm_group")
        return refused

    # ------------------------------------------------------------ erase, counts, replies

    def erase(self, records: Mapping[CrmObject, Sequence[str]]) -> int:
        """Delete records by external key, children first; references to them become NULL."""

        def run() -> int:
            total = 0
            for obj in reversed(CrmObject):  # message, lead, case, profile, contact
                keys = records.get(obj)
                if not keys:
                    continue
                table = SPECS[obj].table
                selected = f"SELECT id FROM {table} WHERE external_key IN (SELECT value FROM json_each(?))"
                param = (orjson.dumps(list(keys)).decode(),)
                if obj in (CrmObject.message, CrmObject.case):  # an agent's corrections of them go too
                    self.conn.execute(
                        f"DELETE FROM {LABEL_CORRECTIONS} WHERE object = ? AND external_key IN"
                        " (SELECT value FROM json_each(?))",
                        (obj.value, *param),
                    )
                # Refs on messages carry no foreign key (see schema.py): clear them here,
                # one pass over messages per object type.
                if obj in (CrmObject.profile, CrmObject.contact, CrmObject.case):
                    self.conn.execute(
                        f"UPDATE messages SET {obj.value}_id = NULL WHERE {obj.value}_id IN ({selected})", param
                    )
                total += self.conn.execute(f"DELETE FROM {table} WHERE id IN ({selected})", param).rowcount
            return total

        self._ref_ids.clear()
        count: int = self._transaction(run)
        return count

    def counts(self) -> dict[str, int]:
        return {
            spec.table: int(self.conn.execute(f"SELECT count(*) FROM {spec.table}").fetchone()[0])
            for spec in SPECS.values()
        }

    def label_corrections(self, after_id: int, limit: int) -> list[tuple[int, str, str, str, str, str | None, str]]:
        """(id, message key, label, text, corrected at, language, record key) of corrections
        after ``after_id``: for a message, its own text; for a case, its conversation's
        first message's text if the CRM has it, else the case's subject."""
        rows = self.conn.execute(
            f"SELECT c.id, c.object, c.external_key, c.label, c.crm_created_at,"
            " m.text, m.language, m.network, m.message_id,"
            " k.conversation_key, k.subject, r.text, r.language"
            f" FROM {LABEL_CORRECTIONS} c"
            " LEFT JOIN messages m ON c.object = 'message' AND m.external_key = c.external_key"
            " LEFT JOIN cases k ON c.object = 'case' AND k.external_key = c.external_key"
            " LEFT JOIN messages r ON r.external_key = 'scrm:' || k.conversation_key"
            " WHERE c.id > ? ORDER BY c.id LIMIT ?",
            (after_id, limit),
        ).fetchall()
        out = []
        for cid, obj, key, label, at, m_text, m_lang, network, message_id, conv, subject, r_text, r_lang in rows:
            if obj == "message":
                message_key = f"{network}:{message_id}" if network and message_id else key.removeprefix("scrm:")
                out.append((int(cid), message_key, str(label), m_text or "", str(at), m_lang, str(key)))
            else:
                message_key = conv or key.removeprefix("scrm:")
                out.append((int(cid), message_key, str(label), r_text or subject or "", str(at), r_lang, str(key)))
        return out

    def pending_replies(self, after_id: int, limit: int) -> list[tuple[int, str, str, str]]:
        cur = self.conn.execute(
            f"SELECT id, conversation_key, in_reply_to, text FROM {OUTBOUND_REPLIES}"
            " WHERE status = 'pending' AND id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in cur]
