"""A stateful fake of a Discourse forum's JSON API and its webhooks, for adapter tests.

It keeps users, topics and posts in memory, in the JSON shapes Discourse's serializers
produce, and answers the endpoints a network adapter uses:

* ``GET /posts.json?before=<id>``: the latest public posts, newest first (``order(id:
  :desc)``), ``before`` exclusive, 50 a page, regular posts of public topics only and
  never deleted ones, under the root key ``latest_posts`` (``LatestPostsQuery`` and
  ``PostsController#latest``; route ``get "posts" => "posts#latest", id: "latest_posts"``);
* ``GET /posts/{id}.json`` (404 for a deleted post unless the API user is staff, who
  sees it with ``deleted_at``), ``GET /posts/by_number/{topic_id}/{n}.json``;
* ``GET /t/{id}.json`` (topic with ``post_stream.posts``, the first 20, and
  ``post_stream.stream``, every post id) and ``GET /t/{id}/posts.json?post_ids[]=..``;
* ``POST /posts.json`` (``topic_id``, ``raw``, ``reply_to_post_number``): 422
  ``{"action": "create_post", "errors": [...]}`` for a body under ``min_post_length``
  or one the same user just posted ("too similar"), and the 120-second memo Discourse
  keeps of identical API create requests (``DistributedMemoizer.memoize(
  signature_for(manager_params), 120)`` in ``PostsController#create``);
* ``GET /u/{username}.json`` and ``GET /admin/users/{id}.json`` (staff only);
* ``Api-Key`` / ``Api-Username`` header auth: a wrong key or unknown user is a 403
  ``{"errors": [...], "error_type": "invalid_access"}``;
* rate limiting as ``ApplicationController#render_rate_limit_error`` answers it: 429,
  ``Retry-After: <seconds>``, ``{"errors": [...], "error_type": "rate_limit",
  "extras": {"wait_seconds": N}}``, drawn from a :class:`FaultInjector` or armed once
  with :meth:`FakeDiscourse.rate_limit_next`;
* webhooks: every change is recorded as the delivery Discourse's ``EmitWebHookEvent``
  job would POST (``{"post": {...WebHookPostSerializer...}}`` with ``X-Discourse-Event``,
  ``X-Discourse-Event-Type``, ``X-Discourse-Event-Id``, ``X-Discourse-Instance`` and
  ``X-Discourse-Event-Signature: sha256=<hex HMAC-SHA256 of the raw body>``).

Sources: discourse/discourse ``app/controllers/posts_controller.rb``,
``app/queries/latest_posts_query.rb``, ``app/jobs/regular/emit_web_hook_event.rb``,
``app/serializers/post_serializer.rb``, ``app/serializers/web_hook_post_serializer.rb``,
``config/initializers/012-web_hook_events.rb``, ``app/controllers/application_controller.rb``;
https://docs.discourse.org (auth headers). The 403 and 404 message texts are from memory
and third-party fixtures that quote them.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scrm_core.models import (
    Event,
    MessageCreated,
    MessageDeleted,
    MessageEdited,
    ProfileUpdated,
    SocialProfile,
    Visibility,
)
from scrm_core.testing.fakes import Fault, FaultInjector
from scrm_core.webhooks import hmac_sha256_hex

__all__ = ["FakeDiscourse", "WebhookDelivery"]

LATEST_PAGE_SIZE = 50
TOPIC_CHUNK = 20
NOT_PERMITTED = "You are not permitted to view the requested resource. The API username or key is invalid."
NOT_FOUND = "The requested URL or resource could not be found."
RATE_LIMITED = "You\u2019ve performed this action too many times. Please wait {n} seconds before trying again."
MEMO_SECONDS = 120.0


def _stamp(at: datetime) -> str:
    """Discourse's timestamp format: ISO 8601, milliseconds, ``Z``."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _now() -> datetime:
    return datetime.now(UTC)


def _cook(raw: str) -> str:
    """A tiny stand-in for Discourse's markdown cooker: paragraphs, escaped."""
    escaped = raw.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "".join(f"<p>{para}</p>" for para in escaped.split("\n\n"))


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60] or "topic"


@dataclass
class _User:
    id: int
    username: str
    name: str | None
    staff: bool = False

    @property
    def avatar_template(self) -> str:
        return f"/user_avatar/forum.example/{self.username.lower()}/{{size}}/1_2.png"


