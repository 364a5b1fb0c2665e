"""Record keys: TIDs, and the deterministic one a reply's idempotency key gives.

A TID is a 64-bit integer (top bit 0, 53 bits of microseconds since the epoch, 10 bits of
"clock identifier"), written as 13 base32-sortable characters ``234567a-z``
(https://atproto.com/specs/tid). ``app.bsky.feed.post`` records use TID keys.
"""

from __future__ import annotations

import hashlib

__all__ = ["make_tid", "reply_rkey", "tid_time_us"]

_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"


def make_tid(timestamp_us: int, clock_id: int = 0) -> str:
    n = ((timestamp_us & ((1 << 53) - 1)) << 10) | (clock_id & 0x3FF)
    return "".join(_ALPHABET[(n >> (60 - 5 * i)) & 31] for i in range(13))


def tid_time_us(tid: str) -> int:
    n = 0
    for ch in tid:
        n = (n << 5) | _ALPHABET.index(ch)
    return n >> 10


def reply_rkey(idempotency_key: str, parent_indexed_us: int) -> str:
    """The record key of the reply sent with ``idempotency_key``: the same key, the same rkey.

    The time part is the parent post's ``indexedAt`` (set by the AppView, so stable and in
    the past) plus 1-2 s chosen by the key's hash; the clock id comes from the hash too.
    Retrying a reply therefore writes to the same rkey, which the PDS refuses to create
    twice, and the adapter finds the first one with ``com.atproto.repo.getRecord``.
    """
    h = int.from_bytes(hashlib.sha256(idempotency_key.encode()).digest()[:8], "big")
    return make_tid(parent_indexed_us + 1_000_000 + h % 1_000_000, (h >> 20) & 0x3FF)
