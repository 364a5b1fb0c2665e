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

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import FatalError

__all__ = ["Cursor", "JsonCursor"]


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
