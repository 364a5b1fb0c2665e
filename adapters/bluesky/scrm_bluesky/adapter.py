"""The Bluesky network adapter: listen (poll or Jetstream), threads, profiles, replies."""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from scrm_core import (
    AdapterContext,
    Direction,
    EventPage,
    FatalError,
    Message,
    NetworkCapability,
    PollingAdapter,
    ReplyGuarantee,
    RetryableError,
    SentReply,
    SkippableError,
    SocialProfile,
)

from .cursor import PollCursor
from .mapping import (
    POST,
    message_from_record,
    message_from_view,
    parse_time,
    profile_from_view,
    split_uri,
    us_from_time,
)
from .poller import Poller
from .session_store import SessionFile
from .settings import BlueskySettings
from .tid import reply_rkey

if TYPE_CHECKING:
    from .api import BlueskyApi
    from .jetstream import JetstreamListener

__all__ = ["BlueskyAdapter"]

#: ``app.bsky.feed.post`` text: at most 300 graphemes (lexicon app.bsky.feed.post, maxGraphemes).
MAX_GRAPHEMES = 300


class BlueskyAdapter(PollingAdapter[BlueskySettings, PollCursor]):
    name = "bluesky"
    Settings = BlueskySettings
    cursor_type = PollCursor
    reply_guarantee = ReplyGuarantee.idempotency_key
    capabilities = frozenset(
        {
            NetworkCapability.poll,
            NetworkCapability.stream,
            NetworkCapability.search,
            NetworkCapability.reply,
            NetworkCapability.deletes,
            NetworkCapability.edits,  # only Jetstream ``update`` commits; the Bluesky app cannot edit posts
        }
    )

    def __init__(self, settings: BlueskySettings | Mapping[str, Any], context: AdapterContext | None = None) -> None:
        super().__init__(settings, context)
        s = self.settings
        path = self.context.resolve_path(s.session_file or f".bluesky-{self.context.name}.session")
        self.store = SessionFile(path, service=s.base_url, identifier=s.identifier)
        self._jetstream: JetstreamListener | None = None

    async def start(self) -> None:
        from .api import BlueskyApi  # the atproto SDK (0.5 s of CPU) is imported when a client is built

        self.api: BlueskyApi = BlueskyApi(self.settings, self.store, self.context.logger)
        await self.api.start()

    async def close(self) -> None:
        await self.api.close()

    # ------------------------------------------------------------ listening

    async def listen(self, cursor: str | None, *, follow: bool) -> AsyncIterator[EventPage]:
        from .api import BadRequestError, xrpc_error

        if self.settings.mode == "jetstream":
            from .jetstream import JetstreamListener

            if self._jetstream is None or self._jetstream.api is not self.api:
                self._jetstream = JetstreamListener(self.api, self.settings, self.network)
            source: AsyncIterator[EventPage] = self._jetstream.listen(cursor, follow)
        else:
            source = super().listen(cursor, follow=follow)  # PollingAdapter's loop around poll()
        try:
            async for page in source:
                yield page
        except BadRequestError as exc:
            raise FatalError(f"Bluesky refused a listening request: {xrpc_error(exc) or exc}") from None

    async def poll(self, cursor: PollCursor) -> AsyncIterator[EventPage]:
        async for page in Poller(self).poll(cursor):
            yield page

    # ------------------------------------------------------------ threads and profiles

    async def fetch_thread(self, root_id: str) -> list[Message]:
        """The root post and every reply under it (``app.bsky.feed.getPostThread``, depth 1000)."""
        from .api import BadRequestError, xrpc_error

        try:
            answer = await self.api.get_post_thread(root_id, 1000)
        except BadRequestError as exc:
            if xrpc_error(exc) == "NotFound":
                return []
            raise FatalError(f"Bluesky refused getPostThread: {xrpc_error(exc) or exc}") from None
        out: list[Message] = []
        stack = [answer.get("thread") or {}]
        while stack:
            node = stack.pop()
            if "post" not in node:
                continue  # notFoundPost / blockedPost
            out.append(message_from_view(node["post"], me=self.api.did, network=self.network))
            stack.extend(reversed(node.get("replies") or []))
        return out

    async def fetch_profile(self, account_id: str) -> SocialProfile:
        from .api import BadRequestError, xrpc_error

        try:
            return profile_from_view(await self.api.get_profile(account_id), self.network)
        except BadRequestError as exc:
            raise SkippableError(f"Bluesky has no profile {account_id!r}: {xrpc_error(exc) or exc}") from None

    # ------------------------------------------------------------ replies

    async def send_reply(self, in_reply_to: str, text: str, idempotency_key: str) -> SentReply:
        """Reply with a post whose record key comes from ``idempotency_key`` (see :func:`reply_rkey`).

        The record is ``app.bsky.feed.post`` with ``reply: {root, parent}``, both strong
        refs ``{uri, cid}``; the root is the parent's own root when the parent is a reply
        (https://docs.bsky.app/docs/advanced-guides/posts#replies). Before writing, the key's
        rkey is looked up with ``com.atproto.repo.getRecord``: found, it is the reply sent
        earlier and is returned as it is.
        """
        from .api import BadRequestError, xrpc_error

        if len(unicodedata.normalize("NFC", text)) > MAX_GRAPHEMES:  # code points >= graphemes: a safe bound
            raise SkippableError(f"a Bluesky post holds at most {MAX_GRAPHEMES} characters; this reply has {len(text)}")
        try:
            split_uri(in_reply_to)
        except ValueError:
            raise SkippableError(f"{in_reply_to!r} is not a Bluesky post URI") from None
        parents = await self.api.get_posts([in_reply_to])
        if not parents:
            raise SkippableError(f"the Bluesky post {in_reply_to} is gone (deleted, or its author blocked us)")
        parent = parents[0]
        if (parent.get("viewer") or {}).get("replyDisabled"):
            raise SkippableError(f"the author of {in_reply_to} does not allow our replies (thread gate)")
        indexed = parse_time(parent.get("indexedAt")) or parse_time((parent.get("record") or {}).get("createdAt"))
        if indexed is None:
            raise RetryableError(f"Bluesky gave no time for {in_reply_to}")
        rkey = reply_rkey(idempotency_key, us_from_time(indexed))
        earlier = await self.api.get_record(POST, rkey)
        if earlier is not None:
            return SentReply(message=self._sent(str(earlier["uri"]), dict(earlier.get("value") or {})))
        parent_ref = {"uri": str(parent["uri"]), "cid": str(parent["cid"])}
        root_ref = ((parent.get("record") or {}).get("reply") or {}).get("root") or parent_ref
        record: dict[str, Any] = {
            "$type": POST,
            "text": text,
            "createdAt": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "reply": {"root": {"uri": root_ref["uri"], "cid": root_ref["cid"]}, "parent": parent_ref},
        }
        try:
            created = await self.api.create_record(POST, rkey, record)
        except BadRequestError as exc:
            raise SkippableError(f"Bluesky refused the reply: {xrpc_error(exc) or exc}") from None
        return SentReply(message=self._sent(str(created["uri"]), record))

    def _sent(self, uri: str, record: dict[str, Any]) -> Message:
        me = SocialProfile(network=self.network, account_id=self.api.did, handle=self.api.handle or None)
        message = message_from_record(
            uri, record, me, me=self.api.did, fallback_time=datetime.now(UTC), network=self.network
        )
        return message.model_copy(update={"direction": Direction.outbound})
