"""How each demo network names its accounts and posts, as plain dicts (the generator writes dicts, not models).

Ids follow each network's real scheme closely enough to exercise parsers and keys:
Mastodon snowflakes (milliseconds << 16), Bluesky ``at://`` URIs with DIDs and TIDs,
Reddit ``t2_``/``t3_``/``t1_`` base-36 ids. Everything derives from the seed, so the
stream is a pure function of (seed, number of messages).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import Any

from .demo_text import BIOS, FIRST, INSTANCES, LAST, SUBREDDITS

__all__ = ["START", "Bluesky", "Mastodon", "Reddit", "Shape"]

Profile = dict[str, Any]

START = datetime(2024, 3, 4, 8, 0, tzinfo=UTC)
_START_S = int(START.timestamp())
_B32_SORT = "234567abcdefghijklmnopqrstuvwxyz"  # atproto's sortable base32
_B32_DID = "abcdefghijklmnopqrstuvwxyz234567"  # did:plc ids: RFC 4648 base32, lower case
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_CACHE_MAX = 30_000  # as many as the generator's largest pool: memory stays flat however long the stream


_B36_PAIRS = [a + b for a in _B36 for b in _B36]  # two digits per divmod: ids are made per message
_TID_PAIRS = [a + b for a in _B32_SORT for b in _B32_SORT]
_DID_PAIRS = [a + b for a in _B32_DID for b in _B32_DID]


def _base36(n: int) -> str:
    out = []
    while n >= 36:
        n, r = divmod(n, 1296)
        out.append(_B36_PAIRS[r])
    return (_B36[n] + "".join(reversed(out))).lstrip("0") or "0"


def _tid(n: int) -> str:
    """A 64-bit value as atproto's 13-character sortable base32 record key."""
    p = _TID_PAIRS
    return (
        _B32_SORT[n >> 60 & 31]
        + p[n >> 50 & 1023]
        + p[n >> 40 & 1023]
        + p[n >> 30 & 1023]
        + p[n >> 20 & 1023]
        + p[n >> 10 & 1023]
        + p[n & 1023]
    )


class Shape(ABC):
    """One network: its profiles (index -1 is the brand), ids, permalinks and mention syntax."""

    name: str
    brand_handle: str

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._profiles: dict[int, Profile] = {}
        self._renamed: dict[int, int] = {}  # author index -> how many times the handle changed
        self._seq = 0

    def profile(self, idx: int) -> Profile:
        p = self._profiles.get(idx)
        if p is None:
            if len(self._profiles) >= _CACHE_MAX:
                self._profiles.clear()
            if idx < 0:
                p = self._brand()
            else:
                digest = hashlib.blake2b(f"{self._seed}:{self.name}:{idx}".encode(), digest_size=16).digest()
                p = self._person(idx, int.from_bytes(digest, "big"), self._renamed.get(idx, 0))
            self._profiles[idx] = p
        return p

    def rename(self, idx: int) -> Profile:
        """Give a person a new handle (same account id) and return the new profile."""
        self._renamed[idx] = self._renamed.get(idx, 0) + 1
        self._profiles.pop(idx, None)
        return self.profile(idx)

    @staticmethod
    def _names(idx: int, h: int, gen: int) -> tuple[str, str, str, int]:
        first, last = FIRST[h % len(FIRST)], LAST[(h >> 8) % len(LAST)]
        user = f"{first}{last[0]}{idx}" if gen == 0 else f"{first}.{last}{gen}"
        followers = int(10 ** ((h >> 40) % 1000 / 250))
        return first, last, user, followers

    def _common(self, idx: int, h: int, gen: int) -> Profile:
        first, last, _, followers = self._names(idx, h, gen)
        p: Profile = {"network": self.name, "display_name": f"{first.title()} {last.title()}", "followers": followers}
        bio = BIOS[(h >> 20) % len(BIOS)]
        if bio:
            p["bio"] = bio
        return p

    @abstractmethod
    def _person(self, idx: int, h: int, gen: int) -> Profile: ...

    @abstractmethod
    def _brand(self) -> Profile: ...

    @abstractmethod
    def new_id(self, ts: int, root: bool, author: Profile) -> str:
        """A fresh message id at ``ts`` seconds after START."""

    @abstractmethod
    def permalink(self, mid: str, author: Profile, root_id: str, place: str) -> str: ...

    @abstractmethod
    def mention(self, profile: Profile) -> tuple[str, str]:
        """(how it is written in a text, what goes in ``Message.mentions``)."""

    def place(self, h: int) -> str:
        """Where a thread lives (a subreddit); empty on networks without such places."""
        return ""


