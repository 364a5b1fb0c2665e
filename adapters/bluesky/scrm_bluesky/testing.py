"""A stateful fake of Bluesky: a PDS + AppView speaking XRPC, and a Jetstream websocket.

It answers what MarshalX's ``atproto`` SDK asks, with Bluesky's JSON shapes, so an adapter
that works against it makes the calls it would make against ``bsky.social``:

* ``/xrpc/<nsid>``: ``com.atproto.server.createSession`` / ``refreshSession`` /
  ``getSession``; ``com.atproto.repo.createRecord`` / ``deleteRecord`` / ``getRecord``;
  ``app.bsky.notification.listNotifications``; ``app.bsky.feed.searchPosts`` /
  ``getPosts`` / ``getPostThread``; ``app.bsky.actor.getProfile`` / ``getProfiles``.
* Access and refresh tokens are JWT-shaped (the SDK decodes ``exp`` to refresh early):
  access 2 h, refresh 90 days (lifetimes seen on bsky.social, MarshalX/atproto#12 and #158).
  An expired or revoked token is answered ``400 {"error": "ExpiredToken"}``; a refresh
  revokes the old refresh token (MarshalX/atproto#158).
* Every answer carries ``ratelimit-limit/-remaining/-reset/-policy`` (reset in epoch
  seconds, policy ``3000;w=300``: https://docs.bsky.app/docs/advanced-guides/rate-limits
  and the headers quoted in MarshalX/atproto#158). A refusal is ``429
  {"error": "RateLimitExceeded"}``. ``createSession`` has its own budget, 30 per 5 minutes
  per account (same page), counted in :attr:`FakeBluesky.logins`.
* ``createRecord`` on an rkey that exists is refused the way the PDS does today: ``500
  InternalServerError`` (bluesky-social/atproto#3718, indigo#873).
* ``/subscribe``: Jetstream's JSON websocket (``wantedCollections``, ``wantedDids``,
  ``cursor`` in unix microseconds, replayed inclusively from the cursor; no cursor = live
  tail), events ``{did, time_us, kind: "commit"|"identity", ...}``
  (https://github.com/bluesky-social/jetstream README).

Search is a simplification: a post matches ``q`` when every whitespace-separated term
occurs in its text (case-insensitive). Direct messages (``chat.bsky.convo``, another
service) are not served: :meth:`FakeBluesky.load` skips ``visibility=direct`` messages.

:func:`bluesky_ids` rewrites a scenario with numeric ids (the conformance suite's default)
to Bluesky ids: DIDs for accounts, ``at://`` URIs whose record key is a TID of the
message's time, ``*.bsky.social`` handles.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from scrm_core.testing.fakes import Fault, FaultInjector

__all__ = ["FakeBluesky", "bluesky_ids", "make_tid"]

POST = "app.bsky.feed.post"
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Reads the public AppView serves without a session (public.api.bsky.app).
_PUBLIC = frozenset(
    {"app.bsky.feed.getPosts", "app.bsky.feed.getPostThread", "app.bsky.actor.getProfile", "app.bsky.actor.getProfiles"}
)
_WRITES = frozenset({"com.atproto.repo.createRecord", "com.atproto.repo.deleteRecord"})


def make_tid(timestamp_us: int, clock_id: int = 0) -> str:
    """A TID: 13 base32-sortable chars of (µs since epoch << 10 | clock id) (https://atproto.com/specs/tid)."""
    n = (timestamp_us << 10) | (clock_id & 0x3FF)
    return "".join(_TID_ALPHABET[(n >> (60 - 5 * i)) & 31] for i in range(13))


def _us(dt: datetime) -> int:
    return (dt - _EPOCH) // timedelta(microseconds=1)


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _cid(data: Any) -> str:
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).digest()
    return "bafyrei" + base64.b32encode(digest).decode().lower().rstrip("=")[:52]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


# ---------------------------------------------------------------- scenario ids


