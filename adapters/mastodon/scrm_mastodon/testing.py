"""A stateful fake of a Mastodon server's client API, for adapter tests (served by FakeServer).

It answers what Mastodon.py really asks, in Mastodon's JSON shapes (ids are strings,
``content`` is HTML, datetimes are RFC 3339 strings):

* ``GET /api/v1/instance`` (a 4.x version; ``urls.streaming_api`` points back at the fake),
  ``GET /api/v2/instance``, ``GET /api/v1/accounts/verify_credentials``, ``GET /api/v1/accounts/:id``;
* ``GET /api/v1/notifications`` and ``GET /api/v1/accounts/:id/statuses`` with
  ``max_id``/``since_id``/``min_id``/``limit`` (default 40, max 80 for notifications, 40 for
  statuses) and ``types[]``/``exclude_types[]``, answering newest first with a
  ``Link: <...max_id=oldest>; rel="next", <...min_id=newest>; rel="prev"`` header
  (https://docs.joinmastodon.org/api/guidelines/#pagination);
* ``GET/PUT/DELETE /api/v1/statuses/:id``, ``GET /api/v1/statuses/:id/context`` and
  ``POST /api/v1/statuses`` honouring ``Idempotency-Key`` per account for one hour
  (https://docs.joinmastodon.org/methods/statuses/#create);
* ``GET /api/v1/streaming/user``: server-sent events ``update``, ``notification``,
  ``delete`` (payload: the id) and ``status.update`` (https://docs.joinmastodon.org/methods/streaming/);
* ``X-RateLimit-Limit/Remaining/Reset`` on every answer, 429 ``{"error": "Too many requests"}``
  when the window is spent or a fault says so (https://docs.joinmastodon.org/api/rate-limits/);
* bearer tokens: 401 ``{"error": "The access token is invalid"}``.

Notifications follow https://docs.joinmastodon.org/entities/Notification/: ``mention`` for a
status that mentions the account, ``status`` for a post by an account the brand enabled
notifications for (the fake watches every account :meth:`FakeMastodon.load` creates), and
deleting a status removes its notifications (as Mastodon's ``dependent: :destroy`` does,
from memory of app/models/mention.rb). ``update`` notifications are only sent to accounts
that reblogged an edited status; the fake has no reblogs, so it sends none.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from scrm_core.testing.fakes import Fault, FaultInjector

__all__ = ["FakeMastodon", "MastodonRequest"]

IDEMPOTENCY_TTL = timedelta(hours=1)
_VISIBILITIES = ("public", "unlisted", "private", "direct")
_MENTION = re.compile(r"(?<![\w@])@([a-zA-Z0-9_]+(?:@[a-zA-Z0-9.-]+)?)")
_HASHTAG = re.compile(r"(?<![\w#])#(\w+)")


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _id_key(value: str) -> tuple[int, str]:
    """Mastodon ids are digit strings that sort as numbers."""
    return (len(value), value)


@dataclass(frozen=True)
class MastodonRequest:
    """One request the fake answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    idempotency_key: str | None = None
    fault: str | None = None


@dataclass
class _Account:
    id: str
    username: str
    display_name: str = ""
    note: str = ""
    bot: bool = False
    followers_count: int = 0
    fields: list[dict[str, Any]] = field(default_factory=list)
    created_at: datetime = field(default_factory=lambda: datetime(2023, 1, 1, tzinfo=UTC))


@dataclass
class _Status:
    id: str
    account_id: str
    text: str
    created_at: datetime
    visibility: str = "public"
    in_reply_to_id: str | None = None
    language: str | None = "en"
    edited_at: datetime | None = None
    mentions: list[str] = field(default_factory=list)  # account ids
    tags: list[str] = field(default_factory=list)


@dataclass
class _Notification:
    id: str
    type: str
    account_id: str  # for whom
    from_id: str
    status_id: str | None
    created_at: datetime


