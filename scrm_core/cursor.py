"""The base of every adapter's cursor: one naming scheme, one error for a cursor that is not ours.

A cursor is a position in a network's stream, saved by the engine as a string beside the
events it covers. Every adapter's cursor class has the same two halves:

* :meth:`Cursor.parse` (classmethod): the saved string, or None for "from the start", to
  a typed object; anything this adapter did not write is a :class:`FatalError` that says
  to reset the source's checkpoint (never a traceback, never a silent restart);
* :meth:`Cursor.dump`: the object back to a string (plain text, no secrets).

:class:`JsonCursor` is the ready-made kind for a new adapter: typed pydantic fields, a
short versioned prefix, JSON after it.

>>> class Offset(JsonCursor):
...     prefix = "tg1:"
...     offset: int = 0
>>> Offset.parse(None).offset
0
>>> Offset(offset=7).dump()
'tg1:{"offset":7}'
>>> Offset.parse('tg1:{"offset":7}').offset
7
>>> try:
...     Offset.parse("garbage")
... except FatalError as exc:
...     print(exc.operator_message)
'garbage' is not a cursor this adapter wrote (it does not start with 'tg1:'); reset the source's checkpoint ...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import FatalError

__all__ = ["Cursor", "JsonCursor", "OverlapWindow"]


class Cursor:
    """Subclass and implement :meth:`decode` and :meth:`dump` (a dataclass works well).

    ``parse(None)`` calls :meth:`start`, by default ``cls()``.
    """

    @classmethod
    def parse(cls, text: str | None) -> Self:
        """The cursor saved as ``text``; :meth:`start` for None; FatalError for a foreign string."""
        if text is None:
            return cls.start()
        try:
            return cls.decode(text)
        except FatalError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, ValidationError) as exc:
            shown = text if len(text) <= 80 else text[:77] + "..."
            why = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise FatalError(
                f"{shown!r} is not a cursor this adapter wrote ({why}); "
                "reset the source's checkpoint to read from the start"
            ) from None

    @classmethod
    def start(cls) -> Self:
        """The position before anything was read."""
        return cls()

    @classmethod
    def decode(cls, text: str) -> Self:
        """Parse ``text``; raise ValueError (or TypeError, KeyError) when it is not a cursor of ours."""
        raise NotImplementedError(f"{cls.__name__} must implement decode(text)")

    def dump(self) -> str:
        """This position as the string the engine saves."""
        raise NotImplementedError(f"{type(self).__name__} must implement dump()")


class JsonCursor(Cursor, BaseModel):
    """A cursor of typed fields, saved as ``prefix`` + compact JSON. Set ``prefix`` (e.g. ``"tg1:"``):
    it names the adapter and the format's version, so a cursor of another source is refused."""

    model_config = ConfigDict(extra="forbid")
    prefix: ClassVar[str] = ""

    @classmethod
    def decode(cls, text: str) -> Self:
        if not text.startswith(cls.prefix):
            raise ValueError(f"it does not start with {cls.prefix!r}")
        return cls.model_validate_json(text[len(cls.prefix) :])

    def dump(self) -> str:
        return self.prefix + self.model_dump_json()

    def copy_cursor(self, **changes: Any) -> Self:
        """A copy with ``changes`` (cursors handed out with pages must not change afterwards)."""
        return self.model_copy(update=changes, deep=True)


class OverlapWindow(BaseModel):
    """A position in records read by modification time from an index that may lag (a CRM's
    search or query API): each read looks again ``overlap_ms`` behind the newest time handed
    out, and hands out only versions it has not handed out before.

    Why not resume strictly after the last record: a lagging index can show a change after
    one made later, and records modified in the same millisecond (or second) have no order.
    ``high``: the newest modification time handed out (ms since the epoch); ``seen``: what
    was handed out within the window before it (record id -> [time, value]); ``floor``:
    never look before this (set when more than ``max_seen`` records crowded the window, so
    the position stays small). Keep one per object type inside a :class:`JsonCursor`."""

    model_config = ConfigDict(extra="forbid")

    high: int | None = None
    floor: int | None = None
    seen: dict[str, tuple[int, str]] = Field(default_factory=dict)

    def since(self, overlap_ms: int) -> int | None:
        """The earliest modification time to read from (None: from the beginning)."""
        if self.high is None:
            return self.floor
        return max(self.high - overlap_ms, self.floor or 0)

    def fresh(self, record_id: str, modified: int, value: str) -> bool:
        """Whether this version of a record was not handed out yet."""
        prior = self.seen.get(record_id)
        return prior is None or modified > prior[0] or (modified == prior[0] and value != prior[1])

    def advanced(
        self, handed: Sequence[tuple[str, int, str]], *, overlap_ms: int, max_seen: int, resolution_ms: int = 1
    ) -> OverlapWindow:
        """The position after handing out ``handed`` ((record id, modified, value) each);
        ``resolution_ms``: the index's time resolution (Salesforce stamps whole seconds)."""
        seen = dict(self.seen)
        for record_id, modified, value in handed:
            seen[record_id] = (modified, value)
        high = max([self.high or 0, *(modified for _, modified, _ in handed)])
        seen = {k: v for k, v in seen.items() if v[0] >= high - overlap_ms}
        floor = self.floor
        older = sorted(v[0] for v in seen.values() if v[0] < high)  # never drop the newest time's records
        if len(seen) > max_seen and older:
            cut = older[min(len(seen) - max_seen, len(older)) - 1]
            floor = max(floor or 0, cut + resolution_ms)
            seen = {k: v for k, v in seen.items() if v[0] >= floor}
        return OverlapWindow(high=high, floor=floor, seen=seen)