def _did(account_id: str) -> str:
    return "did:plc:" + base64.b32encode(hashlib.sha256(account_id.encode()).digest()).decode().lower()[:24]


def _handle(handle: str | None, account_id: str) -> str:
    name = (handle or f"user{account_id}").replace("_", "-").lower()
    return name if "." in name else f"{name}.bsky.social"


def bluesky_ids(events: list[Any]) -> list[Any]:
    """The same scenario with Bluesky ids (DIDs, ``at://`` URIs with TID record keys, handles)."""
    from scrm_core.models import MessageCreated, MessageDeleted, MessageEdited, ProfileUpdated

    uris: dict[str, str] = {}
    handles: dict[str, str] = {}

    def profile(p: Any) -> Any:
        handles.setdefault(p.handle or "", _did(p.account_id))
        return p.model_copy(update={"account_id": _did(p.account_id), "handle": _handle(p.handle, p.account_id)})

    def message(m: Any) -> Any:
        if m.id not in uris:
            uris[m.id] = f"at://{_did(m.author.account_id)}/{POST}/{make_tid(_us(m.created_at))}"
        return m.model_copy(
            update={
                "id": uris[m.id],
                "author": profile(m.author),
                "thread_root_id": uris.get(m.thread_root_id or ""),
                "parent_id": uris.get(m.parent_id or ""),
                "mentions": [handles.get(h, h) for h in m.mentions],
            }
        )

    out: list[Any] = []
    for event in events:
        if isinstance(event, MessageCreated | MessageEdited):
            out.append(event.model_copy(update={"message": message(event.message)}))
        elif isinstance(event, MessageDeleted):
            out.append(event.model_copy(update={"message_id": uris[event.message_id]}))
        elif isinstance(event, ProfileUpdated):
            out.append(event.model_copy(update={"profile": profile(event.profile)}))
        else:
            out.append(event)
    # mentions may name people who only appear later; a second pass resolves them
    return [
        e.model_copy(
            update={
                "message": e.message.model_copy(update={"mentions": [handles.get(h, h) for h in e.message.mentions]})
            }
        )
        if isinstance(e, MessageCreated | MessageEdited)
        else e
        for e in out
    ]


# ---------------------------------------------------------------- state


@dataclass
class _Account:
    did: str
    handle: str
    display_name: str | None = None
    description: str | None = None
    created_at: str = "2023-01-01T00:00:00.000Z"


@dataclass
class _Record:
    uri: str
    did: str
    collection: str
    rkey: str
    value: dict[str, Any]
    cid: str
    indexed_at: str


@dataclass
class _Token:
    did: str
    kind: str  # "access" | "refresh"
    exp: float
    revoked: bool = False


