"""A deterministic, realistic demo stream about a fictional brand, written as replay files.

``generate_demo(out_dir, messages=N, seed=S)`` writes one NDJSON file per network shape
(``demo-mastodon.ndjson``, ``demo-bluesky.ndjson``, ``demo-reddit.ndjson``) holding
exactly ``N`` ``message.created`` events in all, plus edits, deletions and profile
updates. The output is a pure function of ``(seed, messages)`` (and ``malformed``).

It must write a million messages in seconds, so it builds plain dicts and serialises them
with orjson instead of building pydantic models; the tests check that every line still
validates as an :data:`scrm_core.Event`. Memory is flat: only a bounded window of open
threads and pending edits/deletions is kept.

:func:`expected_state` reads files back and says what a CRM fed with them should hold.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any, TypeVar

import orjson

from scrm_core import MessageCreated, MessageDeleted, MessageEdited

from . import demo_text as words
from .demo_shapes import START, Bluesky, Mastodon, Profile, Reddit, Shape
from .format import is_blank, parse_line
from .reader import LineReader

__all__ = ["DemoStats", "expected_state", "generate_demo"]

_OPTS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z
_INTENTS = ("complaint", "question", "praise", "purchase", "spam", "neutral")
_INTENT_CUM = tuple(itertools.accumulate((20, 18, 14, 12, 8, 28)))
_BRAND = -1  # author index of the brand's own account
_OPEN_THREADS = 48  # threads that can still get replies, per network
_THREAD_TAIL = 10  # recent messages of a thread that a reply may answer
_P_EDIT, _P_CHANGE = 0.025, 0.032  # of a customer's message being edited / edited or deleted later
T = TypeVar("T")


@dataclass
class DemoStats:
    """What :func:`generate_demo` wrote (counts of lines; ``messages`` is exactly what was asked)."""

    messages: int = 0  #: message.created events, all files together
    edits: int = 0  #: message.edited
    deletes: int = 0  #: message.deleted
    profiles: int = 0  #: profile.updated (handle changes)
    threads: int = 0  #: root messages
    direct: int = 0  #: messages with visibility "direct"
    outbound: int = 0  #: messages by the brand's own accounts
    malformed: int = 0  #: broken lines inserted on purpose
    files: list[Path] = field(default_factory=list)
    per_network: dict[str, int] = field(default_factory=dict)  #: messages per network
    per_intent: dict[str, int] = field(default_factory=dict)  #: messages per intent of their template


class _Thread:
    __slots__ = ("brand_replied", "direct", "intent", "place", "product", "recent", "root_id")

    def __init__(self, root_id: str, intent: str, product: str, place: str, direct: bool) -> None:
        self.root_id = root_id
        self.intent = intent
        self.product = product
        self.place = place
        self.direct = direct
        self.brand_replied = False
        self.recent: list[tuple[str, int]] = []  # (message id, author index), oldest first


class _Slots(dict[str, object]):
    """Template values, made only when the template asks for them (``format_map`` calls ``__missing__``)."""

    def __init__(self, gen: _Generator, shape: Shape, user: Profile | None) -> None:
        super().__init__()
        self.gen, self.shape, self.user = gen, shape, user
        self.mentions: list[str] = []

    def __missing__(self, name: str) -> object:
        value = self[name] = self._make(name)  # a slot used twice gets the same value
        return value

    def _make(self, name: str) -> object:
        gen = self.gen
        if name == "@brand" or name == "@user":
            shape = self.shape
            text, entry = shape.mention(self.user if name == "@user" and self.user else shape.profile(_BRAND))
            self.mentions.append(entry)
            return text
        if name == "n" or name == "days":
            return 2 + int(gen.rand() * 39)
        if name == "order":
            return 100_000 + int(gen.rand() * 900_000)
        if name == "competitor":
            return words.COMPETITOR
        return gen.pick(_CHOICES[name])


_CHOICES = {"country": words.COUNTRIES, "model": words.COMPETITOR_MODELS, "link": words.SPAM_LINKS}


class _Writer:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] = path.open("wb")
        self._buf: list[bytes] = []

    def write(self, line: bytes) -> None:
        self._buf.append(line)
        if len(self._buf) >= 4096:
            self.flush()

    def flush(self) -> None:
        self._file.write(b"".join(self._buf))
        self._buf.clear()

    def close(self) -> None:
        self.flush()
        self._file.close()


class _Generator:
    def __init__(self, seed: int, messages: int, writers: dict[str, _Writer], stats: DemoStats) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.rand = self.rng.random  # hot paths use random() directly: choice() and randint() cost 5x more
        self.n = messages
        self.out = writers
        self.stats = stats
        self.intents: dict[str, int] = dict.fromkeys((*_INTENTS, "support"), 0)
        self.shapes: dict[str, Shape] = {s.name: s for s in (Mastodon(seed), Bluesky(seed), Reddit(seed))}
        self.threads: dict[str, deque[_Thread]] = {name: deque(maxlen=_OPEN_THREADS) for name in self.shapes}
        # (due, seq, action, network, message dict, author index, thread): edits and deletions to come.
        self.pending: list[tuple[int, int, str, str, dict[str, Any], int, _Thread]] = []
        self.pool = max(20, min(messages // 10, 30_000))  # people per network (all cached, see Shape)
        self.ts = 0  # seconds after START
        self.now = START
        self._seq = 0

    # ------------------------------------------------------------ helpers

    def emit(self, network: str, event: dict[str, Any]) -> None:
        self.out[network].write(orjson.dumps(event, option=_OPTS))

    def pick(self, seq: Sequence[T]) -> T:
        return seq[int(self.rand() * len(seq))]

    def pick_network(self) -> str:
        r = self.rand()
        return "mastodon" if r < 0.45 else "bluesky" if r < 0.8 else "reddit"

    def pick_author(self) -> int:
        # Zipf-ish: a few people write a large share of everything.
        return int(self.pool * self.rand() ** 3)

    def render(self, template: str, shape: Shape, product: str, user: Profile | None) -> tuple[str, list[str]]:
        if "{" not in template:
            return template, []
        slots = _Slots(self, shape, user)
        slots["product"] = product
        return template.format_map(slots), slots.mentions

    # ------------------------------------------------------------ messages

    def message(self, network: str) -> None:
        shape, rand = self.shapes[network], self.rand
        threads = self.threads[network]
        thread: _Thread | None = None
        if threads and rand() > 0.36:
            thread = threads[len(threads) - 1 - int(len(threads) * rand() ** 2)]  # recent threads are busier
            if not thread.recent:  # everything in it was deleted
                thread = None
        msg = self.root(network, shape) if thread is None else self.reply(network, shape, thread)
        self.stats.messages += 1
        self.stats.per_network[network] += 1
        self.out[network].write(orjson.dumps({"kind": "message.created", "message": msg}, option=_OPTS))

    def root(self, network: str, shape: Shape) -> dict[str, Any]:
        rand = self.rand
        direct = network == "mastodon" and rand() < 0.01
        intent = "complaint" if direct else _INTENTS[bisect.bisect(_INTENT_CUM, rand() * _INTENT_CUM[-1])]
        template = self.pick(words.DIRECT if direct else words.ROOT[intent])
        product = self.pick(words.PRODUCTS)
        author_idx = self.pick_author()
        author = shape.profile(author_idx)
        text, mentions = self.render(template, shape, product, None)
        if direct and shape.brand_handle not in mentions:
            text = f"@{shape.brand_handle} {text}"
            mentions.append(shape.brand_handle)
        hashtags = self.hashtags(network, product, intent)
        if hashtags:
            text += "".join(f" #{tag}" for tag in hashtags)
        mid = shape.new_id(self.ts, True, author)
        thread = _Thread(mid, intent, product, shape.place(int(rand() * 256)), direct)
        thread.recent.append((mid, author_idx))
        self.threads[network].append(thread)
        self.stats.threads += 1
        msg: dict[str, Any] = {
            "network": network,
            "id": mid,
            "author": author,
            "text": text,
            "created_at": self.now,
            "url": shape.permalink(mid, author, mid, thread.place),
        }
        if mentions:
            msg["mentions"] = mentions
        if hashtags:
            msg["hashtags"] = hashtags
        if direct:
            msg["visibility"] = "direct"
            self.stats.direct += 1
        elif (r := rand()) < _P_CHANGE or intent == "spam":
            self.schedule(r, network, msg, author_idx, intent, thread)
        self.intents[intent] += 1
        return msg

    def reply(self, network: str, shape: Shape, thread: _Thread) -> dict[str, Any]:
        rand, pick = self.rand, self.pick
        parent_id, parent_idx = thread.recent[-1]
        if thread.direct:  # a private exchange between the customer and the brand
            if parent_idx == _BRAND:
                customer = (i for _, i in reversed(thread.recent) if i != _BRAND)
                author_idx, intent = next(customer, thread.recent[0][1]), "neutral"
                template = pick(words.DIRECT_FOLLOWUP)
            else:
                author_idx, intent, template = _BRAND, "support", pick(words.DIRECT_SUPPORT)
        elif thread.intent in words.SUPPORT and not thread.brand_replied and rand() < 0.3:
            author_idx, intent = _BRAND, "support"
            template = pick(words.SUPPORT[thread.intent])
            thread.brand_replied = True
            if parent_idx == _BRAND:
                parent_id, parent_idx = thread.recent[0]
        else:
            intent, template = pick(words.REPLY[thread.intent])
            parent_id, parent_idx = pick(thread.recent[-6:])
            author_idx = thread.recent[0][1] if rand() < 0.25 else self.pick_author()
        author = shape.profile(author_idx)
        parent_author = shape.profile(parent_idx)
        text, mentions = self.render(template, shape, thread.product, parent_author)
        if network == "mastodon" and author_idx != parent_idx and not mentions:
            # Mastodon puts the replied-to account first in every reply.
            at, entry = shape.mention(parent_author)
            text, mentions = f"{at} {text}", [entry]
        mid = shape.new_id(self.ts, False, author)
        thread.recent.append((mid, author_idx))
        if len(thread.recent) > _THREAD_TAIL:
            del thread.recent[0]
        msg: dict[str, Any] = {
            "network": network,
            "id": mid,
            "author": author,
            "text": text,
            "created_at": self.now,
            "url": shape.permalink(mid, author, thread.root_id, thread.place),
            "thread_root_id": thread.root_id,
            "parent_id": parent_id,
        }
        if mentions:
            msg["mentions"] = mentions
        if thread.direct:
            msg["visibility"] = "direct"
            self.stats.direct += 1
        if author_idx == _BRAND:
            msg["direction"] = "outbound"
            self.stats.outbound += 1
        elif not thread.direct and ((r := rand()) < _P_CHANGE or intent == "spam"):
            self.schedule(r, network, msg, author_idx, intent, thread)
        self.intents[intent] += 1
        return msg

    def hashtags(self, network: str, product: str, intent: str) -> list[str]:
        r = self.rand()
        if network == "mastodon" and intent != "spam":
            if r < 0.3:
                return ["AcmeKettles", product.replace(" ", "")]
            return ["AcmeKettles"] if r < 0.6 else []
        if network == "bluesky" and r < 0.15:
            return ["tea"]
        return []

    # ------------------------------------------------------------ edits, deletions, profiles

    def schedule(self, r: float, network: str, msg: dict[str, Any], author_idx: int, intent: str, t: _Thread) -> None:
        """Maybe edit or delete ``msg`` later; ``r`` is the caller's draw, < _P_CHANGE or spam."""
        if intent == "spam" and r >= 0.4:
            return
        action = "delete" if intent == "spam" or r >= _P_EDIT else "edit"  # spam: moderators or the spammer
        delay = 60 + int(self.rand() * (3600 if action == "edit" else 20_000))
        self._seq += 1
        heapq.heappush(self.pending, (self.ts + delay, self._seq, action, network, msg, author_idx, t))

    def flush_due(self, until: int | None) -> None:
        """Emit the edits and deletions due by ``until`` (all of them when None), in time order."""
        pending = self.pending
        while pending and (until is None or pending[0][0] <= until):
            due, _, action, network, msg, author_idx, thread = heapq.heappop(pending)
            when = START + timedelta(seconds=due)
            if action == "edit":
                edited = dict(msg, text=msg["text"] + self.pick(words.EDIT_SUFFIX), edited_at=when)
                edited["author"] = self.shapes[network].profile(author_idx)  # as the author is now
                self.stats.edits += 1
                self.emit(network, {"kind": "message.edited", "message": edited})
            else:
                thread.recent = [(i, a) for i, a in thread.recent if i != msg["id"]]
                self.stats.deletes += 1
                self.emit(
                    network,
                    {"kind": "message.deleted", "network": network, "message_id": msg["id"], "deleted_at": when},
                )

    def profile_update(self) -> None:
        # A busy account changes its handle: same account id, so the profile key holds.
        network = self.pick_network()
        profile = self.shapes[network].rename(int(20 * self.rand() ** 2))
        self.stats.profiles += 1
        version = self.now.isoformat()
        self.emit(network, {"kind": "profile.updated", "profile": profile, "version": version})

    # ------------------------------------------------------------ malformed lines

    def broken(self, network: str, k: int) -> None:
        """A line a real recording could contain, that is not an event (the k-th of them)."""
        mid = f"broken-{k}"
        good: dict[str, Any] = {
            "kind": "message.created",
            "message": {
                "network": network,
                "id": mid,
                "author": {"network": network, "account_id": "0"},
                "text": "this line is broken on purpose",
                "created_at": self.now,
            },
        }
        variant = k % 5
        if variant == 0:
            line = orjson.dumps(good, option=_OPTS)
            line = line[: len(line) * 2 // 3] + b"\n"  # truncated mid-write
        elif variant == 1:
            del good["message"]["author"]["account_id"]
            line = orjson.dumps(good, option=_OPTS)
        elif variant == 2:
            line = orjson.dumps(dict(good, kind="message.liked"), option=_OPTS)
        elif variant == 3:
            line = b"<html><body>502 Bad Gateway</body></html>\n"
        else:
            good["message"]["created_at"] = "yesterday"
            line = orjson.dumps(good, option=_OPTS)
        self.out[network].write(line)
        self.stats.malformed += 1

    # ------------------------------------------------------------ the stream

    def run(self, malformed: int) -> None:
        rand, pending = self.rand, self.pending
        # Their own generator: the valid events are the same whatever ``malformed`` is.
        bad_rng = random.Random(f"{self.seed}:malformed")
        where = Counter(bad_rng.randrange(max(self.n, 1)) for _ in range(malformed))
        for i in range(max(self.n, 1 if malformed else 0)):
            self.ts += 1 + int(-4.0 * math.log(1.0 - rand()))  # exponential gaps, 5 s on average
            self.now = START + timedelta(seconds=self.ts)
            if pending and pending[0][0] <= self.ts:
                self.flush_due(self.ts)
            if rand() < 0.002:
                self.profile_update()
            network = self.pick_network()
            for _ in range(where.get(i, 0)):
                self.broken(network, self.stats.malformed)
            if i < self.n:
                self.message(network)
        self.flush_due(None)
        self.stats.per_intent = {k: v for k, v in sorted(self.intents.items()) if v}


def generate_demo(out_dir: Path, *, messages: int = 6000, seed: int = 7, malformed: int = 0) -> DemoStats:
    """Write the demo stream into ``out_dir`` (created if needed) and say what it holds."""
    if messages < 0 or malformed < 0:
        raise ValueError("messages and malformed must be >= 0")
    out_dir.mkdir(parents=True, exist_ok=True)
    networks = ("mastodon", "bluesky", "reddit")
    stats = DemoStats(per_network=dict.fromkeys(networks, 0))
    writers = {name: _Writer(out_dir / f"demo-{name}.ndjson") for name in networks}
    try:
        _Generator(seed, messages, writers, stats).run(malformed)
    finally:
        for w in writers.values():
            w.close()
    stats.files = sorted(w.path for w in writers.values())
    return stats


def expected_state(paths: Iterable[Path | str]) -> dict[str, str | None]:
    """What a CRM fed with these replay files should hold: message key -> final text, None if deleted.

    Directories stand for the ``*.ndjson`` files in them. Lines that are not valid events
    are skipped, and an unterminated last line is ignored, exactly as the adapter does.
    """
    state: dict[str, str | None] = {}
    deleted: set[str] = set()
    for path in _expand(paths):
        reader = LineReader(path, path.name, 0, 0)
        try:
            while (raw := reader.next_line()) is not None:
                if is_blank(raw):
                    continue
                event = parse_line(raw)
                if isinstance(event, MessageCreated | MessageEdited):
                    if event.message.key not in deleted:
                        state[event.message.key] = event.message.text
                elif isinstance(event, MessageDeleted):
                    deleted.add(event.message_key)
                    state[event.message_key] = None
        finally:
            reader.close()
    return state


def _expand(paths: Iterable[Path | str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        out.extend(sorted(p.glob("*.ndjson")) if p.is_dir() else [p])
    return out