class Mastodon(Shape):
    name = "mastodon"
    brand_handle = "acmekettles@mastodon.social"

    def _person(self, idx: int, h: int, gen: int) -> Profile:
        _, _, user, _ = self._names(idx, h, gen)
        instance = INSTANCES[(h >> 16) % len(INSTANCES)]
        p = self._common(idx, h, gen)
        p["account_id"] = str(109_300_000_000_000_000 + idx * 7_919_993 + h % 7_919_993)
        p["handle"] = f"{user}@{instance}"
        p["url"] = f"https://{instance}/@{user}"
        return p

    def _brand(self) -> Profile:
        return {
            "network": self.name,
            "account_id": "108412660581349220",
            "handle": self.brand_handle,
            "display_name": "Acme Kettles",
            "url": "https://mastodon.social/@acmekettles",
            "followers": 18_400,
            "verified": True,
        }

    def new_id(self, ts: int, root: bool, author: Profile) -> str:
        self._seq += 1
        ms = (_START_S + ts) * 1000 + self._seq % 1000
        return str(ms << 16 | self._seq & 0xFFFF)

    def permalink(self, mid: str, author: Profile, root_id: str, place: str) -> str:
        return f"{author['url']}/{mid}"

    def mention(self, profile: Profile) -> tuple[str, str]:
        return f"@{profile['handle']}", str(profile["handle"])


class Bluesky(Shape):
    name = "bluesky"
    brand_handle = "acmekettles.bsky.social"

    def _person(self, idx: int, h: int, gen: int) -> Profile:
        _, _, user, _ = self._names(idx, h, gen)
        handle = f"{user}.bsky.social"
        p = self._common(idx, h, gen)
        p["account_id"] = "did:plc:" + "".join(_DID_PAIRS[h >> shift & 1023] for shift in range(118, -1, -10))
        p["handle"] = handle
        p["url"] = f"https://bsky.app/profile/{handle}"
        return p

    def _brand(self) -> Profile:
        return {
            "network": self.name,
            "account_id": "did:plc:acmekettlesz3q4m7nq5r2xa",
            "handle": self.brand_handle,
            "display_name": "Acme Kettles",
            "url": f"https://bsky.app/profile/{self.brand_handle}",
            "followers": 9_200,
            "verified": True,
        }

    def new_id(self, ts: int, root: bool, author: Profile) -> str:
        self._seq += 1
        micros = (_START_S + ts) * 1_000_000 + self._seq % 1_000_000
        tid = _tid(micros << 10 | self._seed % 1024)
        return f"at://{author['account_id']}/app.bsky.feed.post/{tid}"

    def permalink(self, mid: str, author: Profile, root_id: str, place: str) -> str:
        return f"{author['url']}/post/{mid.rsplit('/', 1)[-1]}"

    def mention(self, profile: Profile) -> tuple[str, str]:
        return f"@{profile['handle']}", str(profile["handle"])


class Reddit(Shape):
    name = "reddit"
    brand_handle = "AcmeKettles"

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self._t3 = int("1b7k2a", 36)
        self._t1 = int("kx0a9b1", 36)

    def _person(self, idx: int, h: int, gen: int) -> Profile:
        first, last, _, _ = self._names(idx, h, gen)
        user = f"{first.title()}{last.title()}{idx}" if gen == 0 else f"{first}_{last}_{gen}"
        p = self._common(idx, h, gen)
        p["account_id"] = "t2_" + _base36(1_000_000_000 + idx * 7919 + h % 7919)
        p["handle"] = user
        p["url"] = f"https://www.reddit.com/user/{user}"
        return p

    def _brand(self) -> Profile:
        return {
            "network": self.name,
            "account_id": "t2_acme01",
            "handle": self.brand_handle,
            "display_name": "Acme Kettles (official)",
            "url": "https://www.reddit.com/user/AcmeKettles",
            "verified": True,
        }

    def new_id(self, ts: int, root: bool, author: Profile) -> str:
        self._seq += 1
        if root:
            self._t3 += 1 + self._seq % 37
            return "t3_" + _base36(self._t3)
        self._t1 += 1 + self._seq % 23
        return "t1_" + _base36(self._t1)

    def permalink(self, mid: str, author: Profile, root_id: str, place: str) -> str:
        post = root_id[3:]
        if mid == root_id:
            return f"https://www.reddit.com/r/{place}/comments/{post}/"
        return f"https://www.reddit.com/r/{place}/comments/{post}/comment/{mid[3:]}/"

    def mention(self, profile: Profile) -> tuple[str, str]:
        return f"u/{profile['handle']}", str(profile["handle"])

    def place(self, h: int) -> str:
        return SUBREDDITS[h % len(SUBREDDITS)]