@dataclass
class _Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class _XrpcError(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.answer = _Answer(status, {"error": error, "message": message})


class FakeBluesky:
    """Bluesky in memory. ``app`` is the ASGI app to serve with :class:`FakeServer`.

    :param app_password: the app password every account accepts.
    :param rate_limit: (requests, seconds) of the per-IP window (``3000;w=300``).
    :param login_limit: (createSession calls, seconds) per account (``30;w=300``).
    :param clock: seconds since the epoch (token expiry, rate-limit windows).
    """

    APP_PASSWORD = "abcd-efgh-ijkl-mnop"  # noqa: S105 - a test value, not a credential
    ACCESS_TTL = 2 * 3600.0
    REFRESH_TTL = 90 * 86400.0

    def __init__(
        self,
        *,
        app_password: str = APP_PASSWORD,
        rate_limit: tuple[int, float] = (3000, 300.0),
        login_limit: tuple[int, float] = (30, 300.0),
        faults: FaultInjector | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app_password = app_password
        self.rate_limit = rate_limit
        self.login_limit = login_limit
        self.faults = faults or FaultInjector()
        self.clock = clock
        self._lock = threading.Lock()
        self._secret = b"fake-bluesky-signing-key"
        self.accounts: dict[str, _Account] = {}
        self.records: dict[str, _Record] = {}
        #: Jetstream events in time order (dicts as sent on the wire).
        self.log: list[dict[str, Any]] = []
        #: Requests answered, by NSID (``calls["com.atproto.server.createSession"]``).
        self.calls: Counter[str] = Counter()
        #: Answers by status (``statuses[429]``).
        self.statuses: Counter[int] = Counter()
        #: Successful createSession calls per DID.
        self.logins: Counter[str] = Counter()
        #: Query parameters of every Jetstream connection (``[{"cursor": [...], ...}]``).
        self.subscriptions: list[dict[str, list[str]]] = []
        self._tokens: dict[str, _Token] = {}
        self._window: list[float] = []
        self._login_window: dict[str, list[float]] = {}
        self._seq = itertools.count(1)
        self.app = self._build_app()

    # ------------------------------------------------------------ seeding and test controls

    def add_account(self, did: str, handle: str, display_name: str | None = None) -> None:
        with self._lock:
            self.accounts.setdefault(did, _Account(did, handle, display_name))

    def load(self, events: list[Any]) -> None:
        """Seed from scrm events with Bluesky ids (see :func:`bluesky_ids`), in order.

        Created/edited messages become ``app.bsky.feed.post`` records (and ``create`` /
        ``update`` commits), deletions delete them (``delete`` commits), profile updates set
        the handle and display name (``identity`` events). Event times become ``time_us``.
        """
        from scrm_core.models import MessageCreated, MessageDeleted, MessageEdited, ProfileUpdated, Visibility

        with self._lock:
            for event in events:
                if isinstance(event, ProfileUpdated):
                    p = event.profile
                    account = self._account(p.account_id, p.handle, p.display_name)
                    account.handle = p.handle or account.handle
                    account.display_name = p.display_name or account.display_name
                    account.description = p.bio or account.description
                    when = _parse_time(event.version) or datetime.now(UTC)
                    self._log_identity(account, _us(when))
                elif isinstance(event, MessageCreated):
                    m = event.message
                    if m.visibility is Visibility.direct:
                        continue  # chat.bsky.convo is another service
                    self._account(m.author.account_id, m.author.handle, m.author.display_name)
                    did, collection, rkey = _split_uri(m.id)
                    value = self._post_value(m.text, m.created_at, m.parent_id, m.mentions, m.hashtags, m.language)
                    self._put(did, collection, rkey, value, _iso(m.created_at), _us(m.created_at), "create")
                elif isinstance(event, MessageEdited):
                    m = event.message
                    if m.id not in self.records:
                        continue
                    record = self.records[m.id]
                    value = dict(record.value, text=m.text)
                    when = m.edited_at or m.created_at
                    self._put(record.did, record.collection, record.rkey, value, record.indexed_at, _us(when), "update")
                elif isinstance(event, MessageDeleted) and event.message_id in self.records:
                    when = event.deleted_at or datetime.now(UTC)
                    self._delete(self.records[event.message_id], _us(when))

    def rate_limit_next(self) -> Callable[[], int]:
        """The next XRPC request is refused with 429; returns how many 429s were given so far."""
        self.faults.arm(Fault.rate_limited)
        return lambda: self.statuses[429]

    def lose_next_response(self) -> None:
        """The next write (createRecord / deleteRecord) is applied, then answered 502."""
        self.faults.arm(Fault.lost_response)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far expires now (the next call gets ExpiredToken)."""
        with self._lock:
            for token in self._tokens.values():
                if token.kind == "access":
                    token.exp = self.clock() - 1

    def delete_post(self, uri: str) -> None:
        """The author deletes a post now (a ``delete`` commit)."""
        with self._lock:
            self._delete(self.records[uri], _us(datetime.now(UTC)))

    def set_handle(self, did: str, handle: str, at: datetime | None = None) -> None:
        """The account changes its handle (an ``identity`` event)."""
        with self._lock:
            account = self.accounts[did]
            account.handle = handle
            self._log_identity(account, _us(at or datetime.now(UTC)))

    def add_post(self, did: str, text: str, at: datetime, *, reply_to: str | None = None) -> str:
        """Someone posts (a ``create`` commit at ``at``); returns the post's URI."""
        with self._lock:
            value = self._post_value(text, at, reply_to, [], [], None)
            rkey = make_tid(_us(at), next(self._seq) & 0x3FF)
            return self._put(did, POST, rkey, value, _iso(at), _us(at), "create").uri

    def posts_by(self, did: str) -> list[dict[str, Any]]:
        """The post records in ``did``'s repo (``value`` dicts with ``uri``)."""
        with self._lock:
            return [dict(r.value, uri=r.uri) for r in self.records.values() if r.did == did and r.collection == POST]

    def did_of(self, handle: str) -> str:
        with self._lock:
            return next(a.did for a in self.accounts.values() if a.handle == handle)

    # ------------------------------------------------------------ records and commits

    def _account(self, did: str, handle: str | None, display_name: str | None) -> _Account:
        if did not in self.accounts:
            self.accounts[did] = _Account(did, handle or did, display_name)
        return self.accounts[did]

    def _ref(self, uri: str | None) -> dict[str, str] | None:
        record = self.records.get(uri or "")
        return {"uri": record.uri, "cid": record.cid} if record else None

    def _post_value(
        self,
        text: str,
        created_at: datetime,
        parent: str | None,
        mentions: list[str],
        hashtags: list[str],
        language: str | None,
    ) -> dict[str, Any]:
        value: dict[str, Any] = {"$type": POST, "text": text, "createdAt": _iso(created_at)}
        parent_ref = self._ref(parent)
        if parent_ref is not None:
            parent_reply = self.records[parent_ref["uri"]].value.get("reply")
            root_ref = parent_reply["root"] if parent_reply else parent_ref
            value["reply"] = {"root": root_ref, "parent": parent_ref}
        facets = []
        for mention in mentions:
            did = (
                mention
                if mention.startswith("did:")
                else next(
                    (a.did for a in self.accounts.values() if a.handle.split(".")[0] == mention or a.handle == mention),
                    None,
                )
            )
            if did:
                facets.append(
                    {
                        "index": {"byteStart": 0, "byteEnd": 0},
                        "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}],
                    }
                )
        if facets:
            value["facets"] = facets
        if hashtags:
            value["tags"] = list(hashtags)
        if language:
            value["langs"] = [language]
        return value

    def _put(
        self, did: str, collection: str, rkey: str, value: dict[str, Any], indexed_at: str, time_us: int, op: str
    ) -> _Record:
        uri = f"at://{did}/{collection}/{rkey}"
        record = _Record(uri, did, collection, rkey, value, _cid(value), indexed_at)
        self.records[uri] = record
        commit = {"rev": make_tid(time_us), "operation": op, "collection": collection, "rkey": rkey}
        self._append(
            {"did": did, "time_us": time_us, "kind": "commit", "commit": commit | {"record": value, "cid": record.cid}}
        )
        return record

    def _delete(self, record: _Record, time_us: int) -> None:
        del self.records[record.uri]
        commit = {"rev": make_tid(time_us), "operation": "delete", "collection": record.collection, "rkey": record.rkey}
        self._append({"did": record.did, "time_us": time_us, "kind": "commit", "commit": commit})

    def _log_identity(self, account: _Account, time_us: int) -> None:
        when = _iso(_EPOCH + timedelta(microseconds=time_us))
        identity = {"did": account.did, "handle": account.handle, "seq": next(self._seq), "time": when}
        self._append({"did": account.did, "time_us": time_us, "kind": "identity", "identity": identity})

    def _append(self, event: dict[str, Any]) -> None:
        # time_us is unique and increasing on the real service; keep it so here
        if self.log and event["time_us"] <= self.log[-1]["time_us"]:
            event["time_us"] = self.log[-1]["time_us"] + 1
        self.log.append(event)

    # ------------------------------------------------------------ views (AppView shapes)

    def _profile_view(self, did: str, *, detailed: bool = False) -> dict[str, Any]:
        a = self.accounts.get(did) or _Account(did, "handle.invalid")
        view: dict[str, Any] = {"did": a.did, "handle": a.handle, "createdAt": a.created_at}
        if a.display_name:
            view["displayName"] = a.display_name
        if a.description:
            view["description"] = a.description
        if detailed:
            posts = sum(1 for r in self.records.values() if r.did == did and r.collection == POST)
            view |= {"followersCount": 0, "followsCount": 0, "postsCount": posts, "indexedAt": a.created_at}
        return view

    def _post_view(self, record: _Record) -> dict[str, Any]:
        return {
            "uri": record.uri,
            "cid": record.cid,
            "author": self._profile_view(record.did),
            "record": record.value,
            "indexedAt": record.indexed_at,
            "replyCount": sum(1 for r in self._posts() if _parent(r) == record.uri),
            "repostCount": 0,
            "likeCount": 0,
            "viewer": {"replyDisabled": False},
            "labels": [],
        }

    def _posts(self) -> list[_Record]:
        return sorted((r for r in self.records.values() if r.collection == POST), key=lambda r: (r.indexed_at, r.uri))

    def _notifications(self, viewer: str) -> list[dict[str, Any]]:
        out = []
        for r in self._posts():
            if r.did == viewer:
                continue
            parent = self.records.get(_parent(r) or "")
            mentioned = any(
                f.get("did") == viewer for facet in r.value.get("facets", []) for f in facet.get("features", [])
            )
            reason = "reply" if parent is not None and parent.did == viewer else "mention" if mentioned else None
            if reason is None:
                continue
            note = {
                "uri": r.uri,
                "cid": r.cid,
                "author": self._profile_view(r.did),
                "reason": reason,
                "record": r.value,
                "isRead": False,
                "indexedAt": r.indexed_at,
                "labels": [],
            }
            if reason == "reply" and parent is not None:
                note["reasonSubject"] = parent.uri
            out.append(note)
        return out[::-1]  # newest first

    def _thread(self, record: _Record, depth: int) -> dict[str, Any]:
        node: dict[str, Any] = {"$type": "app.bsky.feed.defs#threadViewPost", "post": self._post_view(record)}
        if depth > 0:
            node["replies"] = [self._thread(r, depth - 1) for r in self._posts() if _parent(r) == record.uri]
        return node

    # ------------------------------------------------------------ auth

    def _jwt(self, did: str, kind: str, ttl: float) -> str:
        now = int(self.clock())
        header = {"typ": "at+jwt" if kind == "access" else "refresh+jwt", "alg": "HS256"}
        payload = {
            "scope": "com.atproto.appPass" if kind == "access" else "com.atproto.refresh",
            "sub": did,
            "aud": "did:web:fake.bsky.local",
            "iat": now,
            "exp": now + int(ttl),
            "jti": f"{kind}-{next(self._seq)}",
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
        signature = hmac.new(self._secret, signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{_b64(signature)}"
        self._tokens[token] = _Token(did, kind, now + ttl)
        return token

    def _session(self, did: str) -> dict[str, Any]:
        return {
            "did": did,
            "handle": self.accounts[did].handle,
            "accessJwt": self._jwt(did, "access", self.ACCESS_TTL),
            "refreshJwt": self._jwt(did, "refresh", self.REFRESH_TTL),
            "active": True,
        }

    def _bearer(self, authorization: str | None, kind: str, *, required: bool = True) -> str | None:
        if not authorization:
            if required:
                raise _XrpcError(401, "AuthenticationRequired", "Authentication Required")
            return None
        token = self._tokens.get(authorization.removeprefix("Bearer ").strip())
        if token is None or token.kind != kind:
            raise _XrpcError(400, "InvalidToken", "Token could not be verified")
        if token.revoked:
            raise _XrpcError(400, "ExpiredToken", "Token has been revoked")
        if token.exp <= self.clock():
            raise _XrpcError(400, "ExpiredToken", "Token has expired")
        return token.did

    def _create_session(self, body: Mapping[str, Any]) -> _Answer:
        identifier = str(body.get("identifier") or "")
        account = next((a for a in self.accounts.values() if identifier in (a.did, a.handle)), None)
        key = account.did if account else identifier
        limit, seconds = self.login_limit
        now = self.clock()
        stamps = [t for t in self._login_window.get(key, []) if t > now - seconds]
        if len(stamps) >= limit:
            reset = int(min(stamps) + seconds)
            headers = _limit_headers(limit, 0, reset, f"{limit};w={int(seconds)}")
            return _Answer(429, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}, headers)
        self._login_window[key] = [*stamps, now]
        if account is None or body.get("password") != self.app_password:
            raise _XrpcError(401, "AuthenticationRequired", "Invalid identifier or password")
        self.logins[account.did] += 1
        return _Answer(200, self._session(account.did))

    def _refresh_session(self, authorization: str | None) -> _Answer:
        did = self._bearer(authorization, "refresh")
        assert did is not None
        self._tokens[authorization.removeprefix("Bearer ").strip()].revoked = True  # type: ignore[union-attr]
        return _Answer(200, self._session(did))

    # ------------------------------------------------------------ XRPC methods

    def _call(self, nsid: str, query: Mapping[str, list[str]], body: Any, authorization: str | None) -> _Answer:
        def one(name: str, default: str | None = None) -> str | None:
            values = query.get(name)
            return values[0] if values else default

        def limit() -> int:
            return max(1, min(100, int(one("limit", "50") or 50)))

        if nsid == "com.atproto.server.createSession":
            return self._create_session(body or {})
        if nsid == "com.atproto.server.refreshSession":
            return self._refresh_session(authorization)
        viewer = self._bearer(authorization, "access", required=nsid not in _PUBLIC)
        match nsid:
            case "com.atproto.server.getSession":
                assert viewer is not None
                return _Answer(200, {"did": viewer, "handle": self.accounts[viewer].handle, "active": True})
            case "app.bsky.notification.listNotifications":
                assert viewer is not None
                reasons = set(query.get("reasons", []))
                notes = [n for n in self._notifications(viewer) if not reasons or n["reason"] in reasons]
                return _Answer(200, _paged(notes, "notifications", one("cursor"), limit()))
            case "app.bsky.feed.searchPosts":
                terms = (one("q") or "").lower().split()
                if not terms:
                    raise _XrpcError(400, "InvalidRequest", 'Error: Params must have the property "q"')
                since = one("since")
                hits = [
                    self._post_view(r)
                    for r in self._posts()[::-1]
                    if all(t in r.value.get("text", "").lower() for t in terms) and (not since or r.indexed_at >= since)
                ]
                return _Answer(200, _paged(hits, "posts", one("cursor"), limit()))
            case "app.bsky.feed.getPosts":
                uris = query.get("uris", [])
                if len(uris) > 25:
                    raise _XrpcError(400, "InvalidRequest", "Error: uris must not have more than 25 elements")
                return _Answer(200, {"posts": [self._post_view(self.records[u]) for u in uris if u in self.records]})
            case "app.bsky.feed.getPostThread":
                uri = one("uri") or ""
                if uri not in self.records:
                    raise _XrpcError(400, "NotFound", f"Post not found: {uri}")
                return _Answer(200, {"thread": self._thread(self.records[uri], int(one("depth", "6") or 6))})
            case "app.bsky.actor.getProfile":
                did = self._resolve(one("actor") or "")
                return _Answer(200, self._profile_view(did, detailed=True))
            case "app.bsky.actor.getProfiles":
                actors = query.get("actors", [])
                if len(actors) > 25:
                    raise _XrpcError(400, "InvalidRequest", "Error: actors must not have more than 25 elements")
                found = [a for a in (self._find(x) for x in actors) if a is not None]
                return _Answer(200, {"profiles": [self._profile_view(d, detailed=True) for d in found]})
            case "com.atproto.repo.getRecord":
                uri = f"at://{self._resolve(one('repo') or '')}/{one('collection')}/{one('rkey')}"
                record = self.records.get(uri)
                if record is None:
                    raise _XrpcError(400, "RecordNotFound", f"Could not locate record: {uri}")
                return _Answer(200, {"uri": record.uri, "cid": record.cid, "value": record.value})
            case "com.atproto.repo.createRecord":
                return self._create_record(viewer, body or {})
            case "com.atproto.repo.deleteRecord":
                repo = self._resolve(str((body or {}).get("repo", "")))
                if repo != viewer:
                    raise _XrpcError(401, "AuthRequiredError", "Invalid repo")
                uri = f"at://{repo}/{body.get('collection')}/{body.get('rkey')}"
                if uri in self.records:
                    self._delete(self.records[uri], _us(datetime.now(UTC)))
                return _Answer(200, {"commit": {"cid": _cid(uri), "rev": make_tid(_us(datetime.now(UTC)))}})
        raise _XrpcError(501, "MethodNotImplemented", f"Method Not Implemented: {nsid}")

    def _find(self, actor: str) -> str | None:
        if actor in self.accounts:
            return actor
        return next((a.did for a in self.accounts.values() if a.handle == actor), None)

    def _resolve(self, actor: str) -> str:
        did = self._find(actor)
        if did is None:
            raise _XrpcError(400, "InvalidRequest", "Profile not found")
        return did

    def _create_record(self, viewer: str | None, body: Mapping[str, Any]) -> _Answer:
        repo = self._resolve(str(body.get("repo", "")))
        if repo != viewer:
            raise _XrpcError(401, "AuthRequiredError", "Invalid repo")
        collection = str(body.get("collection", ""))
        value = dict(body.get("record") or {})
        if value.get("$type") != collection:
            raise _XrpcError(400, "InvalidRequest", "Invalid $type: expected " + collection)
        if collection == POST:
            text = value.get("text")
            if not isinstance(text, str) or not isinstance(value.get("createdAt"), str):
                raise _XrpcError(
                    400, "InvalidRecord", 'Invalid app.bsky.feed.post record: Record must have the property "text"'
                )
            if len(text) > 300:
                raise _XrpcError(
                    400,
                    "InvalidRecord",
                    "Invalid app.bsky.feed.post record: Record/text must not be longer than 300 graphemes",
                )
        now = datetime.now(UTC)
        rkey = str(body.get("rkey") or make_tid(_us(now), next(self._seq) & 0x3FF))
        if f"at://{repo}/{collection}/{rkey}" in self.records:
            # what the PDS answers today (bluesky-social/atproto#3718)
            raise _XrpcError(500, "InternalServerError", "Internal Server Error")
        record = self._put(repo, collection, rkey, value, _iso(now), _us(now), "create")
        return _Answer(
            200,
            {
                "uri": record.uri,
                "cid": record.cid,
                "commit": {"cid": _cid(record.uri), "rev": make_tid(_us(now))},
                "validationStatus": "valid",
            },
        )

    def _spend(self) -> tuple[bool, dict[str, str]]:
        limit, seconds = self.rate_limit
        now = self.clock()
        self._window = [t for t in self._window if t > now - seconds]
        armed = self.faults.take_armed(Fault.rate_limited)
        refused = armed or len(self._window) >= limit
        if not refused:
            self._window.append(now)
        reset = int((self._window[0] if self._window else now) + seconds)
        return refused, _limit_headers(limit, max(0, limit - len(self._window)), reset, f"{limit};w={int(seconds)}")

    # ------------------------------------------------------------ ASGI app

    def _build_app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route, WebSocketRoute
        from starlette.websockets import WebSocket, WebSocketDisconnect

        async def xrpc(request: Request) -> Response:
            nsid = request.path_params["nsid"]
            raw = await request.body()
            query: dict[str, list[str]] = {}
            for key, value in request.query_params.multi_items():
                query.setdefault(key, []).append(value)
            lost = False
            fault = Fault.none
            with self._lock:
                self.calls[nsid] += 1
                refused, headers = self._spend()
                if not refused:
                    fault = self.faults.roll()
                if refused or fault is Fault.rate_limited:
                    answer = _Answer(429, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"})
                    headers["ratelimit-remaining"] = "0"
                elif fault is Fault.server_error:
                    answer = _Answer(500, {"error": "InternalServerError", "message": "Internal Server Error"})
                else:
                    try:
                        body = json.loads(raw) if raw else None
                        answer = self._call(nsid, query, body, request.headers.get("authorization"))
                    except _XrpcError as exc:
                        answer = exc.answer
                    except (ValueError, KeyError, TypeError) as exc:
                        answer = _Answer(400, {"error": "InvalidRequest", "message": f"Input is invalid: {exc}"})
                    if nsid in _WRITES and self.faults.take_armed(Fault.lost_response):
                        lost = True
                    lost = lost or fault is Fault.lost_response
                headers |= answer.headers
                status = 502 if lost else answer.status
                self.statuses[status] += 1
            if fault is Fault.timeout:
                await asyncio.sleep(self.faults.timeout_seconds)
            if lost:
                return Response("<html>502 Bad Gateway</html>", status_code=502, media_type="text/html")
            return JSONResponse(answer.body, status_code=answer.status, headers=headers)

        async def subscribe(websocket: WebSocket) -> None:
            params: dict[str, list[str]] = {}
            for key, value in websocket.query_params.multi_items():
                params.setdefault(key, []).append(value)
            with self._lock:
                self.subscriptions.append(params)
                position = len(self.log)
                if params.get("cursor"):
                    cursor = int(params["cursor"][0])
                    position = next((i for i, e in enumerate(self.log) if e["time_us"] >= cursor), len(self.log))
            collections = set(params.get("wantedCollections", []))
            dids = set(params.get("wantedDids", []))
            await websocket.accept()
            closed = asyncio.ensure_future(websocket.receive())
            try:
                while not closed.done():
                    with self._lock:
                        batch, position = self.log[position:], len(self.log)
                    for event in batch:
                        if dids and event["did"] not in dids:
                            continue
                        if (
                            event["kind"] == "commit"
                            and collections
                            and event["commit"]["collection"] not in collections
                        ):
                            continue
                        await websocket.send_text(json.dumps(event))
                    await asyncio.wait([closed], timeout=0.02)
            except (WebSocketDisconnect, RuntimeError, OSError):
                pass
            finally:
                closed.cancel()

        return Starlette(
            routes=[
                Route("/xrpc/{nsid}", xrpc, methods=["GET", "POST"]),
                WebSocketRoute("/subscribe", subscribe),
            ]
        )


def _limit_headers(limit: int, remaining: int, reset: int, policy: str) -> dict[str, str]:
    return {
        "ratelimit-limit": str(limit),
        "ratelimit-remaining": str(remaining),
        "ratelimit-reset": str(reset),
        "ratelimit-policy": policy,
    }


def _paged(items: list[dict[str, Any]], name: str, cursor: str | None, limit: int) -> dict[str, Any]:
    start = int(cursor) if cursor and cursor.isdigit() else 0
    page: dict[str, Any] = {name: items[start : start + limit]}
    if start + limit < len(items):
        page["cursor"] = str(start + limit)
    return page


def _parent(record: _Record) -> str | None:
    reply = record.value.get("reply")
    return str(reply["parent"]["uri"]) if reply else None


def _split_uri(uri: str) -> tuple[str, str, str]:
    did, collection, rkey = uri.removeprefix("at://").split("/", 2)
    return did, collection, rkey


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
