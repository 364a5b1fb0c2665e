"""Reddit cursors: ``rd1:`` + compact JSON ``{"a": {listing: newest fullname}, "w": [[fullname, edited, gone]]}``.

* ``a`` (anchors): for each listing read so far (``r/<sub>/comments``, ``r/<sub>/new``,
  ``mentions``), the fullname of the newest item already turned into events. The next
  read asks for ``before=<anchor>``: exactly the items that came after it.
* ``w`` (watch window): the most recently read items, oldest first, with the ``edited``
  time last seen (0: never edited) and whether they were seen deleted or removed (1).
  The re-check compares Reddit's current state against it, so an edit or a deletion is
  reported once, and resuming from an older cursor reports it again, exactly as before.

Everything that decides what comes next is in the cursor (nothing in local files), so a
page's cursor resumes exactly after that page, in any process. No secret is ever in it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from scrm_core import Cursor

__all__ = ["RedditCursor", "Watched"]

_PREFIX = "rd1:"
_FULLNAME = re.compile(r"t[13]_[0-9a-z]{1,13}")


@dataclass
class Watched:
    fullname: str
    edited: float  # Reddit's ``edited`` as a Unix time; 0.0 if never edited
    gone: bool  # seen as [deleted] / [removed]


@dataclass
class RedditCursor(Cursor):
    anchors: dict[str, str] = field(default_factory=dict)
    watch: list[Watched] = field(default_factory=list)

    def dump(self) -> str:
        body = {"a": self.anchors, "w": [[w.fullname, w.edited, int(w.gone)] for w in self.watch]}
        return _PREFIX + json.dumps(body, separators=(",", ":"), sort_keys=True)

    def copy(self) -> RedditCursor:
        return RedditCursor(dict(self.anchors), [Watched(w.fullname, w.edited, w.gone) for w in self.watch])

    def watched(self, fullname: str) -> Watched | None:
        return next((w for w in self.watch if w.fullname == fullname), None)

    def remember(self, entry: Watched, window: int) -> None:
        self.watch.append(entry)
        if len(self.watch) > window:
            del self.watch[: len(self.watch) - window]

    @classmethod
    def decode(cls, text: str) -> RedditCursor:
        if not text.startswith(_PREFIX):
            raise ValueError(f"reddit: it does not start with {_PREFIX!r}")
        try:
            body: Any = json.loads(text[len(_PREFIX) :])
            anchors = body["a"]
            watch = body["w"]
            if not isinstance(anchors, dict) or not isinstance(watch, list):
                raise TypeError("a must be an object and w a list")
            for key, value in anchors.items():
                if not isinstance(key, str) or not isinstance(value, str) or not _FULLNAME.fullmatch(value):
                    raise ValueError(f"anchor {key!r} is not a fullname")
            entries = []
            for item in watch:
                name, edited, gone = item
                if not isinstance(name, str) or not _FULLNAME.fullmatch(name):
                    raise ValueError(f"{name!r} is not a fullname")
                entries.append(Watched(name, float(edited), bool(gone)))
        except (TypeError, KeyError) as exc:
            raise ValueError(f"reddit: {exc}") from None
        return cls(dict(anchors), entries)
