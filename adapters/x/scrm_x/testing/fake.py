"""A stateful fake of the X API v2 (the endpoints scrm-x uses), for adapter tests.

It speaks the wire format ``tweepy.Client`` expects and keeps posts and users in memory:

* ``GET /2/users/me``, ``GET /2/users/:id``, ``GET /2/users/:id/mentions``,
  ``GET /2/users/:id/tweets``, ``GET /2/tweets/search/recent`` (the query subset of
  :mod:`.query`), ``GET /2/tweets?ids=`` (at most 100), ``GET /2/tweets/:id``,
  ``POST /2/tweets`` (with ``reply.in_reply_to_tweet_id``) and ``DELETE /2/tweets/:id``;
* X's response shapes: ``data``, ``includes.users`` / ``includes.tweets`` (expansions
  ``author_id``, ``referenced_tweets.id``), ``meta.{result_count,newest_id,oldest_id,next_token}``,
  partial errors in ``errors[]`` (``Not Found Error``, ``resource-not-found``), problem
  bodies ``{title, detail, type, status}`` for refused requests;
* only the fields asked for: ``id``, ``text`` and ``edit_history_tweet_ids`` by default,
  the rest through ``tweet.fields`` / ``user.fields`` (docs.x.com/x-api/fundamentals/fields);
* listings newest first, ``since_id``, ``max_results`` bounds (search 10-100, timelines
  5-100) and ``next_token`` / ``pagination_token`` paging
  (docs.x.com/x-api/posts/search/integrate/paginate);
* edits: a new post id per edit, ``edit_history_tweet_ids`` oldest first on every version;
  listings return only the latest version, a lookup by id the version asked for; deleting
  any version deletes the chain (docs.x.com/x-api/fundamentals/edit-posts);
* the reply restriction of self-serve access (``self_serve=True``, the default): a reply
  through ``POST /2/tweets`` is refused with 403 unless the post replied to mentions the
  posting account (a reply to the account counts: X puts the ``@handle`` in it) or quotes
  one of its posts (X developer announcement of 2026-02-23, reported at
  https://www.tekedia.com/x-restricts-programmatic-bot-replies-to-boost-genuine-users-interaction);
* OAuth 2.0 app-only bearer (reads), OAuth 2.0 user-context bearer and OAuth 1.0a user
  keys (the header's consumer key and token are checked, not its signature); user-only
  endpoints refuse app-only tokens with 403 ``Unsupported Authentication``;
* ``x-rate-limit-limit/remaining/reset`` on every answer and 429 when a window is spent
  (docs.x.com/fundamentals/rate-limits), plus faults from a
  :class:`~scrm_core.testing.fakes.FaultInjector`.

Error bodies' wording is from memory of real X answers, not from a documentation page.
The recent-search 7-day window is not enforced, so scenarios with old dates stay visible.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scrm_core.testing.fakes import Fault, FaultInjector

from .query import Query, QueryError

__all__ = ["FakeX", "XRequest"]

_PROBLEMS = "https://api.twitter.com/2/problems/"
_DEFAULT_TWEET_FIELDS = ("id", "text", "edit_history_tweet_ids")
_DEFAULT_USER_FIELDS = ("id", "name", "username")
#: Requests before each endpoint's 15-minute window is spent (one window per endpoint).
_WINDOW_SECONDS = 900


@dataclass(frozen=True)
class XRequest:
    """One request the fake answered."""

    method: str
    path: str
    status: int
    fault: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)


class _Refused(Exception):
    def __init__(self, status: int, title: str, detail: str, type_: str = "about:blank", **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.body: dict[str, Any] = {"title": title, "detail": detail, "type": type_, "status": status, **extra}


def _invalid(parameter: str, value: Any, message: str) -> _Refused:
    return _Refused(
        400,
        "Invalid Request",
        "One or more parameters to your request was invalid.",
        _PROBLEMS + "invalid-request",
        errors=[{"parameters": {parameter: [str(value)]}, "message": message}],
    )


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


class FakeX:
    """X API v2 in memory. ``app`` is the ASGI app to serve with FakeServer.

    :param owner_id, owner_username: the account the user-context credentials belong to.
    :param self_serve: enforce the self-serve reply restriction (False: enterprise access).
    :param rate_limit: requests per endpoint per 15-minute window.
    """

    APP_TOKEN = "fake-x-app-bearer"  # noqa: S105 - test values, not credentials
    USER_TOKEN = "fake-x-user-bearer"  # noqa: S105
    CONSUMER_KEY = "fake-x-consumer-key"
    CONSUMER_SECRET = "fake-x-consumer-secret"  # noqa: S105
    ACCESS_TOKEN = "fake-x-access-token"  # noqa: S105
    ACCESS_TOKEN_SECRET = "fake-x-access-token-secret"  # noqa: S105

    def __init__(
        self,
        *,
        owner_id: str = "1004",
        owner_username: str = "brand",
        self_serve: bool = True,
        rate_limit: int = 900,
        faults: FaultInjector | None = None,
    ) -> None:
        self.owner_id = owner_id
        self.self_serve = self_serve
        self.rate_limit = rate_limit
        self.faults = faults or FaultInjector()
        self.requests: list[XRequest] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.tweets: dict[str, dict[str, Any]] = {}  # every version, by its own id
        self._lock = threading.Lock()
        self._ids = itertools.count(2000)
        self._windows: dict[str, tuple[int, int]] = {}  # endpoint -> (used, reset epoch)
        self.rate_limited = 0  # 429s answered so far
        self.add_user(owner_id, owner_username, owner_username.title())
        self.app = self._build_app()

    # ------------------------------------------------------------ state for tests

    def add_user(self, user_id: str, username: str, name: str | None = None) -> dict[str, Any]:
        with self._lock:
            user = self.users.setdefault(user_id, {"id": user_id, "created_at": "2020-01-01T00:00:00.000Z"})
            user.update(
                username=username,
                name=name or username,
                description=user.get("description", ""),
                url=user.get("url", ""),
                verified=user.get("verified", False),
                public_metrics=user.get(
                    "public_metrics", {"followers_count": 0, "following_count": 0, "tweet_count": 0, "listed_count": 0}
                ),
            )
            return user

    def post(
        self,
        author_id: str,
        text: str,
        *,
        reply_to: str | None = None,
        quote: str | None = None,
        tweet_id: str | None = None,
        at: datetime | None = None,
        lang: str | None = "en",
    ) -> dict[str, Any]:
        """Create a post as ``author_id`` (a test's way to make people talk)."""
        with self._lock:
            return self._post(author_id, text, reply_to=reply_to, quote=quote, tweet_id=tweet_id, at=at, lang=lang)

    def edit(self, tweet_id: str, text: str, *, at: datetime | None = None) -> dict[str, Any]:
        """Edit a post (any version of it): a new version with a new id joins the chain."""
        with self._lock:
            return self._edit(tweet_id, text, at)

    def delete(self, tweet_id: str) -> None:
        """Delete a post and every version in its edit chain."""
        with self._lock:
            self._delete(tweet_id)

    def latest(self, tweet_id: str) -> dict[str, Any]:
        """The latest version of the chain ``tweet_id`` belongs to."""
        with self._lock:
            return self.tweets[self.tweets[tweet_id]["edit_history_tweet_ids"][-1]]

    def writes(self) -> int:
        """How many POST /2/tweets requests reached the fake."""
        return sum(1 for r in self.requests if r.method == "POST" and r.path == "/2/tweets")

    def rate_limit_next(self) -> Callable[[], int]:
        """Answer the next request with 429; returns a function counting 429s since."""
        with self._lock:
            before = self.rate_limited
        self.faults.arm(Fault.rate_limited)
        return lambda: self.rate_limited - before

    def lose_next_response(self) -> None:
        """Apply the next write (POST/DELETE), then answer 502 as a proxy that lost the answer."""
        self.faults.arm(Fault.lost_response)

    def load(self, events: Iterable[Any]) -> None:
        """Seed from scrm events (``scrm_core.models``), keeping their numeric ids.

        Direct messages are skipped: X serves them through the separate DM API
        (``/2/dm_events``), not as posts. Profile updates rename the user. Edits get new
        ids above every id in ``events`` (X ids grow with time; the scenario's own ids leave
        no room between them).
        """
        events = list(events)
        ids = [int(e.message.id) for e in events if e.kind == "message.created" and e.message.id.isdigit()]
        with self._lock:
            self._ids = itertools.count(max([*ids, next(self._ids) - 1]) + 1)
        for event in events:
            if event.kind == "profile.updated":
                p = event.profile
                self.add_user(p.account_id, p.handle or p.account_id, p.display_name)
            elif event.kind == "message.created":
                m = event.message
                if m.visibility != "public":
                    continue  # a direct message: the DM API, not a post
                self.add_user(m.author.account_id, m.author.handle or m.author.account_id, m.author.display_name)
                text = m.text
                for handle in m.mentions:
                    if f"@{handle}".lower() not in text.lower():
                        text = f"@{handle} {text}"
                for tag in m.hashtags:
                    if f"#{tag}".lower() not in text.lower():
                        text = f"{text} #{tag}"
                self.post(
                    m.author.account_id, text, reply_to=m.parent_id, tweet_id=m.id, at=m.created_at, lang=m.language
                )
            elif event.kind == "message.edited":
                m = event.message
                if m.visibility == "public" and m.id in self.tweets:
                    self.edit(m.id, m.text, at=m.edited_at)
            elif event.kind == "message.deleted" and event.message_id in self.tweets:
                self.delete(event.message_id)

    # ------------------------------------------------------------ model

    def _new_id(self) -> str:
        while True:
            candidate = str(next(self._ids))
            if candidate not in self.tweets:
                return candidate

    def _entities(self, text: str) -> dict[str, Any]:
        import re

        by_name = {u["username"].lower(): u for u in self.users.values()}
        mentions = []
        for match in re.finditer(r"(?<!\w)@(\w{1,15})", text):
            user = by_name.get(match.group(1).lower())
            if user is not None:
                mentions.append(
                    {"start": match.start(), "end": match.end(), "username": user["username"], "id": user["id"]}
                )
        hashtags = [
            {"start": m.start(), "end": m.end(), "tag": m.group(1)} for m in re.finditer(r"(?<!\w)#(\w+)", text)
        ]
        entities: dict[str, Any] = {}
        if mentions:
            entities["mentions"] = mentions
        if hashtags:
            entities["hashtags"] = hashtags
        return entities

    def _post(
        self,
        author_id: str,
        text: str,
        *,
        reply_to: str | None = None,
        quote: str | None = None,
        tweet_id: str | None = None,
        at: datetime | None = None,
        lang: str | None = "en",
    ) -> dict[str, Any]:
        tid = tweet_id or self._new_id()
        tweet: dict[str, Any] = {
            "id": tid,
            "text": text,
            "edit_history_tweet_ids": [tid],
            "author_id": author_id,
            "created_at": _iso(at or datetime.now(UTC)),
            "conversation_id": tid,
        }
        if lang:
            tweet["lang"] = lang
        refs = []
        if reply_to is not None:
            parent = self.tweets[reply_to]
            tweet["conversation_id"] = parent["conversation_id"]
            tweet["in_reply_to_user_id"] = parent["author_id"]
            refs.append({"type": "replied_to", "id": reply_to})
        if quote is not None:
            refs.append({"type": "quoted", "id": quote})
        if refs:
            tweet["referenced_tweets"] = refs
        entities = self._entities(text)
        if entities:
            tweet["entities"] = entities
        self.tweets[tid] = tweet
        self.users[author_id]["public_metrics"]["tweet_count"] += 1
        return tweet

    def _edit(self, tweet_id: str, text: str, at: datetime | None) -> dict[str, Any]:
        chain = list(self.tweets[tweet_id]["edit_history_tweet_ids"])
        new = {
            **self.tweets[chain[-1]],
            "id": self._new_id(),
            "text": text,
            "created_at": _iso(at or datetime.now(UTC)),
        }
        entities = self._entities(text)
        new.pop("entities", None)
        if entities:
            new["entities"] = entities
        chain.append(new["id"])
        self.tweets[new["id"]] = new
        for version in chain:
            self.tweets[version]["edit_history_tweet_ids"] = chain
        return new

    def _delete(self, tweet_id: str) -> None:
        for version in self.tweets[tweet_id]["edit_history_tweet_ids"]:
            self.tweets.pop(version, None)

    def _is_latest(self, tweet: Mapping[str, Any]) -> bool:
        return bool(tweet["edit_history_tweet_ids"][-1] == tweet["id"])

    def _engaged(self, target: Mapping[str, Any], account_id: str) -> bool:
        """Whether ``target`` mentions, replies to or quotes ``account_id`` (the self-serve reply rule)."""
        if any(m["id"] == account_id for m in target.get("entities", {}).get("mentions", [])):
            return True
        if target.get("in_reply_to_user_id") == account_id:
            return True
        for ref in target.get("referenced_tweets", []):
            quoted = self.tweets.get(ref["id"])
            if ref["type"] == "quoted" and quoted is not None and quoted["author_id"] == account_id:
                return True
        return False

    # ------------------------------------------------------------ rendering

    @staticmethod
    def _fields(params: Mapping[str, str], name: str, default: tuple[str, ...]) -> set[str]:
        asked = {f for f in params.get(name, "").split(",") if f}
        return set(default) | asked

    def _render(
        self, tweets: list[dict[str, Any]], params: Mapping[str, str], *, single: bool = False
    ) -> dict[str, Any]:
        tweet_fields = self._fields(params, "tweet.fields", _DEFAULT_TWEET_FIELDS)
        user_fields = self._fields(params, "user.fields", _DEFAULT_USER_FIELDS)
        expansions = {e for e in params.get("expansions", "").split(",") if e}
        body: dict[str, Any] = {}
        if tweets:
            shown = [{k: v for k, v in t.items() if k in tweet_fields} for t in tweets]
            body["data"] = shown[0] if single else shown
        includes: dict[str, list[dict[str, Any]]] = {}
        if "referenced_tweets.id" in expansions:
            seen: dict[str, dict[str, Any]] = {}
            for t in tweets:
                for ref in t.get("referenced_tweets", []):
                    if ref["id"] in self.tweets:
                        seen[ref["id"]] = {k: v for k, v in self.tweets[ref["id"]].items() if k in tweet_fields}
            if seen:
                includes["tweets"] = list(seen.values())
        if "author_id" in expansions:
            authors = {t["author_id"] for t in tweets} | {
                t["author_id"] for t in includes.get("tweets", []) if "author_id" in t
            }
            users = [self._user(uid, user_fields) for uid in sorted(authors) if uid in self.users]
            if users:
                includes["users"] = users
        if includes:
            body["includes"] = includes
        return body

    def _user(self, user_id: str, fields: set[str]) -> dict[str, Any]:
        return {k: v for k, v in self.users[user_id].items() if k in fields}

    def _listing(self, tweets: list[dict[str, Any]], params: Mapping[str, str], low: int) -> dict[str, Any]:
        """Newest first, after ``since_id``, one page of ``max_results``, with ``meta``."""
        raw_max = params.get("max_results", "10")
        if not raw_max.isdigit() or not low <= int(raw_max) <= 100:
            raise _invalid(
                "max_results",
                raw_max,
                f"The `max_results` query parameter value [{raw_max}] is not between {low} and 100",
            )
        since = params.get("since_id")
        if since is not None and not since.isdigit():
            raise _invalid("since_id", since, f"The `since_id` query parameter value [{since}] is not valid")
        token = params.get("next_token") or params.get("pagination_token")
        below: int | None = None
        if token is not None:
            if not (token.startswith("p") and token[1:].isdigit()):
                raise _invalid(
                    "pagination_token", token, f"The `pagination_token` query parameter value [{token}] is not valid"
                )
            below = int(token[1:])
        rows = sorted(tweets, key=lambda t: int(t["id"]), reverse=True)
        rows = [
            t for t in rows if (since is None or int(t["id"]) > int(since)) and (below is None or int(t["id"]) < below)
        ]
        page, rest = rows[: int(raw_max)], rows[int(raw_max) :]
        body = self._render(page, params)
        meta: dict[str, Any] = {"result_count": len(page)}
        if page:
            meta["newest_id"], meta["oldest_id"] = page[0]["id"], page[-1]["id"]
        if rest:
            meta["next_token"] = f"p{page[-1]['id']}"
        body["meta"] = meta
        return body

    # ------------------------------------------------------------ endpoints

    def _visible(self) -> list[dict[str, Any]]:
        return [t for t in self.tweets.values() if self._is_latest(t)]

    def _search(self, params: Mapping[str, str]) -> dict[str, Any]:
        try:
            query = Query(params.get("query", ""))
        except QueryError as exc:
            raise _invalid("query", params.get("query", ""), f"Invalid query: {exc}") from None
        return self._listing([t for t in self._visible() if query.matches(t, self.users)], params, 10)

    def _mentions(self, user_id: str, params: Mapping[str, str]) -> dict[str, Any]:
        self._known_user(user_id)
        found = [
            t
            for t in self._visible()
            if any(m["id"] == user_id for m in t.get("entities", {}).get("mentions", []))
            or (t.get("in_reply_to_user_id") == user_id and t["author_id"] != user_id)
        ]
        return self._listing(found, params, 5)

    def _timeline(self, user_id: str, params: Mapping[str, str]) -> dict[str, Any]:
        self._known_user(user_id)
        return self._listing([t for t in self._visible() if t["author_id"] == user_id], params, 5)

    def _lookup(self, params: Mapping[str, str]) -> dict[str, Any]:
        ids = [i for i in params.get("ids", "").split(",") if i]
        if not 1 <= len(ids) <= 100:
            raise _invalid(
                "ids",
                params.get("ids", ""),
                "The number of values in the `ids` query parameter list must be between 1 and 100",
            )
        found = [self.tweets[i] for i in ids if i in self.tweets]
        body = self._render(found, params)
        missing = [i for i in ids if i not in self.tweets]
        if missing:
            body["errors"] = [_not_found(i) for i in missing]
        return body

    def _one(self, tweet_id: str, params: Mapping[str, str]) -> dict[str, Any]:
        if tweet_id not in self.tweets:
            return {"errors": [_not_found(tweet_id, parameter="id")]}
        return self._render([self.tweets[tweet_id]], params, single=True)

    def _known_user(self, user_id: str) -> dict[str, Any]:
        if user_id not in self.users:
            raise _Refused(
                404 if not user_id.isdigit() else 400,
                "Not Found Error",
                f"Could not find user with id: [{user_id}].",
                _PROBLEMS + "resource-not-found",
            )
        return self.users[user_id]

    def _create(self, body: Mapping[str, Any], caller: str) -> dict[str, Any]:
        text = body.get("text")
        if not isinstance(text, str) or not text:
            raise _invalid("text", text, "The `text` field is required and must be a non-empty string")
        reply = body.get("reply") or {}
        parent_id = reply.get("in_reply_to_tweet_id")
        if parent_id is not None:
            target = self.tweets.get(str(parent_id))
            if target is None:
                raise _Refused(
                    403, "Forbidden", "You attempted to reply to a Tweet that is deleted or not visible to you."
                )
            if self.self_serve and not self._engaged(target, caller) and target["author_id"] != caller:
                raise _Refused(
                    403,
                    "Forbidden",
                    "Reply to this conversation is not allowed because you have not been mentioned or otherwise "
                    "engaged by the author of the post you are replying to.",
                )
        quote = body.get("quote_tweet_id")
        tweet = self._post(caller, text, reply_to=parent_id and str(parent_id), quote=quote and str(quote))
        return {"data": {"id": tweet["id"], "text": tweet["text"], "edit_history_tweet_ids": [tweet["id"]]}}

    # ------------------------------------------------------------ auth and limits

    def _caller(self, authorization: str) -> tuple[str, bool]:
        """(user id or "app", whether user context) of the request's credentials."""
        if authorization.startswith("Bearer "):
            token = authorization[7:].strip()
            if token == self.APP_TOKEN:
                return "app", False
            if token == self.USER_TOKEN:
                return self.owner_id, True
        elif authorization.startswith("OAuth "):
            params = dict(
                (k.strip(), v.strip().strip('"'))
                for k, _, v in (p.partition("=") for p in authorization[6:].split(","))
            )
            if params.get("oauth_consumer_key") == self.CONSUMER_KEY and params.get("oauth_token") == self.ACCESS_TOKEN:
                return self.owner_id, True
        raise _Refused(401, "Unauthorized", "Unauthorized")

    @staticmethod
    def _user_only(user_context: bool) -> None:
        if not user_context:
            raise _Refused(
                403,
                "Unsupported Authentication",
                "Authenticating with OAuth 2.0 Application-Only is forbidden for this endpoint.  Supported "
                "authentication types are [OAuth 1.0a User Context, OAuth 2.0 User Context].",
                _PROBLEMS + "unsupported-authentication",
            )

    def _spend(self, endpoint: str, *, force: bool) -> tuple[dict[str, str], bool]:
        """Rate-limit headers after counting this request, and whether it is refused."""
        now = int(time.time())
        used, reset = self._windows.get(endpoint, (0, now + _WINDOW_SECONDS))
        if reset <= now:
            used, reset = 0, now + _WINDOW_SECONDS
        refused = force or used >= self.rate_limit
        if force:
            reset = now + 1  # an injected refusal: the client may try again in a second
        if not refused:
            used += 1
        self._windows[endpoint] = (used, reset)
        remaining = 0 if refused else self.rate_limit - used
        headers = {
            "x-rate-limit-limit": str(self.rate_limit),
            "x-rate-limit-remaining": str(remaining),
            "x-rate-limit-reset": str(reset),
        }
        return headers, refused

    def _route(
        self, method: str, path: str, params: Mapping[str, str], body: Any, caller: str, user: bool
    ) -> tuple[str, Callable[[], Any]]:
        parts = path.strip("/").split("/")
        match parts:
            case ["2", "users", "me"] if method == "GET":
                self._user_only(user)
                return "users/me", lambda: {
                    "data": self._user(caller, self._fields(params, "user.fields", _DEFAULT_USER_FIELDS))
                }
            case ["2", "users", uid] if method == "GET":
                fields = self._fields(params, "user.fields", _DEFAULT_USER_FIELDS)
                return "users/:id", lambda: {"data": self._user(self._known_user(uid)["id"], fields)}
            case ["2", "users", uid, "mentions"] if method == "GET":
                return "users/:id/mentions", lambda: self._mentions(uid, params)
            case ["2", "users", uid, "tweets"] if method == "GET":
                return "users/:id/tweets", lambda: self._timeline(uid, params)
            case ["2", "tweets", "search", "recent"] if method == "GET":
                return "tweets/search/recent", lambda: self._search(params)
            case ["2", "tweets"] if method == "GET":
                return "tweets", lambda: self._lookup(params)
            case ["2", "tweets"] if method == "POST":
                self._user_only(user)
                return "POST tweets", lambda: self._create(body, caller)
            case ["2", "tweets", tid] if method == "GET":
                return "tweets/:id", lambda: self._one(tid, params)
            case ["2", "tweets", tid] if method == "DELETE":
                self._user_only(user)
                return "DELETE tweets/:id", lambda: self._delete_own(tid, caller)
        raise _Refused(404, "Not Found", f"No route {method} {path} in the fake")

    def _delete_own(self, tweet_id: str, caller: str) -> dict[str, Any]:
        tweet = self.tweets.get(tweet_id)
        if tweet is not None and tweet["author_id"] != caller:
            raise _Refused(403, "Forbidden", "You are not allowed to delete this Tweet.")
        if tweet is not None:
            self._delete(tweet_id)
        return {"data": {"deleted": tweet is not None}}

    def _build_app(self) -> Any:
        import json

        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        async def api(request: Request) -> Response:
            raw = await request.body()
            path, method = request.url.path, request.method
            params = dict(request.query_params)
            headers: dict[str, str] = {}
            fault = Fault.none
            lose = False
            with self._lock:
                try:
                    body = json.loads(raw) if raw else {}
                    caller, user = self._caller(request.headers.get("authorization", ""))
                    endpoint, handler = self._route(method, path, params, body, caller, user)
                    forced = self.faults.take_armed(Fault.rate_limited)
                    if not forced:
                        fault = self.faults.roll()
                    headers, refused = self._spend(endpoint, force=forced or fault is Fault.rate_limited)
                    if refused:
                        self.rate_limited += 1
                        raise _Refused(429, "Too Many Requests", "Too Many Requests")
                    if fault is Fault.server_error:
                        raise _Refused(503, "Service Unavailable", "Service Unavailable")
                    if method in ("POST", "DELETE") and self.faults.take_armed(Fault.lost_response):
                        lose = True
                    status, answer = (201 if method == "POST" else 200), handler()
                except _Refused as refused_:
                    status, answer = refused_.status, refused_.body
                except ValueError:
                    status, answer = (
                        400,
                        {"title": "Invalid Request", "detail": "Invalid JSON", "type": "about:blank", "status": 400},
                    )
                lost = lose or fault is Fault.lost_response
                self.requests.append(
                    XRequest(
                        method, path, 502 if lost else status, None if fault is Fault.none else fault.value, params
                    )
                )
            if fault is Fault.timeout:
                await asyncio.sleep(self.faults.timeout_seconds)
            if lost:
                return Response("<html>502 Bad Gateway</html>", status_code=502, media_type="text/html")
            return JSONResponse(answer, status_code=status, headers=headers)

        return Starlette(routes=[Route("/{path:path}", api, methods=["GET", "POST", "DELETE"])])


def _not_found(tweet_id: str, parameter: str = "ids") -> dict[str, Any]:
    return {
        "value": tweet_id,
        "detail": f"Could not find tweet with {parameter}: [{tweet_id}].",
        "title": "Not Found Error",
        "resource_type": "tweet",
        "parameter": parameter,
        "resource_id": tweet_id,
        "type": _PROBLEMS + "resource-not-found",
    }
