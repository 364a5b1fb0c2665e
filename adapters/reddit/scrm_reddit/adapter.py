"""The Reddit network: subreddit comments and posts, username mentions, edits, deletions, replies.

Listening is a pass over every configured listing, then a re-check:

1. **Listings** (``/r/{sub}/comments``, ``/r/{sub}/new``, ``/message/mentions``) are
   read newest-first pages (https://github.com/reddit-archive/reddit/wiki/JSON,
   "listing"). A listing never read before takes its ``backfill`` newest items (paging
   with ``after``); afterwards it asks for ``before=<newest fullname read>``: the items
   right after it. The listings are merged by creation time, so a post comes before its
   comments; a comment listed twice (a mention in a subreddit that is also read) is one
   message.
2. **Re-check**: the last ``recheck_recent`` items are fetched again with ``/api/info``
   (100 fullnames per call). A body/selftext that became ``[deleted]`` / ``[removed]``,
   an author that became ``[deleted]`` or a ``removed_by_category`` is a MessageDeleted
   (removal by a moderator is a deletion for scrm); a new ``edited`` time is a
   MessageEdited with that ``edited_at``. Reddit keeps no history: an item first read
   after it was edited or deleted gives its MessageCreated (current text) followed at
   once by the MessageEdited / MessageDeleted.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from scrm_core import (
    AdapterContext,
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
    RetryableError,
    SentReply,
    SkippableError,
    SocialProfile,
)

from .cursor import RedditCursor, Watched
from .mapping import edited_at, is_gone, link_of, thing_data, to_message

if TYPE_CHECKING:
    from .client import RedditClient
from .settings import RedditSettings

__all__ = ["RedditAdapter"]

T = TypeVar("T")
_FULLNAME = re.compile(r"(t[13])_([0-9a-z]{1,13})")
#: Most listings hold at most 1000 items (praw's ListingGenerator docs).
_LISTING_DEPTH = 1000


@dataclass(frozen=True)
class _Listing:
    key: str  # name in the cursor
    path: str


class RedditAdapter(PollingAdapter[RedditSettings, RedditCursor]):
    """Reads Reddit through praw (OAuth); posts replies once, looking before it posts."""

    name = "reddit"
    Settings = RedditSettings
    cursor_type = RedditCursor
    reply_guarantee = ReplyGuarantee.look_before_post
    capabilities = frozenset(
        {NetworkCapability.poll, NetworkCapability.reply, NetworkCapability.edits, NetworkCapability.deletes}
    )

    def __init__(self, settings: RedditSettings | Mapping[str, Any], context: AdapterContext | None = None) -> None:
        super().__init__(settings, context)
        self._client: RedditClient | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.client  # noqa: B018  # built now; no I/O: praw logs in on the first call

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> RedditClient:
        if self._client is None:
            from .client import RedditClient  # praw is imported when a client is built, not at plugin load

            self._client = RedditClient(self.settings)
        return self._client

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.context.run_blocking(fn, *args)

    def listings(self) -> list[_Listing]:
        out: list[_Listing] = []
        for sub in self.settings.subreddits:
            if self.settings.submissions:
                out.append(_Listing(f"r/{sub}/new", f"/r/{sub}/new"))
            if self.settings.comments:
                out.append(_Listing(f"r/{sub}/comments", f"/r/{sub}/comments"))
        if self.settings.mentions:
            out.append(_Listing("mentions", "/message/mentions"))
        return out

    # ------------------------------------------------------------ listening

    async def poll(self, state: RedditCursor) -> AsyncIterator[EventPage]:
        """One pass: every listing after its anchor, then the re-check of the recent items."""
        me, _ = await self._run(self.client.me)
        async for page in self._read_listings(state, me):
            yield page
        async for page in self._recheck(state, me):
            yield page

    async def _read_listings(self, state: RedditCursor, me: str) -> AsyncIterator[EventPage]:
        listings = self.listings()
        buffers: dict[str, deque[dict[str, Any]]] = {s.key: deque() for s in listings}
        done: set[str] = set()
        size = self.settings.page_size
        while True:
            events: list[Event] = []
            rejects: list[tuple[str, str]] = []
            while len(events) < size:
                for listing in listings:
                    if listing.key not in done and not buffers[listing.key]:
                        fresh = await self._next_items(listing, state)
                        if fresh:
                            buffers[listing.key].extend(fresh)
                        else:
                            done.add(listing.key)
                heads = [key for key, buf in buffers.items() if buf]
                if not heads:
                    break
                key = min(heads, key=lambda k: _order(buffers[k][0]))
                data = buffers[key].popleft()
                name = str(data["name"])
                for other in heads:  # the same comment at the head of another listing
                    if buffers[other] and buffers[other][0]["name"] == name:
                        buffers[other].popleft()
                        state.anchors[other] = name
                state.anchors[key] = name
                if state.watched(name) is None:
                    self._first_sight(data, state, me, events, rejects)
            if events or rejects:
                yield EventPage(events=events, cursor=state.dump(), rejects=rejects)
            if not any(buffers.values()) and len(done) == len(listings):
                return

    async def _next_items(self, listing: _Listing, state: RedditCursor) -> list[dict[str, Any]]:
        """The next items of one listing after its anchor, oldest first."""
        anchor = state.anchors.get(listing.key)
        if anchor is None:
            return await self._walk_back(listing, self.settings.backfill, None)
        params: dict[str, str | int] = {"limit": self.settings.page_size, "before": anchor}
        children, _ = await self._run(self.client.listing, listing.path, params)
        if children:
            return [thing_data(c) for c in reversed(children)]
        # Empty: caught up, or the anchor left the listing (removed, spam-filtered) and
        # Reddit answers an empty page for an anchor it no longer lists. Reddit's ids grow
        # with time, so the newest item tells which.
        newest, _ = await self._run(self.client.listing, listing.path, {"limit": 1})
        if not newest or _id_number(thing_data(newest[0])["name"]) <= _id_number(anchor):
            return []
        return await self._walk_back(listing, _LISTING_DEPTH, anchor)

    async def _walk_back(self, listing: _Listing, most: int, anchor: str | None) -> list[dict[str, Any]]:
        """Newest items (at most ``most``, all newer than ``anchor`` if given), oldest first."""
        items: list[dict[str, Any]] = []
        after: str | None = None
        while len(items) < most:
            params: dict[str, str | int] = {"limit": min(100, most - len(items))}
            if after:
                params["after"] = after
            children, after = await self._run(self.client.listing, listing.path, params)
            page = [thing_data(c) for c in children]
            if anchor is not None:
                page = [d for d in page if _id_number(d["name"]) > _id_number(anchor)]
            items += page
            if not after or len(page) < len(children):
                break
        return items[:most][::-1]

    def _first_sight(
        self, data: dict[str, Any], state: RedditCursor, me: str, events: list[Event], rejects: list[tuple[str, str]]
    ) -> None:
        name = str(data["name"])
        try:
            message = self._message(data, me)
        except (FatalError, RetryableError):
            raise
        except Exception as exc:  # this thing only: its reject, and the page goes on
            rejects.append((name, f"unreadable {name[:2]} thing: {type(exc).__name__}: {str(exc)[:200]}"))
            return
        gone, edited = is_gone(data), edited_at(data)
        events.append(MessageCreated(message=message))
        if gone:
            events.append(MessageDeleted(network=self.network, message_id=name))
        elif edited is not None:
            events.append(MessageEdited(message=message.model_copy(update={"edited_at": edited})))
        if self.settings.recheck_recent:
            state.remember(Watched(name, edited.timestamp() if edited else 0.0, gone), self.settings.recheck_recent)

    async def _recheck(self, state: RedditCursor, me: str) -> AsyncIterator[EventPage]:
        targets = [w for w in state.watch if not w.gone]
        if not targets:
            return
        found = await self._run(self.client.info, [w.fullname for w in targets])
        current = {str(d["name"]): d for d in map(thing_data, found)}
        events: list[Event] = []
        for watched in targets:
            data = current.get(watched.fullname)
            if data is None or is_gone(data):  # /api/info leaves out things that no longer exist
                watched.gone = True
                events.append(MessageDeleted(network=self.network, message_id=watched.fullname))
            else:
                edited = edited_at(data)
                if edited is None or edited.timestamp() == watched.edited:
                    continue
                watched.edited = edited.timestamp()
                message = self._message(data, me).model_copy(update={"edited_at": edited})
                events.append(MessageEdited(message=message))
            if len(events) >= self.settings.page_size:
                yield EventPage(events=events, cursor=state.dump())
                events = []
        if events:
            yield EventPage(events=events, cursor=state.dump())

    def _message(self, data: dict[str, Any], me: str | None) -> Message:
        return to_message(data, network=self.network, me=me, reddit_url=self.settings.reddit_url)

    # ------------------------------------------------------------ threads and profiles

    async def fetch_thread(self, root_id: str) -> list[Message]:
        me, _ = await self._run(self.client.me)
        things = await self._run(self._thread_things, root_id)
        return [self._message(d, me) for d in things]

    def _thread_things(self, root_id: str) -> list[dict[str, Any]]:
        kind, id36 = _split(root_id)
        client, reddit = self.client, self.client.reddit
        if kind == "t1":
            found = client.info([root_id])
            link = link_of(thing_data(found[0])) if found else None
            if link is None:
                raise SkippableError(f"reddit: {root_id} is not on Reddit")
            id36 = link.removeprefix("t3_")
        submission = reddit.submission(id36)
        client.call(f"GET /comments/{id36}", lambda: submission.comments.replace_more(limit=None))
        return [thing_data(submission)] + [thing_data(c) for c in submission.comments.list()]

    async def fetch_profile(self, account_id: str) -> SocialProfile:
        found = await self._run(self._partial_redditor, account_id)
        if found is None:
            raise SkippableError(f"reddit: no account {account_id!r}")
        name = str(found.name)
        return SocialProfile(
            network=self.network,
            account_id=account_id,
            handle=name,
            url=f"{self.settings.reddit_url}/user/{name}",
        )

    def _partial_redditor(self, account_id: str) -> Any:
        if not account_id.startswith("t2_"):
            raise SkippableError(f"reddit: {account_id!r} is not a t2_ account id")
        redditors = self.client.reddit.redditors
        found = self.client.call(
            "GET /api/user_data_by_account_ids", lambda: list(redditors.partial_redditors([account_id]))
        )
        return found[0] if found else None

    # ------------------------------------------------------------ replies

    async def send_reply(self, in_reply_to: str, text: str, idempotency_key: str) -> SentReply:
        """Reddit takes no idempotency key: look for our earlier reply with this text, then post.

        ``POST /api/comment`` (``thing_id`` = the parent's fullname, praw's
        ``Comment.reply`` / ``Submission.reply``); the earlier reply is looked for among the
        parent's replies (``/comments/{link}/_/{comment}`` or ``/comments/{link}``, with
        ``/api/morechildren`` for collapsed ones). ``idempotency_key`` is not sent: two
        replies with the same text to the same parent count as one.
        """
        _split(in_reply_to)
        me, _ = await self._run(self.client.me)
        earlier = await self._run(self._find_reply, in_reply_to, text, me)
        data = earlier if earlier is not None else await self._run(self._post_reply, in_reply_to, text)
        return SentReply(message=self._message(data, me))

    def _find_reply(self, parent: str, text: str, me: str) -> dict[str, Any] | None:
        kind, id36 = _split(parent)
        client, reddit = self.client, self.client.reddit
        replies: list[Any]
        if kind == "t3":
            submission = reddit.submission(id36)
            client.call(f"GET /comments/{id36}", lambda: submission.comments.replace_more(limit=None), replying=True)
            replies = submission.comments.list()
        else:
            comment = reddit.comment(id36)
            client.call(f"GET replies of {parent}", comment.refresh, replying=True)
            client.call(f"GET replies of {parent}", lambda: comment.replies.replace_more(limit=None), replying=True)
            replies = comment.replies.list()
        wanted = text.strip()
        for reply in replies:  # the whole subtree: keep direct replies by us with this text
            data = thing_data(reply)
            mine = data.get("author_fullname") == me and data.get("parent_id") == parent
            if mine and str(data.get("body", "")).strip() == wanted:
                return data
        return None

    def _post_reply(self, parent: str, text: str) -> dict[str, Any]:
        kind, id36 = _split(parent)
        reddit = self.client.reddit
        target = reddit.submission(id36) if kind == "t3" else reddit.comment(id36)
        posted = self.client.call(f"POST /api/comment to {parent}", lambda: target.reply(text), replying=True)
        if posted is None:  # quarantined subreddit: posted, but Reddit shows nothing (praw docs)
            raise SkippableError(f"reddit: Reddit posted no visible reply to {parent} (quarantined subreddit?)")
        return thing_data(posted)


def _split(fullname: str) -> tuple[str, str]:
    match = _FULLNAME.fullmatch(fullname)
    if match is None:
        raise SkippableError(f"reddit: {fullname!r} is not a comment (t1_) or post (t3_) fullname")
    return match.group(1), match.group(2)


def _id_number(fullname: Any) -> int:
    return int(str(fullname)[3:], 36)


def _order(data: dict[str, Any]) -> tuple[float, int, int]:
    """Creation time, then posts before comments, then Reddit's id (base 36, increasing)."""
    name = str(data["name"])
    return float(data.get("created_utc") or 0), 0 if name.startswith("t3_") else 1, int(name[3:], 36)
