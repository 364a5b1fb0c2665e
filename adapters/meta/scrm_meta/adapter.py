"""MetaAdapter: a Facebook Page or an Instagram professional account as a stream of scrm events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from scrm_core import (
    AdapterContext,
    Event,
    EventPage,
    Message,
    NetworkCapability,
    PollingAdapter,
    ReplyGuarantee,
    SentReply,
    SkippableError,
    SocialProfile,
)
from scrm_core.webhooks import WebhookAnswer, WebhookRequest

from .cursor import PollCursor
from .graph import GraphClient, GraphError, as_skippable
from .mapping import (
    FB_COMMENT_FIELDS,
    FB_POST_FIELDS,
    IG_COMMENT_FIELDS,
    IG_MEDIA_FIELDS,
    fb_comment,
    fb_post,
    ig_comment,
    ig_media,
)
from .poll import Timed, facebook_pass, facebook_thread, instagram_pass, instagram_thread
from .settings import MetaSettings
from .webhook import parse_payload, verify

__all__ = ["MetaAdapter"]

#: How many of a target's replies are searched for an earlier copy before posting.
REPLY_SEARCH_LIMIT = 500


class MetaAdapter(PollingAdapter[MetaSettings, PollCursor]):
    """One Facebook Page or one Instagram account per configured source (``platform`` setting).

    Messages carry ``network="facebook"`` or ``network="instagram"``: the two are different
    networks to the people on them and to the CRM, and replies go out through the source
    whose ``network`` matches the conversation's.
    """

    name = "meta"
    Settings = MetaSettings
    cursor_type = PollCursor
    reply_guarantee = ReplyGuarantee.look_before_post
    capabilities: ClassVar[frozenset[NetworkCapability]] = frozenset(
        {
            NetworkCapability.poll,
            NetworkCapability.webhook,
            NetworkCapability.reply,
            NetworkCapability.edits,
            NetworkCapability.deletes,
        }
    )
    webhook_headers: ClassVar[tuple[str, ...]] = ()  # parsing needs only the verified body

    def __init__(self, settings: MetaSettings | Mapping[str, Any], context: AdapterContext | None = None) -> None:
        super().__init__(settings, context)
        self.graph = GraphClient(self.settings, self.context.http)

    @property
    def network(self) -> str:
        return self.settings.platform

    async def close(self) -> None:
        await self.graph.aclose()

    # ------------------------------------------------------------ listening (poll)

    def parse_cursor(self, text: str | None) -> PollCursor:
        platform = self.settings.platform
        return PollCursor.read(text, platform) if text else PollCursor(platform)

    async def poll(self, position: PollCursor) -> AsyncIterator[EventPage]:
        one_pass = facebook_pass if self.settings.platform == "facebook" else instagram_pass
        found: dict[str, Timed] = {}
        rejects: list[tuple[str, str]] = []  # objects that could not be read; they go out with the first page
        for timed in await one_pass(self.graph, self.settings, position.second, rejects):
            if position.after(timed.second, timed.tag):
                found.setdefault(timed.tag, timed)  # a post seen twice while the feed shifted
        fresh = sorted(found.values(), key=lambda t: t.order)
        size = self.settings.page_size
        for start in range(0, len(fresh), size):
            chunk = fresh[start : start + size]
            for timed in chunk:
                position.advance(timed.second, timed.tag)
            yield EventPage(events=[t.event for t in chunk], cursor=position.dump(), rejects=rejects)
            rejects = []
        if rejects:
            yield EventPage(events=[], cursor=position.dump(), rejects=rejects)

    async def fetch_thread(self, root_id: str) -> list[Message]:
        graph, network, account = self.graph, self.settings.platform, self.settings.account_id
        try:
            if network == "facebook":
                node = await graph.get(root_id, fields=FB_POST_FIELDS)
                return [
                    fb_post(node, network=network, page_id=account),
                    *await facebook_thread(graph, self.settings, node),
                ]
            node = await graph.get(root_id, fields=IG_MEDIA_FIELDS)
            media = ig_media(node, network=network, ig_user_id=account)
            return [media, *await instagram_thread(graph, self.settings, root_id)]
        except GraphError as exc:
            raise as_skippable(exc, f"thread {root_id}") from None

    async def fetch_profile(self, account_id: str) -> SocialProfile:
        """Facebook: the person's name as the Page sees it. Instagram offers no lookup by commenter id."""
        if self.settings.platform != "facebook":
            raise SkippableError(
                "meta: Instagram has no profile lookup for commenters; the username comes with each comment"
            )
        try:
            node = await self.graph.get(account_id, fields="id,name")
        except GraphError as exc:
            raise as_skippable(exc, f"profile {account_id}") from None
        return SocialProfile(network="facebook", account_id=str(node["id"]), display_name=node.get("name"))

    # ------------------------------------------------------------ webhooks

    def verify_webhook(self, request: WebhookRequest) -> WebhookAnswer | None:
        return verify(request, self.settings)

    async def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[Event]:
        return await parse_payload(body, self.settings, self.graph)

    # ------------------------------------------------------------ replies

    async def send_reply(self, in_reply_to: str, text: str, idempotency_key: str) -> SentReply:
        """Post ``text`` under ``in_reply_to`` once.

        The Graph API takes no idempotency key, so before posting this looks for a reply
        by the configured account with exactly this text under the same parent (the
        newest :data:`REPLY_SEARCH_LIMIT` of them): after a lost answer the retry finds
        the first copy. The same text twice under one parent counts as one reply.
        """
        if not text.strip():
            raise SkippableError("meta: an empty reply cannot be posted")
        if self.settings.platform == "facebook":
            return SentReply(message=await self._facebook_reply(in_reply_to, text))
        return SentReply(message=await self._instagram_reply(in_reply_to, text))

    async def _facebook_reply(self, target: str, text: str) -> Message:
        """``POST /{post-or-comment-id}/comments`` (https://developers.facebook.com/docs/graph-api/reference/object/comments)."""
        graph, page_id = self.graph, self.settings.account_id
        post_id = _facebook_post_of(target, page_id)
        node = await self._earlier_reply(
            graph, f"{target}/comments", text, "message", FB_COMMENT_FIELDS, filter="toplevel"
        )
        if node is None:
            created = await self._write(graph, f"{target}/comments", target, message=text)
            node = await graph.get(str(created["id"]), fields=FB_COMMENT_FIELDS)
        return fb_comment(node, network="facebook", page_id=page_id, post_id=post_id)

    async def _instagram_reply(self, target: str, text: str) -> Message:
        """``POST /{ig-comment-id}/replies`` or, to the media itself, ``POST /{ig-media-id}/comments``.

        (https://developers.facebook.com/docs/instagram-api/reference/ig-comment/replies.)
        Instagram threads are two levels deep: a reply to a reply goes under its top-level comment.
        """
        graph, account = self.graph, self.settings.account_id
        try:
            comment = await graph.get(target, fields=IG_COMMENT_FIELDS)
        except GraphError as exc:
            if exc.gone or exc.code != 100:
                raise as_skippable(exc, f"replying to {target}") from None
            comment = None  # not a comment: a media id
        if comment is None:
            media_id, edge = target, f"{target}/comments"
        else:
            media_id = str(comment["media"]["id"])
            edge = f"{comment.get('parent_id') or target}/replies"
        node = await self._earlier_reply(graph, edge, text, "text", IG_COMMENT_FIELDS)
        if node is None:
            created = await self._write(graph, edge, target, message=text)
            node = await graph.get(str(created["id"]), fields=IG_COMMENT_FIELDS)
        return ig_comment(node, network="instagram", ig_user_id=account, media_id=media_id)

    async def _earlier_reply(
        self, graph: GraphClient, edge: str, text: str, text_field: str, fields: str, **params: Any
    ) -> dict[str, Any] | None:
        account, seen = self.settings.account_id, 0
        try:
            async for batch in graph.pages(edge, fields=fields, order="reverse_chronological", limit=100, **params):
                for node in batch:
                    if str((node.get("from") or {}).get("id")) == account and node.get(text_field) == text:
                        return node
                seen += len(batch)
                if seen >= REPLY_SEARCH_LIMIT:
                    return None
        except GraphError as exc:
            raise as_skippable(exc, f"replying under {edge.split('/')[0]}") from None
        return None

    @staticmethod
    async def _write(graph: GraphClient, edge: str, target: str, **data: Any) -> dict[str, Any]:
        try:
            return await graph.post(edge, **data)
        except GraphError as exc:
            raise as_skippable(exc, f"replying to {target}") from None


def _facebook_post_of(target: str, page_id: str) -> str:
    """The post a Facebook id belongs to, from the Graph's id shapes.

    Page post ids are ``<page id>_<post number>`` and comment ids ``<post number>_<comment
    number>`` (as seen in Graph answers; not a documented contract).
    """
    head, sep, _ = target.partition("_")
    if not sep or not head:
        raise SkippableError(f"meta: {target!r} is not a Facebook post or comment id (<number>_<number>)")
    return target if head == page_id else f"{page_id}_{head}"