@dataclass
class _Topic:
    id: int
    title: str
    user_id: int
    created_at: datetime
    category_id: int | None
    archetype: str = "regular"
    tags: list[str] = field(default_factory=list)
    allowed_user_ids: set[int] = field(default_factory=set)
    post_ids: list[int] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return _slug(self.title)


@dataclass
class _Post:
    id: int
    topic_id: int
    post_number: int
    user_id: int
    raw: str
    created_at: datetime
    updated_at: datetime
    reply_to_post_number: int | None = None
    version: int = 1
    deleted_at: datetime | None = None
    user_deleted: bool = False
    post_type: int = 1  # Post.types[:regular]


@dataclass(frozen=True)
class WebhookDelivery:
    """One POST Discourse would make to a webhook endpoint: headers and the raw body."""

    event: str
    event_type: str
    headers: dict[str, str]
    body: bytes


class _Answer(Exception):
    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, dict(headers or {})


def _error(status: int, error_type: str, message: str, **extra: Any) -> _Answer:
    return _Answer(status, {"errors": [message], "error_type": error_type, **extra})


class FakeDiscourse:
    """A Discourse forum in memory. ``app`` is the ASGI app to serve with FakeServer.

    :param api_key: the one (global) API key; any existing user may be named in ``Api-Username``.
    :param webhook_secret: the secret deliveries are signed with (None: unsigned, as Discourse).
    :param staff: usernames that are staff (they see deleted posts, may call admin endpoints).
    :param category_id: category of topics created by :meth:`load`.
    :param min_post_length: Discourse's ``min_post_length`` site setting (default 20).
    :param rate_limit_wait: seconds a rate-limit answer asks the client to wait.
    """

    API_KEY = "fake-discourse-api-key"
    WEBHOOK_SECRET = "fake-discourse-webhook-secret"  # noqa: S105
    INSTANCE = "https://forum.example"

    def __init__(
        self,
        *,
        api_key: str = API_KEY,
        webhook_secret: str | None = WEBHOOK_SECRET,
        staff: Iterable[str] = (),
        category_id: int = 5,
        min_post_length: int = 20,
        rate_limit_wait: int = 1,
        latest_page_size: int = LATEST_PAGE_SIZE,
        faults: FaultInjector | None = None,
    ) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.staff = {s.lower() for s in staff}
        self.category_id = category_id
        self.min_post_length = min_post_length
        self.rate_limit_wait = rate_limit_wait
        self.latest_page_size = latest_page_size
        self.faults = faults or FaultInjector()
        self.users: dict[int, _User] = {}
        self.topics: dict[int, _Topic] = {}
        self.posts: dict[int, _Post] = {}
        self.deliveries: list[WebhookDelivery] = []
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self._lock = threading.Lock()
        self._topic_ids = itertools.count(1)
        self._event_ids = itertools.count(1)
        self._memo: dict[str, tuple[float, dict[str, Any]]] = {}
        self.app = self._build_app()

    # ------------------------------------------------------------ seeding and inspection

    def add_user(self, user_id: int, username: str, name: str | None = None, *, staff: bool = False) -> None:
        with self._lock:
            self._user(user_id, username, name, staff=staff)

    def _user(self, user_id: int, username: str, name: str | None, *, staff: bool = False) -> _User:
        user = self.users.get(user_id)
        if user is None:
            user = self.users[user_id] = _User(user_id, username, name, staff)
        else:
            user.username, user.name = username, name if name is not None else user.name
        user.staff = user.staff or staff or username.lower() in self.staff
        return user

    def load(self, events: Iterable[Event]) -> None:
        """Seed the forum from scrm events (message ids must be numeric: they become post ids).

        A root message opens a topic (post 1), a reply is the next post of its root's topic
        with ``reply_to_post_number`` set to the parent's number (None when it answers the
        first post, as Discourse's "Reply" button on a topic leaves it). A ``direct``
        message opens a ``private_message`` topic between its author and the staff users:
        ``/posts.json`` never lists it, webhooks do deliver it. A ``profile.updated`` event
        renames the user (same id). Every change is also recorded as a webhook delivery.
        """
        with self._lock:
            for event in events:
                if isinstance(event, ProfileUpdated):
                    self._profile(event.profile)
                elif isinstance(event, MessageCreated):
                    m = event.message
                    author = self._profile(m.author)
                    post_id = int(m.id)
                    if m.parent_id is None:
                        topic = self._new_topic(author, m.text, m.created_at, private=m.visibility is Visibility.direct)
                        topic.tags = list(m.hashtags)
                        reply_to = None
                    else:
                        parent = self.posts[int(m.parent_id)]
                        topic = self.topics[parent.topic_id]
                        reply_to = None if parent.post_number == 1 else parent.post_number
                    self._insert(topic, author, post_id, m.text, m.created_at, reply_to)
                elif isinstance(event, MessageEdited):
                    m = event.message
                    edited_at = m.edited_at or _now()
                    post = self.posts[int(m.id)]
                    post.raw, post.updated_at, post.version = m.text, edited_at, post.version + 1
                    self._deliver("post_edited", post)
                elif isinstance(event, MessageDeleted):
                    post = self.posts[int(event.message_id)]
                    post.deleted_at = post.updated_at = event.deleted_at or _now()
                    self._deliver("post_destroyed", post)

    def _profile(self, profile: SocialProfile) -> _User:
        handle = profile.handle or f"user{profile.account_id}"
        return self._user(int(profile.account_id), handle, profile.display_name)

    def _new_topic(self, author: _User, text: str, at: datetime, *, private: bool = False) -> _Topic:
        topic = _Topic(
            id=next(self._topic_ids),
            title=text[:80],
            user_id=author.id,
            created_at=at,
            category_id=None if private else self.category_id,
            archetype="private_message" if private else "regular",
        )
        if private:
            topic.allowed_user_ids = {author.id} | {u.id for u in self.users.values() if u.staff}
        self.topics[topic.id] = topic
        return topic

    def _insert(
        self, topic: _Topic, author: _User, post_id: int, raw: str, at: datetime, reply_to: int | None
    ) -> _Post:
        number = 1 + max((self.posts[p].post_number for p in topic.post_ids), default=0)
        post = _Post(post_id, topic.id, number, author.id, raw, at, at, reply_to)
        self.posts[post_id] = post
        topic.post_ids.append(post_id)
        self._deliver("post_created", post)
        return post

    # --- direct changes, as a forum user would make them (they are delivered as webhooks too)

    def edit(self, post_id: int, raw: str, at: datetime | None = None) -> None:
        """Revise a post's text: ``version`` + 1, ``updated_at`` moves, ``post_edited`` fires."""
        with self._lock:
            post = self.posts[post_id]
            post.raw, post.updated_at, post.version = raw, at or _now(), post.version + 1
            self._deliver("post_edited", post)

    def touch(self, post_id: int, at: datetime | None = None) -> None:
        """A change that is not a text revision (wiki toggle, owner change): ``post_edited``
        fires and ``updated_at`` moves, but ``raw`` and ``version`` stay."""
        with self._lock:
            post = self.posts[post_id]
            post.updated_at = at or _now()
            self._deliver("post_edited", post)

    def delete(self, post_id: int, *, by_author: bool = False, at: datetime | None = None) -> None:
        """Delete a post. ``by_author``: the author withdrew it (``user_deleted``, raw replaced,
        still listed), else a moderator deleted it (``deleted_at``, no longer listed)."""
        with self._lock:
            post = self.posts[post_id]
            when = at or _now()
            if by_author:
                post.user_deleted = True
                post.raw = "(post withdrawn by author, will be automatically deleted in 24 hours unless flagged)"
            else:
                post.deleted_at = when
            post.updated_at = when
            self._deliver("post_destroyed", post)

    def reply(self, topic_id: int, username: str, raw: str, reply_to_post_number: int | None = None) -> int:
        """Post as a forum user (no auth, no limits); returns the new post id."""
        with self._lock:
            author = next(u for u in self.users.values() if u.username.lower() == username.lower())
            post = self._insert(self.topics[topic_id], author, self._next_post_id(), raw, _now(), reply_to_post_number)
            return post.id

    def topic_of(self, post_id: int) -> int:
        return self.posts[post_id].topic_id

    def posts_by(self, username: str, raw: str | None = None) -> list[dict[str, Any]]:
        """Live posts by ``username`` (optionally with exactly this ``raw``), serialized."""
        with self._lock:
            return [
                self._post_json(p)
                for p in self.posts.values()
                if self.users[p.user_id].username.lower() == username.lower()
                and p.deleted_at is None
                and (raw is None or p.raw == raw)
            ]

    def statuses(self, status: int) -> int:
        return sum(1 for _, _, s in self.requests if s == status)

    # --- faults

    def rate_limit_next(self) -> None:
        """The next API request is refused with Discourse's 429."""
        self.faults.arm(Fault.rate_limited)

    def lose_next_response(self) -> None:
        """The next write (POST) is applied, then answered with a proxy's 502."""
        self.faults.arm(Fault.lost_response)

    # ------------------------------------------------------------ webhooks

    def signed_request(self, event: str, payload: Mapping[str, Any], *, secret: str | None = None) -> WebhookDelivery:
        """What Discourse POSTs for ``event`` with ``payload`` (``{"post": {...}}``, ``{"ping": "OK"}``).

        Headers as ``EmitWebHookEvent#build_webhook_headers`` sets them; the signature is
        ``sha256=`` + hex HMAC-SHA256 of the exact body bytes, with ``secret`` (default: the
        fake's ``webhook_secret``; no signature header when there is no secret).
        """
        event_type = next(iter(payload)) if payload else "ping"
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {
            "Accept": "*/*",
            "Connection": "close",
            "Content-Length": str(len(body)),
            "Content-Type": "application/json",
            "Host": "scrm.example",
            "User-Agent": "Discourse/3.4.0",
            "X-Discourse-Instance": self.INSTANCE,
            "X-Discourse-Event-Id": str(next(self._event_ids)),
            "X-Discourse-Event-Type": event_type,
        }
        if event_type != "ping":
            headers["X-Discourse-Event"] = event
        key = secret if secret is not None else self.webhook_secret
        if key:
            headers["X-Discourse-Event-Signature"] = f"sha256={hmac_sha256_hex(key, body)}"
        return WebhookDelivery(event, event_type, headers, body)

    def ping(self) -> WebhookDelivery:
        return self.signed_request("ping", {"ping": "OK"})

    def webhook_payloads(self) -> list[WebhookDelivery]:
        """Every delivery so far, in order (what a webhook endpoint would have received)."""
        with self._lock:
            return list(self.deliveries)

    def _deliver(self, event: str, post: _Post) -> None:
        self.deliveries.append(self.signed_request(event, {"post": self._webhook_post_json(post)}))

    # ------------------------------------------------------------ serializers

    def _post_json(self, post: _Post, *, for_staff: bool = True) -> dict[str, Any]:
        """``PostSerializer`` with ``add_raw`` (the fields scrm reads, and a few more)."""
        user, topic = self.users[post.user_id], self.topics[post.topic_id]
        reply_to_user = None
        if post.reply_to_post_number is not None:
            parent = self._by_number(topic, post.reply_to_post_number)
            if parent is not None:
                parent_user = self.users[parent.user_id]
                reply_to_user = {"username": parent_user.username, "name": parent_user.name}
        out: dict[str, Any] = {
            "id": post.id,
            "name": user.name,
            "username": user.username,
            "avatar_template": user.avatar_template,
            "created_at": _stamp(post.created_at),
            "cooked": _cook(post.raw),
            "post_number": post.post_number,
            "post_type": post.post_type,
            "updated_at": _stamp(post.updated_at),
            "reply_count": 0,
            "reply_to_post_number": post.reply_to_post_number,
            "quote_count": 0,
            "incoming_link_count": 0,
            "reads": 1,
            "score": 0,
            "topic_id": topic.id,
            "topic_slug": topic.slug,
            "topic_title": topic.title,
            "category_id": topic.category_id,
            "display_username": user.name,
            "version": post.version,
            "user_id": user.id,
            "hidden": False,
            "trust_level": 1,
            "deleted_at": _stamp(post.deleted_at) if post.deleted_at else None,
            "user_deleted": post.user_deleted,
            "wiki": False,
            "raw": post.raw,
        }
        if reply_to_user is not None:
            out["reply_to_user"] = reply_to_user
        return out

    def _webhook_post_json(self, post: _Post) -> dict[str, Any]:
        """``WebHookPostSerializer``: the post plus topic counts, archetype and category slug."""
        topic = self.topics[post.topic_id]
        live = [p for p in topic.post_ids if not self.posts[p].user_deleted]
        out = self._post_json(post)
        out |= {
            "topic_posts_count": len(live),
            "topic_filtered_posts_count": len(live),
            "topic_archetype": topic.archetype,
        }
        if topic.category_id is not None:
            out["category_slug"] = f"category-{topic.category_id}"
        return out

    def _topic_json(self, topic: _Topic, viewer: _User) -> dict[str, Any]:
        visible = [self.posts[p] for p in topic.post_ids if self._visible(self.posts[p], viewer)]
        return {
            "id": topic.id,
            "title": topic.title,
            "fancy_title": topic.title,
            "slug": topic.slug,
            "posts_count": len(visible),
            "created_at": _stamp(topic.created_at),
            "archetype": topic.archetype,
            "category_id": topic.category_id,
            "tags": list(topic.tags),
            "user_id": topic.user_id,
            "post_stream": {
                "posts": [self._post_json(p) for p in visible[:TOPIC_CHUNK]],
                "stream": [p.id for p in visible],
            },
        }

    # ------------------------------------------------------------ queries

    def _visible(self, post: _Post, viewer: _User) -> bool:
        topic = self.topics[post.topic_id]
        if topic.archetype == "private_message" and not (viewer.staff or viewer.id in topic.allowed_user_ids):
            return False
        return post.deleted_at is None or viewer.staff

    def _by_number(self, topic: _Topic, number: int) -> _Post | None:
        return next((self.posts[p] for p in topic.post_ids if self.posts[p].post_number == number), None)

    def _next_post_id(self) -> int:
        return 1 + max(self.posts, default=0)

    def _latest(self, before: int | None) -> dict[str, Any]:
        found = sorted(
            (
                p
                for p in self.posts.values()
                if p.deleted_at is None
                and p.post_type == 1
                and self.topics[p.topic_id].archetype == "regular"
                and (before is None or p.id < before)
            ),
            key=lambda p: p.id,
            reverse=True,
        )
        return {"latest_posts": [self._post_json(p) for p in found[: self.latest_page_size]]}

    def _show(self, post: _Post | None, viewer: _User) -> dict[str, Any]:
        if post is None or not self._visible(post, viewer):
            raise _error(404, "not_found", NOT_FOUND)
        return self._post_json(post)

    def _create(self, viewer: _User, body: Mapping[str, Any]) -> dict[str, Any]:
        signature = hashlib.sha1(  # noqa: S324 - Discourse's own memo key, not security
            json.dumps(sorted({**body, "user": viewer.id}.items()), default=str).encode()
        ).hexdigest()
        memo = self._memo.get(signature)
        if memo is not None and time.monotonic() - memo[0] < MEMO_SECONDS:
            return memo[1]
        raw = str(body.get("raw") or "")
        try:
            topic = self.topics[int(body.get("topic_id") or 0)]
        except (KeyError, ValueError):
            raise _Answer(422, {"action": "create_post", "errors": ["Topic not found"]}) from None
        if topic.archetype == "private_message" and not (viewer.staff or viewer.id in topic.allowed_user_ids):
            raise _error(403, "invalid_access", "You are not permitted to view the requested resource.")
        errors = []
        if len(raw.strip()) < self.min_post_length:
            errors.append(f"Body is too short (minimum is {self.min_post_length} characters)")
        recent = [p for p in self.posts.values() if p.user_id == viewer.id and p.deleted_at is None]
        if any(p.raw.strip() == raw.strip() for p in recent):
            errors.append("Body is too similar to what you recently posted")
        if errors:
            raise _Answer(422, {"action": "create_post", "errors": errors})
        reply_to = body.get("reply_to_post_number")
        reply_number = int(reply_to) if reply_to not in (None, "") else None
        if reply_number is not None and self._by_number(topic, reply_number) is None:
            reply_number = None  # Discourse drops a reply_to_post_number that names no post
        post = self._insert(topic, viewer, self._next_post_id(), raw, _now(), reply_number)
        answer = self._post_json(post)
        self._memo[signature] = (time.monotonic(), answer)
        return answer

    # ------------------------------------------------------------ the request pipeline

    def _authenticate(self, headers: Mapping[str, str]) -> _User:
        key, username = headers.get("api-key"), headers.get("api-username") or ""
        user = next((u for u in self.users.values() if u.username.lower() == username.lower()), None)
        if key != self.api_key or user is None:
            raise _error(403, "invalid_access", NOT_PERMITTED)
        return user

    def _route(self, method: str, parts: list[str], query: Mapping[str, list[str]], body: Any, viewer: _User) -> Any:
        match parts:
            case ["posts.json"] if method == "GET":
                before = query.get("before", [""])[0]
                return self._latest(int(before) if before.isdigit() and int(before) > 0 else None)
            case ["posts.json"] if method == "POST":
                return self._create(viewer, body if isinstance(body, dict) else {})
            case ["posts", "by_number", topic_id, number] if method == "GET" and number.endswith(".json"):
                topic = self.topics.get(int(topic_id)) if topic_id.isdigit() else None
                post = self._by_number(topic, int(number.removesuffix(".json"))) if topic else None
                return self._show(post, viewer)
            case ["posts", name] if method == "GET" and name.endswith(".json") and name[:-5].isdigit():
                return self._show(self.posts.get(int(name[:-5])), viewer)
            case ["t", name] if method == "GET" and name.endswith(".json") and name[:-5].isdigit():
                topic = self.topics.get(int(name[:-5]))
                if topic is None or not any(self._visible(self.posts[p], viewer) for p in topic.post_ids):
                    raise _error(404, "not_found", NOT_FOUND)
                return self._topic_json(topic, viewer)
            case ["t", topic_id, "posts.json"] if method == "GET" and topic_id.isdigit():
                topic = self.topics.get(int(topic_id))
                if topic is None:
                    raise _error(404, "not_found", NOT_FOUND)
                wanted = {int(i) for i in query.get("post_ids[]", []) if i.isdigit()}
                posts = [
                    self._post_json(self.posts[p])
                    for p in topic.post_ids
                    if p in wanted and self._visible(self.posts[p], viewer)
                ]
                return {"post_stream": {"posts": posts}, "id": topic.id}
            case ["u", name] if method == "GET" and name.endswith(".json"):
                user = next((u for u in self.users.values() if u.username.lower() == name[:-5].lower()), None)
                if user is None:
                    raise _error(404, "not_found", NOT_FOUND)
                return {"user": self._user_json(user)}
            case ["admin", "users", name] if method == "GET" and name.endswith(".json") and name[:-5].isdigit():
                if not viewer.staff:
                    raise _error(403, "invalid_access", "You are not permitted to view the requested resource.")
                user = self.users.get(int(name[:-5]))
                if user is None:
                    raise _error(404, "not_found", NOT_FOUND)
                return self._user_json(user)
        raise _error(404, "not_found", NOT_FOUND)

    @staticmethod
    def _user_json(user: _User) -> dict[str, Any]:
        return {
            "id": user.id,
            "username": user.username,
            "name": user.name,
            "avatar_template": user.avatar_template,
            "trust_level": 1,
            "admin": user.staff,
            "moderator": False,
        }

    def _build_app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        async def api(request: Request) -> Response:
            raw = await request.body()
            path = request.url.path
            fault = Fault.none
            with self._lock:
                try:
                    try:
                        body = json.loads(raw) if raw else {}
                    except ValueError:
                        raise _error(
                            400, "invalid_parameters", "You supplied invalid parameters to the request."
                        ) from None
                    viewer = self._authenticate(request.headers)
                    fault = self.faults.roll()
                    if self.faults.take_armed(Fault.rate_limited):
                        fault = Fault.rate_limited
                    if fault is Fault.rate_limited:
                        wait = self.rate_limit_wait
                        raise _Answer(
                            429,
                            {
                                "errors": [RATE_LIMITED.format(n=wait)],
                                "error_type": "rate_limit",
                                "extras": {"wait_seconds": wait},
                            },
                            {"Retry-After": str(wait)},
                        )
                    if fault is Fault.server_error:
                        raise _Answer(503, {"errors": ["Service Unavailable"]})
                    if request.method == "POST" and self.faults.take_armed(Fault.lost_response):
                        fault = Fault.lost_response
                    query: dict[str, list[str]] = {}
                    for k, v in request.query_params.multi_items():
                        query.setdefault(k, []).append(v)
                    answer = _Answer(200, self._route(request.method, path.strip("/").split("/"), query, body, viewer))
                except _Answer as refused:
                    answer = refused
                status = 502 if fault is Fault.lost_response else answer.status
                self.requests.append((request.method, path, status))
            if fault is Fault.timeout:
                await asyncio.sleep(self.faults.timeout_seconds)
            if fault is Fault.lost_response:
                return Response("<html>502 Bad Gateway</html>", status_code=502, media_type="text/html")
            return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)

        return Starlette(routes=[Route("/{path:path}", api, methods=["GET", "POST", "PUT", "DELETE"])])
