"""A stateful fake of Reddit's OAuth API, for network-adapter tests.

It answers what praw 8 / prawcore 4 really ask, in Reddit's wire format:

* ``POST /api/v1/access_token`` with HTTP basic auth (``client_id:client_secret``):
  ``grant_type=password`` (script apps) and ``grant_type=refresh_token``. A wrong client
  is a 401; a wrong password is a **200** carrying ``{"error": "invalid_grant"}``, as
  Reddit does (prawcore turns it into ``OAuthException``: "Why are these OKAY
  responses?" in ``prawcore/auth.py``).
* ``GET /api/v1/me``; ``GET /api/user_data_by_account_ids?ids=t2_..``.
* Listings ``/r/{sub}/comments``, ``/r/{sub}/new``, ``/message/mentions`` and
  ``/message/inbox`` in Reddit's shape ``{"kind": "Listing", "data": {"children":
  [{"kind": "t1", "data": {...}}], "after": .., "before": ..}}``, newest first, with
  ``limit`` (default 25, at most 100), ``after`` (older than the anchor) and ``before``
  (the ``limit`` items just newer than the anchor, still newest first). An anchor that is
  not in the listing gives an empty page, as on Reddit.
  https://github.com/reddit-archive/reddit/wiki/JSON (listing, thing, comment, link).
* ``GET /api/info?id=t1_..,t3_..`` (at most 100 fullnames: more is a 400 here),
  ``GET /comments/{link}`` and ``/comments/{link}/_/{comment}`` (``[link listing,
  comment listing]`` with nested ``replies``; no ``more`` stubs, so every reply is there).
* ``POST /api/comment`` (form ``thing_id``, ``text``) answering ``{"json": {"errors":
  [], "data": {"things": [...]}}}``, with Reddit's error triples (``DELETED_COMMENT``,
  ``THREAD_LOCKED``, ``TOO_LONG``) when the reply cannot be taken;
  ``POST /api/del`` and ``POST /api/editusertext``.
* ``X-Ratelimit-Used`` / ``X-Ratelimit-Remaining`` / ``X-Ratelimit-Reset`` on every API
  answer (https://github.com/reddit-archive/reddit/wiki/API, "Rules"), and 429 when the
  window is spent or a fault is injected.

Inbox mention items carry ``context`` (``/r/{sub}/comments/{link}/_/{id}/?context=3``)
and no ``link_id``, as Reddit's inbox does (from memory of real payloads; the adapter
reads the link from ``context``).

Content can be deleted (``[deleted]`` body and author), removed by a moderator
(``[removed]`` body, ``[deleted]`` author, as non-moderators see it) and edited (``edited``
becomes the edit's Unix time) after it was listed, so an adapter's re-check is testable.
Deleted things stay in listings and in ``/api/info`` with their placeholders; removed
things leave the subreddit listings (non-moderators no longer see them there; from
memory) but stay in ``/api/info`` and comment trees. So a listing anchor can vanish, and
``before=<that anchor>`` then answers an empty page.

Use it with :class:`~scrm_core.testing.fakes.FakeServer`::

    fake = FakeReddit(users={"brand": "hunter2"})
    fake.load(events)               # scrm events with Reddit-shaped ids (t3_/t1_/t2_)
    with FakeServer(fake.app) as server:
        reddit = praw.Reddit(client_id=FakeReddit.CLIENT_ID, ..., oauth_url=server.url,
                             reddit_url=server.url)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scrm_core.models import Event, MessageCreated, MessageDeleted, MessageEdited, ProfileUpdated, Visibility
from scrm_core.testing.fakes import Fault, FaultInjector

__all__ = ["FakeReddit", "RedditRequest", "to_base36"]

LISTING_MAX = 100  # Reddit's cap on ``limit`` (https://www.reddit.com/dev/api, "listings")
INFO_MAX = 100  # fullnames per /api/info call (praw's Reddit.info() sends 100 at a time)
COMMENT_MAX = 10_000  # characters in a comment body (Reddit's TOO_LONG; from memory)
_MENTION = re.compile(r"(?<![\w/])/?u/([A-Za-z0-9_-]{3,20})")
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def to_base36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _B36[r] + out
        if n == 0:
            return out


@dataclass(frozen=True)
class RedditRequest:
    """One request the fake answered."""

    method: str
    path: str
    status: int
    fault: str | None = None


@dataclass
class _Account:
    id36: str
    name: str
    created: float
    deleted: bool = False  # the person deleted the account: their things show author [deleted]

    @property
    def fullname(self) -> str:
        return f"t2_{self.id36}"


@dataclass
class _Thing:
    kind: str  # "t1" comment, "t3" link (submission)
    id36: str
    author: _Account
    subreddit: str
    created: float
    seq: int
    body: str = ""  # comment body or self-post text
    title: str = ""
    link_id: str | None = None  # t1 only
    parent_id: str | None = None  # t1 only
    edited: float | bool = False
    state: str = "live"  # live | deleted | removed
    locked: bool = False
    mentions: list[str] = field(default_factory=list)

    @property
    def fullname(self) -> str:
        return f"{self.kind}_{self.id36}"


class _Answer(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


class FakeReddit:
    """Reddit in memory. ``app`` is the ASGI app to serve with FakeServer.

    :param users: ``{username: password}`` of accounts that may log in (script apps).
    :param refresh_tokens: ``{refresh token: username}`` for the refresh-token grant.
    :param subreddit: where :meth:`load` puts submissions.
    :param rate_limit: requests per ``window`` seconds before Reddit answers 429.
    """

    CLIENT_ID = "fake-reddit-client"
    CLIENT_SECRET = "fake-reddit-secret"  # noqa: S105 - test value, not a credential

    def __init__(
        self,
        *,
        users: dict[str, str] | None = None,
        refresh_tokens: dict[str, str] | None = None,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        subreddit: str = "acme",
        rate_limit: int = 1000,
        window: int = 600,
        faults: FaultInjector | None = None,
    ) -> None:
        self.users = dict(users or {})
        self.refresh_tokens = dict(refresh_tokens or {})
        self.client_id, self.client_secret = client_id, client_secret
        self.subreddit = subreddit
        self.rate_limit, self.window = rate_limit, window
        self.faults = faults or FaultInjector()
        self.requests: list[RedditRequest] = []
        self.accounts: dict[str, _Account] = {}  # by lower-case name
        self.things: dict[str, _Thing] = {}  # by fullname
        self.subreddits: dict[str, bool] = {subreddit.lower(): False}  # name -> private
        self.mention_inbox: dict[str, list[str]] = {}  # lower-case username -> comment fullnames
        self.tokens: dict[str, str] = {}  # access token -> lower-case username
        self._stamps: deque[float] = deque()
        self._seq = itertools.count()
        self._next_id = {"t1": 36**5, "t2": 36**4, "t3": 36**4}
        self._lock = threading.RLock()
        self.app = self._build_app()

    # ------------------------------------------------------------ seeding and inspection

    def add_account(self, name: str, account_id: str | None = None, created: float | None = None) -> _Account:
        with self._lock:
            existing = self.accounts.get(name.lower())
            if existing is not None:
                return existing
            id36 = account_id.removeprefix("t2_") if account_id else self._new_id("t2")
            self._bump("t2", id36)
            account = _Account(id36, name, created if created is not None else time.time())
            self.accounts[name.lower()] = account
            return account

    def load(self, events: Iterable[Event]) -> None:
        """Seed from scrm events whose ids are Reddit fullnames.

        A root message becomes a self post (t3) titled with the text's first 300
        characters and no self text; an edit of it sets the self text, because Reddit
        titles cannot be edited. A reply becomes a comment (t1) with ``link_id`` = the thread's
        root and ``parent_id`` = the direct parent. Edits set ``edited``; deletions turn
        body and author into ``[deleted]``. Reddit has no handle changes and direct
        messages are not modelled: both raise ValueError.
        """
        with self._lock:
            for event in events:
                if isinstance(event, ProfileUpdated):
                    p = event.profile
                    name = p.handle or p.account_id
                    known = next((a for a in self.accounts.values() if a.fullname == p.account_id), None)
                    if known is not None and known.name != name:
                        raise ValueError(f"Reddit usernames cannot change ({known.name} -> {name})")
                    self.add_account(name, p.account_id)
                elif isinstance(event, MessageCreated):
                    self._load_message(event)
                elif isinstance(event, MessageEdited):
                    thing = self.things[event.message.id]
                    thing.body = event.message.text
                    thing.edited = (event.message.edited_at or datetime.now(UTC)).timestamp()
                elif isinstance(event, MessageDeleted):
                    self.delete(event.message_id)

    def _load_message(self, event: MessageCreated) -> None:
        m = event.message
        if m.visibility is Visibility.direct:
            raise ValueError(f"{m.id}: the Reddit fake does not model private messages")
        author = self.add_account(m.author.handle or m.author.account_id, m.author.account_id)
        kind, _, id36 = m.id.partition("_")
        expected = "t3" if m.thread_root_id is None else "t1"
        if kind != expected:
            raise ValueError(f"{m.id}: a {'root' if expected == 't3' else 'reply'} needs a {expected}_ fullname")
        self._bump(kind, id36)
        thing = _Thing(kind, id36, author, self.subreddit, m.created_at.timestamp(), next(self._seq), body=m.text)
        if kind == "t3":  # the text becomes the title; an edit later sets the self text
            thing.title, thing.body = m.text[:300], ""
        else:
            thing.link_id, thing.parent_id = m.thread_root_id, m.parent_id
        thing.mentions = list(m.mentions)
        self._store(thing)

    def add_submission(self, author: str, title: str, text: str = "", *, subreddit: str | None = None) -> str:
        with self._lock:
            self.subreddits.setdefault((subreddit or self.subreddit).lower(), False)
            thing = _Thing(
                "t3",
                self._new_id("t3"),
                self.add_account(author),
                subreddit or self.subreddit,
                time.time(),
                next(self._seq),
                body=text,
                title=title,
            )
            self._store(thing)
            return thing.fullname

    def add_comment(self, author: str, parent: str, text: str) -> str:
        with self._lock:
            return self._comment(self.add_account(author), self.things[parent], text).fullname

    def add_subreddit(self, name: str, *, private: bool = False) -> None:
        with self._lock:
            self.subreddits[name.lower()] = private

    def delete_account(self, name: str) -> None:
        """The person deleted their account: their things keep their text, author ``[deleted]``."""
        with self._lock:
            self.accounts[name.lower()].deleted = True

    def delete(self, fullname: str) -> None:
        """The author deleted it: body and author become ``[deleted]``."""
        with self._lock:
            self.things[fullname].state = "deleted"

    def remove(self, fullname: str) -> None:
        """A moderator removed it: non-moderators see ``[removed]`` and ``[deleted]``."""
        with self._lock:
            self.things[fullname].state = "removed"

    def edit(self, fullname: str, text: str, at: float | None = None) -> None:
        with self._lock:
            thing = self.things[fullname]
            thing.body = text
            thing.edited = at if at is not None else time.time()

    def lock(self, fullname: str) -> None:
        with self._lock:
            self.things[fullname].locked = True

    def replies_to(self, fullname: str, author: str | None = None) -> list[dict[str, Any]]:
        """Comment data of the direct replies to ``fullname`` (by ``author`` if given)."""
        with self._lock:
            return [
                self._data(t)
                for t in self._sorted()
                if t.parent_id == fullname and (author is None or t.author.name.lower() == author.lower())
            ]

    def rate_limit_next(self) -> None:
        """Answer the next API request with 429 and spent rate-limit headers."""
        self.faults.arm(Fault.rate_limited)

    def lose_next_response(self) -> None:
        """Apply the next write (POST), then answer 502 as a proxy that lost the answer."""
        self.faults.arm(Fault.lost_response)

    def statuses(self, status: int) -> int:
        return sum(1 for r in self.requests if r.status == status)

    # ------------------------------------------------------------ internals

    def _new_id(self, kind: str) -> str:
        n = self._next_id[kind]
        self._next_id[kind] = n + 1
        return to_base36(n)

    def _bump(self, kind: str, id36: str) -> None:
        self._next_id[kind] = max(self._next_id[kind], int(id36, 36) + 1)

    def _store(self, thing: _Thing) -> None:
        self.things[thing.fullname] = thing
        if thing.kind == "t1":  # Reddit notifies username mentions in comments only
            named = {n.lower() for n in thing.mentions} | {n.lower() for n in _MENTION.findall(thing.body)}
            for name in named:
                if name in self.accounts and name != thing.author.name.lower():
                    self.mention_inbox.setdefault(name, []).append(thing.fullname)

    def _comment(self, author: _Account, parent: _Thing, text: str) -> _Thing:
        link = parent.fullname if parent.kind == "t3" else parent.link_id
        thing = _Thing(
            "t1",
            self._new_id("t1"),
            author,
            parent.subreddit,
            time.time(),
            next(self._seq),
            body=text,
            link_id=link,
            parent_id=parent.fullname,
        )
        self._store(thing)
        return thing

    def _sorted(self, kind: str | None = None, subreddit: str | None = None) -> list[_Thing]:
        """Newest first, as Reddit's ``new`` sort."""
        things = [
            t
            for t in self.things.values()
            if (kind is None or t.kind == kind) and (subreddit is None or t.subreddit.lower() == subreddit.lower())
        ]
        return sorted(things, key=lambda t: t.seq, reverse=True)

    def _data(self, t: _Thing, *, inbox: bool = False) -> dict[str, Any]:
        gone = t.state != "live"
        body = {"live": t.body, "deleted": "[deleted]", "removed": "[removed]"}[t.state]
        hidden = gone or t.author.deleted
        author = "[deleted]" if hidden else t.author.name
        link36 = (t.link_id or t.fullname).removeprefix("t3_")
        permalink = f"/r/{t.subreddit}/comments/{link36}/_/"
        data: dict[str, Any] = {
            "id": t.id36,
            "name": t.fullname,
            "author": author,
            "subreddit": t.subreddit,
            "subreddit_name_prefixed": f"r/{t.subreddit}",
            "created_utc": t.created,
            "created": t.created,
            "edited": t.edited,
            "locked": t.locked,
            "score": 1,
            "stickied": False,
            "distinguished": None,
        }
        if not hidden:
            data["author_fullname"] = t.author.fullname
        if t.kind == "t3":
            data.update(
                title=t.title,
                selftext=body,
                is_self=True,
                url=f"https://www.reddit.com{permalink}",
                permalink=permalink,
                num_comments=sum(1 for c in self.things.values() if c.link_id == t.fullname),
                removed_by_category={"live": None, "deleted": "deleted", "removed": "moderator"}[t.state],
            )
        else:
            data.update(
                body=body,
                parent_id=t.parent_id,
                permalink=f"{permalink}{t.id36}/",
                replies="",
                depth=self._depth(t),
            )
            if inbox:
                data.update(
                    context=f"{permalink}{t.id36}/?context=3",
                    was_comment=True,
                    type="username_mention",
                    subject="username mention",
                    new=True,
                    link_title=self.things[t.link_id].title if t.link_id in self.things else "",
                )
            else:
                data["link_id"] = t.link_id
        return data

    def _depth(self, t: _Thing) -> int:
        depth = 0
        while t.parent_id and t.parent_id.startswith("t1_") and t.parent_id in self.things:
            t = self.things[t.parent_id]
            depth += 1
        return depth

    def _tree(self, t: _Thing, children: dict[str, list[_Thing]]) -> dict[str, Any]:
        data = self._data(t)
        kids = children.get(t.fullname, [])
        if kids:
            data["replies"] = _listing([self._tree(k, children) for k in kids], None, None)
        return {"kind": "t1", "data": data}

    @staticmethod
    def _thing(t_data: dict[str, Any]) -> dict[str, Any]:
        return {"kind": t_data["name"][:2], "data": t_data}

    # ------------------------------------------------------------ request handling

    def _token(self, auth: str | None, form: dict[str, str]) -> tuple[int, Any]:
        import base64

        try:
            scheme, _, encoded = (auth or "").partition(" ")
            client, _, secret = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            client, secret, scheme = "", "", ""
        if scheme.lower() != "basic" or client != self.client_id or secret != self.client_secret:
            return 401, {"message": "Unauthorized", "error": 401}
        grant = form.get("grant_type")
        user: str | None = None
        if grant == "password":
            name = form.get("username", "")
            if self.users.get(name) is None or self.users[name] != form.get("password"):
                return 200, {"error": "invalid_grant"}
            user = name.lower()
        elif grant == "refresh_token":
            user = self.refresh_tokens.get(form.get("refresh_token", ""))
            if user is None:
                return 400, {"error": "invalid_grant"}
            user = user.lower()
        else:
            return 400, {"error": "unsupported_grant_type"}
        self.add_account(user)
        token = secrets.token_urlsafe(16)
        self.tokens[token] = user
        return 200, {"access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "*"}

    def _spend(self) -> dict[str, str]:
        now = time.monotonic()
        while self._stamps and self._stamps[0] <= now - self.window:
            self._stamps.popleft()
        self._stamps.append(now)
        used = len(self._stamps)
        reset = int(self.window - (now - self._stamps[0])) if self._stamps else self.window
        return {
            "x-ratelimit-used": str(used),
            "x-ratelimit-remaining": f"{max(self.rate_limit - used, 0):.1f}",
            "x-ratelimit-reset": str(max(reset, 1)),
        }

    def _me(self, authorization: str | None) -> _Account:
        scheme, _, token = (authorization or "").partition(" ")
        user = self.tokens.get(token) if scheme.lower() == "bearer" else None
        if user is None:
            raise _Answer(
                401,
                {"message": "Unauthorized", "error": 401},
                {"www-authenticate": 'Bearer realm="reddit", error="invalid_token"'},
            )
        return self.accounts[user]

    def _route(self, method: str, parts: list[str], query: dict[str, str], form: dict[str, str], me: _Account) -> Any:
        match parts:
            case ["api", "v1", "me"]:
                return {"name": me.name, "id": me.id36, "created_utc": me.created, "comment_karma": 0}
            case ["api", "user_data_by_account_ids"]:
                wanted = set(query.get("ids", "").split(","))
                found = {
                    a.fullname: {"name": a.name, "created_utc": a.created, "link_karma": 0, "comment_karma": 0}
                    for a in self.accounts.values()
                    if a.fullname in wanted
                }
                if not found:
                    raise _Answer(404, {"message": "Not Found", "error": 404})
                return found
            case ["r", sub, "comments" | "new" as which]:
                self._check_subreddit(sub)
                listed = [t for t in self._sorted("t1" if which == "comments" else "t3", sub) if t.state != "removed"]
                return self._listing(listed, query)
            case ["message", "mentions" | "inbox" as box]:
                names = self.mention_inbox.get(me.name.lower(), [])
                items = [self.things[n] for n in names]
                if box == "inbox":
                    mine = {t.fullname for t in self.things.values() if t.author is me}
                    items += [t for t in self.things.values() if t.parent_id in mine and t.fullname not in names]
                items.sort(key=lambda t: t.seq, reverse=True)
                return self._listing(items, query, inbox=True)
            case ["api", "info"]:
                ids = [i for i in query.get("id", "").split(",") if i]
                if len(ids) > INFO_MAX:
                    raise _Answer(400, {"message": "Bad Request", "error": 400})
                children = [self._thing(self._data(self.things[i])) for i in ids if i in self.things]
                return _listing(children, None, None)
            case ["comments", link36, *rest]:
                return self._comments(f"t3_{link36}", rest[1] if len(rest) >= 2 else None)
            case ["api", "comment"] if method == "POST":
                return self._reply(me, form)
            case ["api", "del"] if method == "POST":
                thing = self._own(me, form.get("id", ""))
                thing.state = "deleted"
                return {}
            case ["api", "editusertext"] if method == "POST":
                thing = self._own(me, form.get("thing_id", ""))
                thing.body, thing.edited = form.get("text", ""), time.time()
                return {"json": {"errors": [], "data": {"things": [self._thing(self._data(thing))]}}}
        raise _Answer(404, {"message": "Not Found", "error": 404})

    def _check_subreddit(self, sub: str) -> None:
        """Reddit redirects a missing subreddit to the search page and refuses a private one."""
        private = self.subreddits.get(sub.lower())
        if private is None:
            raise _Answer(302, "", {"location": f"/subreddits/search.json?q={sub}"})
        if private:
            raise _Answer(403, {"reason": "private", "message": "Forbidden", "error": 403})

    def _listing(self, items: list[_Thing], query: dict[str, str], *, inbox: bool = False) -> dict[str, Any]:
        try:
            limit = max(1, min(int(query.get("limit", "25")), LISTING_MAX))
        except ValueError:
            limit = 25
        names = [t.fullname for t in items]
        start, stop = 0, limit
        if query.get("after"):
            if query["after"] not in names:
                return _listing([], None, None)
            start = names.index(query["after"]) + 1
            stop = start + limit
        elif query.get("before"):
            if query["before"] not in names:
                return _listing([], None, None)
            stop = names.index(query["before"])
            start = max(0, stop - limit)
        page = items[start:stop]
        children = [self._thing(self._data(t, inbox=inbox)) for t in page]
        after = page[-1].fullname if page and start + len(page) < len(items) else None
        before = page[0].fullname if page and start > 0 else None
        return _listing(children, after, before)

    def _comments(self, link: str, focus36: str | None) -> list[dict[str, Any]]:
        submission = self.things.get(link)
        if submission is None:
            raise _Answer(404, {"message": "Not Found", "error": 404})
        children: dict[str, list[_Thing]] = {}
        for t in sorted(self.things.values(), key=lambda t: t.seq):
            if t.kind == "t1" and t.link_id == link and t.parent_id:
                children.setdefault(t.parent_id, []).append(t)
        if focus36 is not None:
            focus = self.things.get(f"t1_{focus36}")
            if focus is None or focus.link_id != link:
                raise _Answer(404, {"message": "Not Found", "error": 404})
            top = [focus]
        else:
            top = children.get(link, [])
        return [
            _listing([self._thing(self._data(submission))], None, None),
            _listing([self._tree(t, children) for t in top], None, None),
        ]

    def _reply(self, me: _Account, form: dict[str, str]) -> dict[str, Any]:
        parent = self.things.get(form.get("thing_id", ""))
        text = form.get("text", "")
        if parent is None:
            return _errors("NO_THING_ID", "couldn't find that thing", "parent")
        if parent.state != "live":
            return _errors("DELETED_COMMENT", "that comment has been deleted", "parent")
        root = parent if parent.kind == "t3" else self.things.get(parent.link_id or "")
        if parent.locked or (root is not None and root.locked):
            return _errors("THREAD_LOCKED", "Comments are locked.", "parent")
        if not text.strip():
            return _errors("NO_TEXT", "we need something here", "text")
        if len(text) > COMMENT_MAX:
            return _errors("TOO_LONG", f"this is too long (max: {COMMENT_MAX})", "text")
        thing = self._comment(me, parent, text)
        return {"json": {"errors": [], "data": {"things": [self._thing(self._data(thing))]}}}

    def _own(self, me: _Account, fullname: str) -> _Thing:
        thing = self.things.get(fullname)
        if thing is None or thing.author is not me:
            raise _Answer(403, {"message": "Forbidden", "error": 403})
        return thing

    def _build_app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        async def token(request: Request) -> Response:
            form = dict(urllib.parse.parse_qsl((await request.body()).decode()))
            with self._lock:
                status, body = self._token(request.headers.get("authorization"), form)
                self.requests.append(RedditRequest("POST", request.url.path, status))
            return JSONResponse(body, status_code=status)

        async def api(request: Request) -> Response:
            path = request.url.path
            parts = [p for p in path.split("/") if p]
            if parts and parts[-1].endswith(".json"):
                parts[-1] = parts[-1].removesuffix(".json")
            query = dict(request.query_params)
            form = dict(urllib.parse.parse_qsl((await request.body()).decode()))
            fault = Fault.none
            headers: dict[str, str] = {}
            with self._lock:
                try:
                    me = self._me(request.headers.get("authorization"))
                    headers = self._spend()
                    if self.faults.take_armed(Fault.rate_limited):  # counted too, like a drawn one
                        fault = Fault.rate_limited
                        self.faults.counts[fault.value] += 1
                    else:
                        fault = self.faults.roll()
                    if fault is Fault.rate_limited or int(headers["x-ratelimit-used"]) > self.rate_limit:
                        headers.update({"x-ratelimit-remaining": "0.0", "x-ratelimit-reset": "1"})
                        raise _Answer(429, {"message": "Too Many Requests", "error": 429}, headers)
                    if fault is Fault.server_error:
                        raise _Answer(500, {"message": "Internal Server Error", "error": 500}, headers)
                    if request.method == "POST" and self.faults.take_armed(Fault.lost_response):
                        fault = Fault.lost_response
                    status, body = 200, self._route(request.method, parts, query, form, me)
                except _Answer as answer:
                    status, body, headers = answer.status, answer.body, {**headers, **answer.headers}
                shown = 502 if fault is Fault.lost_response else status
                self.requests.append(
                    RedditRequest(request.method, path, shown, None if fault is Fault.none else fault.value)
                )
            if fault is Fault.timeout:
                await asyncio.sleep(self.faults.timeout_seconds)
            if fault is Fault.lost_response:
                return Response("<html>502 Bad Gateway</html>", status_code=502, media_type="text/html")
            return Response(json.dumps(body), status_code=status, headers=headers, media_type="application/json")

        return Starlette(
            routes=[
                Route("/api/v1/access_token", token, methods=["POST"]),
                Route("/{path:path}", api, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            ]
        )


def _listing(children: list[dict[str, Any]], after: str | None, before: str | None) -> dict[str, Any]:
    return {
        "kind": "Listing",
        "data": {"after": after, "before": before, "dist": len(children), "children": children, "modhash": ""},
    }


def _errors(code: str, message: str, fieldname: str) -> dict[str, Any]:
    """Reddit's ``api_type=json`` error shape: ``[[CODE, message, field], ...]``."""
    return {"json": {"errors": [[code, message, fieldname]]}}
