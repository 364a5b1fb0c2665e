"""The X network: mentions and recent search, polled with ``since_id``; threads, edits, deletions, replies.

Each poll round reads every new post of each listing (newest first, following
``next_token`` / ``pagination_token`` until none is left: docs.x.com/x-api/posts/search/
integrate/paginate), merges them, and hands them out in order of their original id (so a
thread's root comes before its replies even when the root was edited). Then it looks the
most recent messages up again (``GET /2/tweets?ids=``, at most 100 ids) to find the
deleted ones: X sends no deletion events to pollers, and its developer terms require
deleted content to be removed. See :mod:`scrm_x.cursor` for how a round resumes.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from scrm_core import (
    AdapterContext,
    Direction,
    Event,
    EventPage,
    FatalError,
    Message,
    MessageCreated,
    MessageDeleted,
    MessageEdited,
    NetworkCapability,
    PollingAdapter,
    ReplyGuarantee,
    SentReply,
    SkippableError,
    SocialProfile,
)

from . import mapping
from .cursor import Cursor
from .settings import AccessTier, XSettings

if TYPE_CHECKING:
    from .client import XClient

__all__ = ["XAdapter"]

_LOOKUP_LIMIT = 100  # ids per GET /2/tweets
_REPLY_SEARCH_PAGES = 5  # timeline pages searched for an earlier copy of a reply
#: 403 ``type``s that mean the credentials, not the reply, are the problem.
_AUTH_PROBLEMS = ("unsupported-authentication", "client-forbidden", "client-not-enrolled")

_Fields = dict(tweet_fields=mapping.TWEET_FIELDS, expansions=mapping.EXPANSIONS, user_fields=mapping.USER_FIELDS)


class _Unit:
    """The events of one post version (a creation, an edit, or both), or of one deletion."""

    __slots__ = ("created", "deleted", "events", "key", "rejects")

    def __init__(
        self,
        events: list[Event],
        key: tuple[int, int] | None,
        created: int | None,
        deleted: int | None,
        rejects: list[tuple[str, str]] | None = None,
    ):
        self.events, self.key, self.created, self.deleted = events, key, created, deleted
        self.rejects = rejects or []


class XAdapter(PollingAdapter[XSettings, Cursor]):
    """X through the API v2 and tweepy; polls, replies under X's rules for the configured access tier."""

    name = "x"
    Settings = XSettings
    cursor_type = Cursor
    reply_guarantee = ReplyGuarantee.look_before_post
    capabilities = frozenset(
        {
            NetworkCapability.poll,
            NetworkCapability.search,
            NetworkCapability.reply,
            NetworkCapability.edits,
            NetworkCapability.deletes,
        }
    )

    def __init__(self, settings: XSettings | Mapping[str, Any], context: AdapterContext | None = None) -> None:
        super().__init__(settings, context)
        self._app: XClient | None = None
        self._user: XClient | None = None
        self._me: dict[str, Any] | None = None

    # ------------------------------------------------------------ clients

    async def start(self) -> None:
        from .client import XClient  # tweepy (and requests, oauthlib) imported when a client is built

        o = self.settings
        url, timeout = o.base_url, o.timeout_seconds
        if o.bearer_token is not None:
            self._app = XClient(url, timeout, bearer_token=o.bearer_token.get_secret_value())
        if o.user_access_token is not None:
            self._user = XClient(url, timeout, bearer_token=o.user_access_token.get_secret_value())
        elif o.access_token is not None:
            assert o.consumer_key and o.consumer_secret and o.access_token_secret  # the validator saw to it
            self._user = XClient(
                url,
                timeout,
                consumer_key=o.consumer_key.get_secret_value(),
                consumer_secret=o.consumer_secret.get_secret_value(),
                access_token=o.access_token.get_secret_value(),
                access_token_secret=o.access_token_secret.get_secret_value(),
            )
        if self._user is not None:
            answer = await self._call(
                "user", "reading the account (GET /2/users/me)", "get_me", user_fields=mapping.USER_FIELDS
            )
            self._me = answer["data"]

    async def close(self) -> None:
        for client in (self._app, self._user):
            if client is not None:
                client.session.close()
        self._app = self._user = None

    async def _call(self, who: str, what: str, method: str, *args: Any, **params: Any) -> dict[str, Any]:
        """One tweepy call in a worker thread; ``who``: "user" (the account) or "read" (app token if any)."""
        from .client import translate

        client, oauth1, names = self._client(who)

        def call() -> dict[str, Any]:
            result: dict[str, Any] = getattr(client, method)(*args, user_auth=oauth1, **params)
            return result

        try:
            return await self.context.run_blocking(call)
        except Exception as exc:  # translate() re-raises what it does not know
            raise translate(exc, names, what) from None

    def _client(self, who: str) -> tuple[XClient, bool, str]:
        if self._app is None and self._user is None:
            raise FatalError("x: the adapter was not started")
        if who == "read" and self._app is not None:
            return self._app, False, "bearer_token"
        if self._user is None:
            raise FatalError("x: this needs the account's user context: set user_access_token or the OAuth 1.0a keys")
        oauth1 = self.settings.user_access_token is None
        return self._user, oauth1, self.settings.user_credential_names

    @property
    def _me_id(self) -> str | None:
        return None if self._me is None else str(self._me["id"])

    # ------------------------------------------------------------ listening

    async def _listing(self, kind: str, since: int | None, users: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """Every post of one listing newer than ``since``, following the pagination tokens."""
        tweets: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {**_Fields, "max_results": self.settings.max_results}
            if since is not None:
                params["since_id"] = since
            if kind == "m":
                assert self._me_id is not None
                if token:
                    params["pagination_token"] = token
                answer = await self._call(
                    "user", "reading mentions (GET /2/users/:id/mentions)", "get_users_mentions", self._me_id, **params
                )
            else:
                if token:
                    params["next_token"] = token
                answer = await self._call(
                    "read",
                    "searching (GET /2/tweets/search/recent)",
                    "search_recent_tweets",
                    self.settings.query,
                    **params,
                )
            _collect_users(answer, users)
            tweets += answer.get("data") or []
            token = (answer.get("meta") or {}).get("next_token")
            if not token:
                return tweets

    async def _lookup(
        self, ids: Iterable[int | str], users: dict[str, dict[str, Any]], what: str
    ) -> tuple[dict[str, dict[str, Any]], set[str]]:
        """Posts by id (``GET /2/tweets?ids=``, 100 at a time) and the ids X says no longer exist."""
        wanted = sorted({str(i) for i in ids}, key=int)
        found: dict[str, dict[str, Any]] = {}
        gone: set[str] = set()
        for start in range(0, len(wanted), _LOOKUP_LIMIT):
            chunk = wanted[start : start + _LOOKUP_LIMIT]
            answer = await self._call("read", what, "get_tweets", chunk, **_Fields)
            _collect_users(answer, users)
            found.update({str(t["id"]): t for t in answer.get("data") or []})
            for error in answer.get("errors") or []:
                # Deleted: "Not Found Error", type .../resource-not-found. A protected or
                # suspended author gives an authorization error instead: not a deletion.
                if str(error.get("type", "")).endswith("resource-not-found") or error.get("title") == "Not Found Error":
                    gone.add(str(error.get("resource_id") or error.get("value")))
        return found, gone

    async def poll(self, state: Cursor) -> AsyncIterator[EventPage]:
        """One poll round from ``state``: new posts of every listing, then the deletion check."""
        o = self.settings
        users: dict[str, dict[str, Any]] = {}
        fetched: dict[str, dict[str, Any]] = {}
        newest = {"m": state.mentions, "s": state.search}
        for kind, active in (("m", o.mentions), ("s", bool(o.query))):
            if not active:
                continue
            for tweet in await self._listing(kind, newest[kind], users):
                fetched.setdefault(str(tweet["id"]), tweet)
                newest[kind] = max(newest[kind] or 0, int(tweet["id"]))
        units = await self._post_units(state, fetched, users)
        created = [u.created for u in units if u.created is not None]
        window = _top(state.window, created, o.recheck_recent)
        deletions = await self._deletions(window, users)
        units += deletions
        after = Cursor(
            newest["m"], newest["s"], None, tuple(w for w in window if w not in {u.deleted for u in deletions})
        )
        if not units:
            if after != state:
                yield EventPage(events=[], cursor=after.dump())
            return
        done_window = list(state.window)
        gone: set[int] = set()
        for start in range(0, len(units), o.page_size):
            page = units[start : start + o.page_size]
            done_window = list(_top(done_window, [u.created for u in page if u.created is not None], o.recheck_recent))
            gone |= {u.deleted for u in page if u.deleted is not None}
            last = page[-1]
            if start + o.page_size >= len(units):
                cursor = after
            elif last.key is not None:
                cursor = Cursor(state.mentions, state.search, last.key, tuple(done_window))
            else:  # within the deletions: the posts are all out, only some deletions are
                cursor = Cursor(newest["m"], newest["s"], None, tuple(w for w in window if w not in gone))
            rejects = [r for u in page for r in u.rejects]
            yield EventPage(events=[e for u in page for e in u.events], cursor=cursor.dump(), rejects=rejects)

    async def _post_units(
        self, state: Cursor, fetched: dict[str, dict[str, Any]], users: dict[str, dict[str, Any]]
    ) -> list[_Unit]:
        """The events of the round's posts in order, after ``state.position``.

        An edit is a new post whose ``edit_history_tweet_ids`` starts with the original
        id: it becomes ``MessageEdited`` on that id. When the original cannot have been
        handed out before (it is newer than every listing's ``since_id`` at the round's
        start; listings show only the latest version), its creation comes first.
        """
        originals = {mapping.original_id(t) for t in fetched.values()} - fetched.keys()
        known, _ = (
            await self._lookup(originals, users, "looking up edited posts (GET /2/tweets)")
            if originals
            else ({}, set())
        )
        floor = max((s for s in (state.mentions, state.search) if s is not None), default=None)
        units: list[_Unit] = []
        announced: set[str] = set()
        for tweet in sorted(fetched.values(), key=_order):
            vid, oid = str(tweet["id"]), mapping.original_id(tweet)
            key = (int(oid), int(vid))
            original = fetched.get(oid) or known.get(oid)
            if original is None:
                continue  # the chain was deleted meanwhile; the deletion check covers it
            # Before the original can have been handed out: its creation comes first (once).
            unseen = vid != oid and oid not in fetched and (floor is None or int(oid) > floor) and oid not in announced
            if unseen:
                announced.add(oid)
            if state.position is not None and key <= state.position:
                continue  # handed out before the page this round resumes after
            rejects: list[tuple[str, str]] = []
            events = await self.guarded(vid, functools.partial(self._version, tweet, original, unseen, users), rejects)
            created = int(oid) if (vid == oid or unseen) and events else None
            units.append(_Unit(events, key, created, None, rejects))
        return units

    def _version(
        self, tweet: dict[str, Any], original: dict[str, Any], unseen: bool, users: dict[str, dict[str, Any]]
    ) -> list[Event]:
        """The events of one post version: its creation, or its edit (after the original's creation if unseen)."""
        me = self._me_id
        if tweet is original:
            return [MessageCreated(message=mapping.message(tweet, users, network=self.network, me=me))]
        events: list[Event] = []
        if unseen:
            events.append(MessageCreated(message=mapping.message(original, users, network=self.network, me=me)))
        msg = mapping.message(tweet, users, network=self.network, me=me, created_at=original["created_at"], edited=True)
        return [*events, MessageEdited(message=msg)]

    async def _deletions(self, window: tuple[int, ...], users: dict[str, dict[str, Any]]) -> list[_Unit]:
        if not window:
            return []
        _, gone = await self._lookup(window, users, "checking for deleted posts (GET /2/tweets)")
        now = datetime.now(UTC)
        return [
            _Unit([MessageDeleted(network=self.network, message_id=str(i), deleted_at=now)], None, None, i)
            for i in window
            if str(i) in gone
        ]

    # ------------------------------------------------------------ threads and profiles

    async def fetch_thread(self, root_id: str) -> list[Message]:
        """The root and every post of its conversation that recent search still sees (7 days)."""
        users: dict[str, dict[str, Any]] = {}
        posts, _ = await self._lookup([root_id], users, "reading a thread's root (GET /2/tweets)")
        token: str | None = None
        while True:
            params: dict[str, Any] = {**_Fields, "max_results": 100}
            if token:
                params["next_token"] = token
            answer = await self._call(
                "read",
                "reading a thread (GET /2/tweets/search/recent)",
                "search_recent_tweets",
                f"conversation_id:{root_id}",
                **params,
            )
            _collect_users(answer, users)
            posts.update({str(t["id"]): t for t in answer.get("data") or []})
            token = (answer.get("meta") or {}).get("next_token")
            if not token:
                break
        latest: dict[str, dict[str, Any]] = {}
        for tweet in sorted(posts.values(), key=lambda t: int(t["id"])):
            latest[mapping.original_id(tweet)] = tweet  # the newest version of each chain wins
        messages = []
        for oid, tweet in sorted(latest.items(), key=lambda kv: int(kv[0])):
            first = posts.get(oid, tweet)
            edited = str(tweet["id"]) != oid
            messages.append(
                mapping.message(
                    tweet, users, network=self.network, me=self._me_id, created_at=first["created_at"], edited=edited
                )
            )
        return messages

    async def fetch_profile(self, account_id: str) -> SocialProfile:
        answer = await self._call(
            "read", "reading a profile (GET /2/users/:id)", "get_user", id=account_id, user_fields=mapping.USER_FIELDS
        )
        if not answer.get("data"):
            raise SkippableError(f"x: X has no account {account_id}")
        return mapping.profile(answer["data"], self.network)

    # ------------------------------------------------------------ replies

    async def send_reply(self, in_reply_to: str, text: str, idempotency_key: str) -> SentReply:
        """Reply with ``POST /2/tweets`` and ``reply.in_reply_to_tweet_id``.

        X takes no idempotency key, so the account's own recent posts are searched first for
        a reply to the same post with the same text (``idempotency_key`` is not sent
        anywhere: two keys with the same text to the same post give one reply). On
        self-serve access X only takes a reply to a post that mentions or quotes the account
        (X developer announcement of 2026-02-23; Enterprise and Public Utility apps exempt):
        the adapter refuses others itself, without calling X, and maps X's 403 for one it
        missed to :class:`SkippableError`.
        """
        import tweepy

        from .client import problem, problem_type, translate

        if self._me is None:
            raise FatalError("x: replies need the account's user context: set user_access_token or the OAuth 1.0a keys")
        me, username = str(self._me["id"]), str(self._me["username"])
        users: dict[str, dict[str, Any]] = {}
        found, gone = await self._lookup([in_reply_to], users, "reading the post to reply to (GET /2/tweets)")
        target = found.get(in_reply_to)
        if target is None:
            why = "was deleted" if in_reply_to in gone else "is not visible to the account"
            raise SkippableError(f"x: post {in_reply_to} {why}; X takes no reply to it")
        if self.settings.access_tier is AccessTier.self_serve and str(target["author_id"]) != me:
            quoted = await self._quoted(target, users)
            if not mapping.engages(target, quoted, me, username):
                raise SkippableError(
                    f"x: post {in_reply_to} does not mention or quote @{username}; on self-serve X API access "
                    "(Free, Basic, Pro, Pay-Per-Use) X only takes replies to posts whose author mentioned or "
                    'quoted the replying account (access_tier = "self_serve")'
                )
        earlier = await self._earlier_reply(in_reply_to, text, users)
        if earlier is not None:
            return SentReply(message=earlier)
        try:
            answer = await self._post(text, in_reply_to)
        except tweepy.Forbidden as exc:
            if any(p in problem_type(exc) for p in _AUTH_PROBLEMS):
                raise translate(exc, self.settings.user_credential_names, "posting a reply (POST /2/tweets)") from None
            raise SkippableError(f"x: X refused the reply to post {in_reply_to} (403: {problem(exc)})") from None
        data = answer["data"]
        conversation = str(target.get("conversation_id") or mapping.original_id(target))
        message = Message(
            network=self.network,
            id=str(data["id"]),
            author=mapping.profile(self._me, self.network),
            text=str(data["text"]),
            created_at=datetime.now(UTC),  # POST /2/tweets answers id and text only
            thread_root_id=conversation,
            parent_id=in_reply_to,
            direction=Direction.outbound,
            url=f"https://x.com/{username}/status/{data['id']}",
        )
        return SentReply(message=message)

    async def _post(self, text: str, in_reply_to: str) -> dict[str, Any]:
        import tweepy

        from .client import translate

        client, oauth1, names = self._client("user")

        def call() -> dict[str, Any]:
            result: dict[str, Any] = client.create_tweet(text=text, in_reply_to_tweet_id=in_reply_to, user_auth=oauth1)
            return result

        try:
            return await self.context.run_blocking(call)
        except tweepy.Forbidden:
            raise
        except Exception as exc:  # translate() re-raises what it does not know
            raise translate(exc, names, "posting a reply (POST /2/tweets)") from None

    async def _quoted(self, target: Mapping[str, Any], users: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        ids = [str(r["id"]) for r in target.get("referenced_tweets") or [] if r.get("type") == "quoted"]
        if not ids:
            return {}
        found, _ = await self._lookup(ids, users, "reading a quoted post (GET /2/tweets)")
        return found

    async def _earlier_reply(self, in_reply_to: str, text: str, users: dict[str, dict[str, Any]]) -> Message | None:
        """The account's own reply to ``in_reply_to`` with this text, if it is already on X.

        Reads the account's timeline (``GET /2/users/:id/tweets``) after ``in_reply_to``,
        rather than search, whose index may lag behind a post made seconds ago.
        """
        assert self._me_id is not None
        token: str | None = None
        for _ in range(_REPLY_SEARCH_PAGES):
            params: dict[str, Any] = {**_Fields, "max_results": 100, "since_id": in_reply_to}
            if token:
                params["pagination_token"] = token
            answer = await self._call(
                "user",
                "looking for an earlier copy of the reply (GET /2/users/:id/tweets)",
                "get_users_tweets",
                self._me_id,
                **params,
            )
            _collect_users(answer, users)
            for tweet in answer.get("data") or []:
                if mapping.parent_id(tweet) == in_reply_to and mapping.same_text(tweet["text"], text):
                    return mapping.message(tweet, users, network=self.network, me=self._me_id)
            token = (answer.get("meta") or {}).get("next_token")
            if not token:
                return None
        raise SkippableError(
            f"x: the account posted more than {_REPLY_SEARCH_PAGES * 100} times since post {in_reply_to}; "
            "cannot tell whether this reply went out already, so it is not sent again"
        )


def _collect_users(answer: Mapping[str, Any], users: dict[str, dict[str, Any]]) -> None:
    for user in (answer.get("includes") or {}).get("users") or []:
        users[str(user["id"])] = user


def _order(tweet: Mapping[str, Any]) -> tuple[int, int]:
    return int(mapping.original_id(tweet)), int(tweet["id"])


def _top(window: Iterable[int], more: Iterable[int], size: int) -> tuple[int, ...]:
    """The ``size`` largest ids (the most recent messages), ascending."""
    return tuple(sorted(set(window) | set(more))[-size:]) if size > 0 else ()
