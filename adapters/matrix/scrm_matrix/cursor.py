"""The cursor of a Matrix source: a ``/sync`` token, plus how far into that sync's events we got.

A page is part of the events one ``/sync`` brought (after back-filling its gaps). When the
last page of a sync is yielded, the cursor is that sync's ``next_batch`` alone. Pages
before it carry the token the sync started from (``since``, none for the very first) and,
per room, how many of that room's events after ``since`` were already yielded::

    {"v":1,"since":"s72594_4483_1934","done":{"!abc:example.com":3}}

Resuming syncs from ``since`` again and skips ``done[room]`` events of each room. A room's
events after a token only ever grow at the end, so the count stays exact even if more
arrived in between (https://spec.matrix.org/v1.15/client-server-api/#syncing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from scrm_core import Cursor

__all__ = ["Position"]

_VERSION = 1


@dataclass(frozen=True)
class Position(Cursor):
    since: str | None = None
    done: dict[str, int] = field(default_factory=dict)

    def dump(self) -> str:
        return json.dumps(
            {"v": _VERSION, "since": self.since, "done": self.done}, separators=(",", ":"), sort_keys=True
        )

    @classmethod
    def decode(cls, cursor: str) -> Position:
        try:
            data = json.loads(cursor)
        except ValueError:
            data = None
        if not (
            isinstance(data, dict)
            and data.get("v") == _VERSION
            and (data.get("since") is None or isinstance(data.get("since"), str))
            and isinstance(data.get("done"), dict)
            and all(isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in data["done"].items())
        ):
            raise ValueError('expected {"v":1,"since":...,"done":{...}}')
        return cls(since=data["since"], done=dict(data["done"]))