class _Answer(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status, self.body = status, body


class FakeMastodon:
    """A Mastodon instance in memory. ``app`` is the ASGI app to serve with FakeServer.

    :param domain: the instance's domain, used in ``url`` and ``acct`` fields.
    :param rate_limit: requests per ``rate_period`` seconds per token (Mastodon: 300 per 5 min).
    """

    TOKEN = "fake-mastodon-token"  # noqa: S105 - a test value, not a credential
    BRAND_ID = "1004"

    def __init__(
        self,
        *,
        domain: str = "social.example",
        rate_limit: int = 300,
        rate_period: float = 300.0,
        faults: FaultInjector | None = None,
    ) -> None:
        self.domain = domain
        self.rate_limit = rate_limit
        self.rate_period = rate_period
        self.faults = faults or FaultInjector()
        self.accounts: dict[str, _Account] = {}
        self.statuses: dict[str, _Status] = {}
        self.notifications: list[_Notification] = []
        self.tokens: dict[str, str] = {self.TOKEN: self.BRAND_ID}
        self.watched: set[str] = set()  # accounts whose posts notify the brand ("status" type)
        self.requests: list[MastodonRequest] = []
        self.rate_limited = 0
        self._idempotency: dict[tuple[str, str], tuple[str, datetime]] = {}
        self._notification_ids = itertools.count(1)
        self._next_status = 100_000
        self._window_start = time.time()
        self._spent: dict[str, int] = {}
        self._subscribers: list[tuple[str, asyncio.AbstractEventLoop, asyncio.Queue[str]]] = []
        self._lock = threading.RLock()
        self.app = self._build_app()
        self.account(self.BRAND_ID, "brand", display_name="Brand")

    # ------------------------------------------------------------------ seeding and test helpers

    def account(self, account_id: str, username: str, **extra: Any) -> None:
        """Create or update an account (``display_name``, ``note`` (HTML), ``bot``, ``fields``...)."""
        with self._lock:
            current = self.accounts.get(account_id)
            if current is None:
                self.accounts[account_id] = _Account(account_id, username, **extra)
            else:
                current.username = username
                for key, value in extra.items():
                    setattr(current, key, value)

    def load(self, events: Iterable[Any]) -> None:
        """Seed from scrm events: profiles become accounts (the brand is the account whose
        handle is ``brand``, or whose messages are outbound), messages statuses with their
        notifications, edits set ``edited_at``, deletions remove the status and its
        notifications. Every non-brand account is watched (``status`` notifications)."""
        for event in events:
            kind = event.kind
            if kind == "profile.updated":
                self._load_profile(event.profile)
            elif kind == "message.created":
                m = event.message
                self._load_profile(m.author, outbound=m.direction == "outbound")
                mentions = [self._account_by_acct(h) for h in m.mentions]
                parent = self.statuses.get(m.parent_id) if m.parent_id else None
                if parent is not None and parent.account_id != m.author.account_id:
                    mentions.insert(0, parent.account_id)  # a reply mentions whom it answers
                self._create(
                    m.id,
                    m.author.account_id,
                    m.text,
                    created_at=m.created_at,
                    visibility="direct" if m.visibility == "direct" else "public",
                    in_reply_to_id=m.parent_id,
                    language=m.language or "en",
                    mentions=[a for a in mentions if a is not None],
                    tags=list(m.hashtags),
                    direct_to_brand=m.visibility == "direct",
                )
            elif kind == "message.edited":
                self.edit(event.message.id, event.message.text, at=event.message.edited_at)
            elif kind == "message.deleted":
                self.delete(event.message_id)

    def _load_profile(self, profile: Any, *, outbound: bool = False) -> None:
        account_id = profile.account_id
        if outbound or profile.handle == "brand":
            self.tokens[self.TOKEN] = account_id  # the token belongs to the brand account
        self.account(account_id, profile.handle or f"user{account_id}", display_name=profile.display_name or "")
        if account_id != self.brand_id:
            self.watched.add(account_id)

    @property
    def brand_id(self) -> str:
        return self.tokens[self.TOKEN]

    def _account_by_acct(self, acct: str) -> str | None:
        name = acct.lstrip("@").split("@")[0]
        return next((a.id for a in self.accounts.values() if a.username == name), None)

    def post(
        self,
        account_id: str,
        text: str,
        *,
        in_reply_to_id: str | None = None,
        visibility: str = "public",
        language: str | None = "en",
    ) -> str:
        """Post a status as ``account_id`` (mentions parsed from ``@name`` in the text); streams it."""
        mentions = [a for a in (self._account_by_acct(n) for n in _MENTION.findall(text)) if a]
        return self._create(
            None,
            account_id,
            text,
            visibility=visibility,
            in_reply_to_id=in_reply_to_id,
            language=language,
            mentions=mentions,
            tags=_HASHTAG.findall(text),
        )

    def edit(self, status_id: str, text: str, *, at: datetime | None = None) -> None:
        with self._lock:
            status = self.statuses[status_id]
            status.text = text
            status.edited_at = at or datetime.now(UTC)
            self._publish_status("status.update", status)

    def delete(self, status_id: str) -> None:
        with self._lock:
            self.statuses.pop(status_id, None)
            self.notifications = [n for n in self.notifications if n.status_id != status_id]
            self._publish(None, "delete", status_id)

    def rate_limit_next(self) -> None:
        """The next API request (not the stream) gets a 429."""
        self.faults.arm(Fault.rate_limited)

    def lose_next_response(self) -> None:
        """The next write is applied, then answered with a proxy's 502."""
        self.faults.arm(Fault.lost_response)

    def posted(self, account_id: str | None = None) -> list[dict[str, Any]]:
        """Statuses by ``account_id`` (default: the brand), as the API shows them."""
        who = account_id or self.brand_id
        with self._lock:
            return [self._status_json(s) for s in self.statuses.values() if s.account_id == who]

    # ------------------------------------------------------------------ state changes

    def _create(
        self,
        status_id: str | None,
        account_id: str,
        text: str,
        *,
        created_at: datetime | None = None,
        visibility: str = "public",
        in_reply_to_id: str | None = None,
        language: str | None = "en",
        mentions: list[str] | None = None,
        tags: list[str] | None = None,
        direct_to_brand: bool = False,
    ) -> str:
        with self._lock:
            if status_id is None:
                self._next_status += 1
                status_id = str(self._next_status)
            mentioned = list(dict.fromkeys(mentions or []))
            if direct_to_brand and self.brand_id not in mentioned and account_id != self.brand_id:
                mentioned.append(self.brand_id)
            status = _Status(
                status_id,
                account_id,
                text,
                created_at or datetime.now(UTC),
                visibility,
                in_reply_to_id,
                language,
                mentions=mentioned,
                tags=list(tags or []),
            )
            self.statuses[status_id] = status
            notified = set()
            for target in mentioned:
                if target != account_id and target in self.accounts:
                    self._notify("mention", target, account_id, status)
                    notified.add(target)
            brand = self.brand_id
            if account_id in self.watched and brand not in notified and visibility != "direct":
                self._notify("status", brand, account_id, status)
            self._publish_status("update", status)
            return status_id

    def _notify(self, kind: str, target: str, from_id: str, status: _Status) -> None:
        note = _Notification(str(next(self._notification_ids)), kind, target, from_id, status.id, status.created_at)
        self.notifications.append(note)
        self._publish(target, "notification", self._notification_json(note))

    # ------------------------------------------------------------------ streaming

    def _publish_status(self, event: str, status: _Status) -> None:
        for account_id, _, _ in list(self._subscribers):
            if self._visible(status, account_id):
                self._publish(account_id, event, self._status_json(status))

    def _publish(self, account_id: str | None, event: str, payload: Any) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        frame = f"event: {event}\ndata: {data}\n\n"
        for who, loop, queue in list(self._subscribers):
            if account_id is None or who == account_id:
                loop.call_soon_threadsafe(queue.put_nowait, frame)

    async def _stream(self, account_id: str) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str] = asyncio.Queue()
        entry = (account_id, loop, queue)
        with self._lock:
            self._subscribers.append(entry)
        try:
            yield ":)\n"
            while True:
                try:
                    yield await asyncio.wait_for(queue.get(), timeout=1.0)
                except TimeoutError:
                    yield ":thump\n"  # Mastodon's heartbeat comment
        finally:
            with self._lock:
                self._subscribers.remove(entry)

    @property
    def stream_listeners(self) -> int:
        return len(self._subscribers)

    # ------------------------------------------------------------------ JSON shapes

    def _account_json(self, account_id: str) -> dict[str, Any]:
        a = self.accounts[account_id]
        url = f"https://{self.domain}/@{a.username}"
        return {
            "id": a.id,
            "username": a.username,
            "acct": a.username,
            "display_name": a.display_name,
            "locked": False,
            "bot": a.bot,
            "discoverable": True,
            "group": False,
            "created_at": _iso(a.created_at),
            "note": a.note,
            "url": url,
            "uri": f"https://{self.domain}/users/{a.username}",
            "avatar": f"https://{self.domain}/avatars/{a.id}.png",
            "avatar_static": f"https://{self.domain}/avatars/{a.id}.png",
            "header": f"https://{self.domain}/headers/missing.png",
            "header_static": f"https://{self.domain}/headers/missing.png",
            "followers_count": a.followers_count,
            "following_count": 0,
            "statuses_count": sum(1 for s in self.statuses.values() if s.account_id == a.id),
            "last_status_at": None,
            "emojis": [],
            "fields": a.fields,
        }

    def _content(self, status: _Status) -> str:
        """Mastodon's HTML rendering: paragraphs, ``<br>``, mention and hashtag links, URLs."""

        def render(line: str) -> str:
            out = html.escape(line, quote=False)
            out = re.sub(
                r"https?://[^\s<]+",
                lambda m: (
                    f'<a href="{m.group(0)}" rel="nofollow noopener" target="_blank">'
                    f'<span class="invisible">{m.group(0).split("//")[0]}//</span>'
                    f'<span class="">{m.group(0).split("//", 1)[1]}</span></a>'
                ),
                out,
            )
            out = _MENTION.sub(
                lambda m: (
                    f'<span class="h-card"><a href="https://{self.domain}/@{m.group(1)}" '
                    f'class="u-url mention">@<span>{m.group(1)}</span></a></span>'
                ),
                out,
            )
            return _HASHTAG.sub(
                lambda m: (
                    f'<a href="https://{self.domain}/tags/{m.group(1)}" class="mention hashtag" '
                    f'rel="tag">#<span>{m.group(1)}</span></a>'
                ),
                out,
            )

        paragraphs = status.text.split("\n\n")
        return "".join("<p>" + "<br />".join(render(line) for line in p.split("\n")) + "</p>" for p in paragraphs)

    def _status_json(self, s: _Status) -> dict[str, Any]:
        author = self.accounts[s.account_id]
        parent = self.statuses.get(s.in_reply_to_id) if s.in_reply_to_id else None
        return {
            "id": s.id,
            "uri": f"https://{self.domain}/users/{author.username}/statuses/{s.id}",
            "url": f"https://{self.domain}/@{author.username}/{s.id}",
            "created_at": _iso(s.created_at),
            "edited_at": _iso(s.edited_at) if s.edited_at else None,
            "account": self._account_json(s.account_id),
            "content": self._content(s),
            "visibility": s.visibility,
            "sensitive": False,
            "spoiler_text": "",
            "media_attachments": [],
            "application": None,
            "mentions": [
                {
                    "id": a,
                    "username": self.accounts[a].username,
                    "acct": self.accounts[a].username,
                    "url": f"https://{self.domain}/@{self.accounts[a].username}",
                }
                for a in s.mentions
                if a in self.accounts
            ],
            "tags": [{"name": t.lower(), "url": f"https://{self.domain}/tags/{t.lower()}"} for t in s.tags],
            "emojis": [],
            "reblogs_count": 0,
            "favourites_count": 0,
            "replies_count": sum(1 for x in self.statuses.values() if x.in_reply_to_id == s.id),
            "in_reply_to_id": s.in_reply_to_id,
            "in_reply_to_account_id": parent.account_id if parent else None,
            "reblog": None,
            "poll": None,
            "card": None,
            "language": s.language,
            "text": None,
        }

    def _notification_json(self, n: _Notification) -> dict[str, Any]:
        status = self.statuses.get(n.status_id) if n.status_id else None
        return {
            "id": n.id,
            "type": n.type,
            "group_key": f"ungrouped-{n.id}",
            "created_at": _iso(n.created_at),
            "account": self._account_json(n.from_id),
            "status": self._status_json(status) if status else None,
        }

    def _visible(self, s: _Status, viewer: str) -> bool:
        return s.visibility != "direct" or s.account_id == viewer or viewer in s.mentions

    # ------------------------------------------------------------------ endpoints

    def _page(
        self, items: list[tuple[str, Any]], query: dict[str, list[str]], path: str, default: int, most: int
    ) -> tuple[list[Any], dict[str, str]]:
        """Mastodon's id pagination over ``(id, item)`` pairs; newest first, with a Link header."""

        def one(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values else None

        limit = min(int(one("limit") or default), most)
        max_id, since_id, min_id = one("max_id"), one("since_id"), one("min_id")
        rows = sorted(items, key=lambda p: _id_key(p[0]))
        if max_id is not None:
            rows = [r for r in rows if _id_key(r[0]) < _id_key(max_id)]
        if since_id is not None:
            rows = [r for r in rows if _id_key(r[0]) > _id_key(since_id)]
        if min_id is not None:
            rows = [r for r in rows if _id_key(r[0]) > _id_key(min_id)][:limit]  # right after min_id
        else:
            rows = rows[-limit:] if limit else []
        rows.reverse()
        headers: dict[str, str] = {}
        if rows:
            keep = {k: v for k, v in query.items() if k not in ("max_id", "min_id", "since_id")}
            base = f"https://{self.domain}{path}?"

            def link(extra: dict[str, str]) -> str:
                return base + urllib.parse.urlencode({**keep, **{k: [v] for k, v in extra.items()}}, doseq=True)

            headers["Link"] = (
                f'<{link({"max_id": rows[-1][0]})}>; rel="next", <{link({"min_id": rows[0][0]})}>; rel="prev"'
            )
        return [item for _, item in rows], headers

    def _route(
        self, method: str, parts: list[str], query: dict[str, list[str]], form: dict[str, str], me: str, key: str | None
    ) -> tuple[int, Any, dict[str, str], bool]:
        """(status, body, extra headers, is_write)."""
        match parts:
            case ["api", "v1", "accounts", "verify_credentials"] if method == "GET":
                return 200, self._account_json(me) | {"source": {"privacy": "public", "note": ""}}, {}, False
            case ["api", "v1", "accounts", account_id] if method == "GET":
                if account_id not in self.accounts:
                    raise _Answer(404, {"error": "Record not found"})
                return 200, self._account_json(account_id), {}, False
            case ["api", "v1", "accounts", account_id, "statuses"] if method == "GET":
                exclude_direct = query.get("exclude_direct", ["0"])[0] in ("1", "true")
                items = [
                    (s.id, self._status_json(s))
                    for s in self.statuses.values()
                    if s.account_id == account_id
                    and (s.visibility in ("public", "unlisted") or account_id == me)
                    and not (exclude_direct and s.visibility == "direct")
                ]
                body, headers = self._page(items, query, f"/api/v1/accounts/{account_id}/statuses", 20, 40)
                return 200, body, headers, False
            case ["api", "v1", "notifications"] if method == "GET":
                types = set(query.get("types[]", [])) or None
                excluded = set(query.get("exclude_types[]", []))
                items = [
                    (n.id, self._notification_json(n))
                    for n in self.notifications
                    if n.account_id == me and (types is None or n.type in types) and n.type not in excluded
                ]
                body, headers = self._page(items, query, "/api/v1/notifications", 40, 80)
                return 200, body, headers, False
            case ["api", "v1", "statuses"] if method == "POST":
                return self._post_status(me, form, key)
            case ["api", "v1", "statuses", status_id] if method == "GET":
                return 200, self._status_json(self._get(status_id, me)), {}, False
            case ["api", "v1", "statuses", status_id] if method == "PUT":
                status = self._own(status_id, me)
                self.edit(status_id, form.get("status", status.text))
                return 200, self._status_json(status), {}, True
            case ["api", "v1", "statuses", status_id] if method == "DELETE":
                status = self._own(status_id, me)
                deleted = self._status_json(status) | {"text": status.text}
                self.delete(status_id)
                return 200, deleted, {}, True
            case ["api", "v1", "statuses", status_id, "context"] if method == "GET":
                return 200, self._context(self._get(status_id, me), me), {}, False
        raise _Answer(404, {"error": "Record not found"})

    def _get(self, status_id: str, me: str) -> _Status:
        status = self.statuses.get(status_id)
        if status is None or not self._visible(status, me):
            raise _Answer(404, {"error": "Record not found"})
        return status

    def _own(self, status_id: str, me: str) -> _Status:
        status = self._get(status_id, me)
        if status.account_id != me:
            raise _Answer(403, {"error": "This action is not allowed"})
        return status

    def _context(self, status: _Status, me: str) -> dict[str, Any]:
        ancestors: list[_Status] = []
        parent_id = status.in_reply_to_id
        while parent_id and parent_id in self.statuses:
            parent = self.statuses[parent_id]
            ancestors.insert(0, parent)
            parent_id = parent.in_reply_to_id
        descendants: list[_Status] = []
        frontier = {status.id}
        for s in sorted(self.statuses.values(), key=lambda x: _id_key(x.id)):
            if s.in_reply_to_id in frontier:
                descendants.append(s)
                frontier.add(s.id)
        return {
            "ancestors": [self._status_json(s) for s in ancestors if self._visible(s, me)],
            "descendants": [self._status_json(s) for s in descendants if self._visible(s, me)],
        }

    def _post_status(self, me: str, form: dict[str, str], key: str | None) -> tuple[int, Any, dict[str, str], bool]:
        now = datetime.now(UTC)
        if key is not None:
            earlier = self._idempotency.get((me, key))
            if earlier is not None and now - earlier[1] < IDEMPOTENCY_TTL and earlier[0] in self.statuses:
                return 200, self._status_json(self.statuses[earlier[0]]), {}, True
        text = form.get("status", "")
        if not text.strip():
            raise _Answer(422, {"error": "Validation failed: Text can't be blank"})
        if len(text) > 500:
            raise _Answer(422, {"error": "Validation failed: Text character limit of 500 exceeded"})
        parent_id = form.get("in_reply_to_id")
        if parent_id is not None:
            self._get(parent_id, me)
        visibility = form.get("visibility", "public")
        if visibility not in _VISIBILITIES:
            raise _Answer(422, {"error": "Validation failed: Visibility is not included in the list"})
        status_id = self.post(
            me, text, in_reply_to_id=parent_id, visibility=visibility, language=form.get("language") or "en"
        )
        if key is not None:
            self._idempotency[(me, key)] = (status_id, now)
        return 200, self._status_json(self.statuses[status_id]), {}, True

    # ------------------------------------------------------------------ rate limit and app

    def _spend(self, token: str) -> tuple[dict[str, str], bool]:
        now = time.time()
        if now - self._window_start >= self.rate_period:
            self._window_start, self._spent = now, {}
        used = self._spent.get(token, 0) + 1
        self._spent[token] = used
        reset = datetime.fromtimestamp(self._window_start + self.rate_period, UTC)
        headers = {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(self.rate_limit - used, 0)),
            "X-RateLimit-Reset": _iso(reset),
        }
        return headers, used > self.rate_limit

    def _instance(self, base: str) -> dict[str, Any]:
        ws = "ws" + base[4:] if base.startswith("http") else base
        return {
            "uri": self.domain,
            "title": "scrm fake Mastodon",
            "short_description": "",
            "description": "",
            "version": "4.3.0",
            "urls": {"streaming_api": ws},
            "stats": {"user_count": len(self.accounts), "status_count": len(self.statuses), "domain_count": 1},
            "languages": ["en"],
            "registrations": False,
            "approval_required": False,
            "invites_enabled": False,
            "configuration": {"statuses": {"max_characters": 500}},
            "contact_account": None,
            "rules": [],
        }

    def _build_app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response, StreamingResponse
        from starlette.routing import Route

        def me_from(request: Request) -> tuple[str, str]:
            auth = request.headers.get("authorization", "")
            token = auth[7:] if auth.lower().startswith("bearer ") else ""
            account = self.tokens.get(token)
            if account is None:
                raise _Answer(401, {"error": "The access token is invalid"})
            return token, account

        async def instance(request: Request) -> Response:
            base = f"{request.url.scheme}://{request.url.netloc}"
            body = self._instance(base)
            if request.url.path.startswith("/api/v2"):
                body = {
                    "domain": self.domain,
                    "title": body["title"],
                    "version": body["version"],
                    "api_versions": {"mastodon": 2},
                    "configuration": {"urls": {"streaming": body["urls"]["streaming_api"]}},
                }
            return JSONResponse(body)

        async def stream(request: Request) -> Response:
            try:
                _, account = me_from(request)
            except _Answer as answer:
                return JSONResponse(answer.body, status_code=answer.status)
            return StreamingResponse(self._stream(account), media_type="text/event-stream")

        async def api(request: Request) -> Response:
            raw = await request.body()
            query = urllib.parse.parse_qs(request.url.query)
            form = dict(urllib.parse.parse_qsl(raw.decode())) if raw else {}
            key = request.headers.get("idempotency-key")
            parts = request.url.path.strip("/").split("/")
            headers: dict[str, str] = {}
            fault = Fault.none
            with self._lock:
                try:
                    token, me = me_from(request)
                    headers, over = self._spend(token)
                    fault = self.faults.roll()
                    if self.faults.take_armed(Fault.rate_limited):
                        fault = Fault.rate_limited
                    if over or fault is Fault.rate_limited:
                        self.rate_limited += 1
                        headers["X-RateLimit-Remaining"] = "0"
                        raise _Answer(429, {"error": "Too many requests"})
                    if fault is Fault.server_error:
                        raise _Answer(503, {"error": "Service Unavailable"})
                    status, body, extra, write = self._route(request.method, parts, query, form, me, key)
                    headers.update(extra)
                    if write and self.faults.take_armed(Fault.lost_response):
                        fault = Fault.lost_response
                except _Answer as answer:
                    status, body = answer.status, answer.body
                self.requests.append(
                    MastodonRequest(
                        request.method,
                        request.url.path,
                        query,
                        502 if fault is Fault.lost_response else status,
                        key,
                        None if fault is Fault.none else fault.value,
                    )
                )
            if fault is Fault.timeout:
                await asyncio.sleep(self.faults.timeout_seconds)
            if fault is Fault.lost_response:
                return Response("<html>502 Bad Gateway</html>", status_code=502, media_type="text/html")
            return JSONResponse(body, status_code=status, headers=headers)

        return Starlette(
            routes=[
                Route("/api/v1/instance", instance, methods=["GET"]),
                Route("/api/v2/instance", instance, methods=["GET"]),
                Route("/api/v1/streaming/user", stream, methods=["GET"]),
                Route("/{path:path}", api, methods=["GET", "POST", "PUT", "DELETE"]),
            ]
        )
