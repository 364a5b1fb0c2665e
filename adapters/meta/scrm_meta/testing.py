"""A stateful fake of Meta's Graph API for a Facebook Page and an Instagram account, and its webhooks.

It speaks the wire format a Graph client sees, so an adapter that works against it makes
the calls it would make against ``graph.facebook.com``:

* Facebook: ``GET /{v}/{page-id}/feed`` (posts newest first), ``GET /{v}/{id}``,
  ``GET /{v}/{post-or-comment-id}/comments`` (``filter=stream|toplevel``,
  ``order=chronological|reverse_chronological``; ``parent`` on replies),
  ``POST /{v}/{post-or-comment-id}/comments`` (``message``) answering ``{"id"}``; post ids
  ``<page id>_<n>``, comment ids ``<post n>_<n>``; a post's ``updated_time`` moves when it
  is edited or commented on;
* Instagram: ``GET /{v}/{ig-user-id}/media``, ``GET /{v}/{media-id}/comments`` (top level),
  ``GET /{v}/{comment-id}/replies``, ``POST /{v}/{comment-id}/replies`` and
  ``POST /{v}/{media-id}/comments``;
* ``fields=`` is honoured at the top level, and a field the node type lacks is refused
  with ``(#100) Tried accessing nonexisting field`` as the Graph does;
* cursor paging: ``{"data": [...], "paging": {"cursors": {"before", "after"}, "next"}}``
  (``next`` only when there is more), ``limit`` capped at 100;
* the access token (``Authorization: Bearer`` or ``access_token=``) is checked: a bad one
  is answered with ``{"error": {"message", "type": "OAuthException", "code": 190,
  "fbtrace_id"}}``; a permission the token lacks with code 200 naming it; a deleted or
  unknown object with code 100, subcode 33;
* every answer carries ``X-App-Usage`` and ``X-Business-Use-Case-Usage``;
  :meth:`rate_limit_next` refuses the next request with code 32 (Page request limit,
  ``estimated_time_to_regain_access`` in the BUC header) and the injector's
  ``rate_limited`` fault with code 4 (app limit); ``lost_response`` applies a write and
  answers 502; ``server_error`` answers code 2 with ``is_transient``;
* webhooks: :meth:`webhook_payloads` turns scrm events into ``feed`` (Page) or
  ``comments`` (Instagram) change notifications, :meth:`signed_delivery` signs a payload
  with ``X-Hub-Signature-256`` exactly as Meta does, and :meth:`verification_request`
  builds the ``hub.mode`` / ``hub.verify_token`` / ``hub.challenge`` handshake.

HTTP statuses of errors (400 for token and object errors, 403 for permissions, 400 for
rate limits) are from memory; clients should go by the ``code``.

Meta documentation this follows:
https://developers.facebook.com/docs/graph-api/reference/page/feed,
https://developers.facebook.com/docs/graph-api/reference/object/comments,
https://developers.facebook.com/docs/graph-api/results (paging),
https://developers.facebook.com/docs/graph-api/guides/error-handling,
https://developers.facebook.com/docs/graph-api/overview/rate-limiting,
https://developers.facebook.com/docs/graph-api/webhooks/getting-started,
https://developers.facebook.com/docs/graph-api/webhooks/reference/page/#feed,
https://developers.facebook.com/docs/graph-api/webhooks/reference/instagram/#comments,
https://developers.facebook.com/docs/instagram-api/reference/ig-comment/replies.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import threading
import urllib.parse
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scrm_core.models import (
    Direction,
    Event,
    Message,
    MessageCreated,
    MessageDeleted,
    MessageEdited,
    ProfileUpdated,
    Visibility,
)
from scrm_core.testing.fakes import Fault, FaultInjector
from scrm_core.webhooks import WebhookRequest, hmac_sha256_hex

__all__ = ["FakeMeta", "MetaNode"]

MAX_LIMIT = 100
READ_FB, WRITE_FB = "pages_read_engagement", "pages_manage_engagement"
READ_IG, WRITE_IG = "instagram_basic", "instagram_manage_comments"
ALL_PERMISSIONS = frozenset({READ_FB, WRITE_FB, READ_IG, WRITE_IG, "pages_read_user_content"})

_FIELDS = {
    "post": {"id", "message", "created_time", "updated_time", "from", "permalink_url", "message_tags"},
    "comment": {"id", "message", "created_time", "from", "parent", "permalink_url", "message_tags"},
    "media": {"id", "caption", "timestamp", "username", "permalink", "comments_count", "media_type"},
    "ig_comment": {"id", "text", "timestamp", "username", "from", "parent_id", "media"},
}
_NODE_TYPE = {"post": "PagePost", "comment": "Comment", "media": "IGMedia", "ig_comment": "IGComment"}


@dataclass
class MetaNode:
    """A post, comment, IG media or IG comment as the fake keeps it."""

    id: str
    kind: str  # post | comment | media | ig_comment
    author_id: str
    text: str
    created: datetime
    updated: datetime
    root_id: str  # the post or media (itself for roots)
    parent_id: str | None = None  # the comment it replies to (None: the root)
    deleted: bool = False
    children: list[str] = field(default_factory=list)


class _Refused(Exception):
    def __init__(
        self, status: int, code: int, message: str, subcode: int | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
        if subcode is not None:
            error["error_subcode"] = subcode
        if code in (1, 2):
            error["is_transient"] = True
        error["fbtrace_id"] = uuid.uuid4().hex[:11]
        self.status, self.body, self.headers = status, {"error": error}, headers or {}


def _graph_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


class FakeMeta:
    """A Facebook Page and an Instagram account in memory. ``app`` is the ASGI app to serve.

    :param page_id, page_name: the Page (the author of outbound Facebook messages).
    :param ig_user_id, ig_username: the Instagram professional account.
    :param tokens: valid Page access tokens.
    :param permissions: what the tokens were granted; None: every permission.
    """

    TOKEN = "fake-page-access-token"  # noqa: S105 - test values, not credentials
    APP_SECRET = "fake-app-secret"  # noqa: S105
    VERIFY_TOKEN = "fake-verify-token"  # noqa: S105

    def __init__(
        self,
        *,
        page_id: str = "9000",
        page_name: str = "Acme Kettles",
        ig_user_id: str = "17841400000000000",
        ig_username: str = "acmekettles",
        tokens: Iterable[str] = (TOKEN,),
        app_secret: str = APP_SECRET,
        verify_token: str = VERIFY_TOKEN,
        permissions: Collection[str] | None = None,
        faults: FaultInjector | None = None,
    ) -> None:
        self.page_id, self.page_name = page_id, page_name
        self.ig_user_id, self.ig_username = ig_user_id, ig_username
        self.tokens = set(tokens)
        self.app_secret, self.verify_token = app_secret, verify_token
        self.permissions = ALL_PERMISSIONS if permissions is None else frozenset(permissions)
        self.faults = faults or FaultInjector()
        self.nodes: dict[str, MetaNode] = {}
        #: account id -> (name, username)
        self.people: dict[str, tuple[str, str]] = {
            page_id: (page_name, page_name),
            ig_user_id: (ig_username, ig_username),
        }
        self.requests: list[tuple[str, str, int]] = []
        self.refusals = 0  # rate-limit refusals given
        self._ids = itertools.count(5001)
        self._lock = threading.Lock()
        self.app = self._build_app()

    # ------------------------------------------------------------ test controls

    def rate_limit_next(self) -> None:
        """Refuse the next request with code 32 (Page request limit reached)."""
        self.faults.arm(Fault.rate_limited)

    def lose_next_response(self) -> None:
        """Apply the next write, then answer 502 as a proxy that lost the answer."""
        self.faults.arm(Fault.lost_response)

    def replies_to(self, node_id: str) -> list[MetaNode]:
        with self._lock:
            return [self.nodes[c] for c in self.nodes[node_id].children if not self.nodes[c].deleted]

    # ------------------------------------------------------------ state, as people would change it

    def add_post(self, author_id: str, text: str, at: datetime, *, post_id: str | None = None) -> str:
        with self._lock:
            pid = post_id or f"{self.page_id}_{next(self._ids)}"
            self.nodes[pid] = MetaNode(pid, "post", author_id, text, at, at, root_id=pid)
            return pid

    def add_media(self, caption: str, at: datetime, *, media_id: str | None = None) -> str:
        with self._lock:
            mid = media_id or str(next(self._ids))
            self.nodes[mid] = MetaNode(mid, "media", self.ig_user_id, caption, at, at, root_id=mid)
            return mid

    def add_comment(
        self, parent_id: str, author_id: str, text: str, at: datetime, *, comment_id: str | None = None
    ) -> str:
        with self._lock:
            return self._comment(parent_id, author_id, text, at, comment_id).id

    def edit(self, node_id: str, text: str, at: datetime) -> None:
        with self._lock:
            node = self.nodes[node_id]
            node.text, node.updated = text, at
            if node.kind == "comment":
                self._touch(node.root_id, at)

    def remove(self, node_id: str) -> None:
        with self._lock:
            self.nodes[node_id].deleted = True

    def _comment(self, parent_id: str, author_id: str, text: str, at: datetime, comment_id: str | None) -> MetaNode:
        parent = self.nodes[parent_id]
        instagram = parent.kind in ("media", "ig_comment")
        if instagram and parent.kind == "ig_comment" and parent.parent_id is not None:
            parent = self.nodes[parent.parent_id]  # Instagram threads are two levels deep
        root = self.nodes[parent.root_id]
        if comment_id is None:
            n = next(self._ids)
            comment_id = str(n) if instagram else f"{root.id.rsplit('_', 1)[-1]}_{n}"
        node = MetaNode(
            comment_id,
            "ig_comment" if instagram else "comment",
            author_id,
            text,
            at,
            at,
            root_id=root.id,
            parent_id=None if parent.id == root.id else parent.id,
        )
        self.nodes[comment_id] = node
        parent.children.append(comment_id)
        self._touch(root.id, at)
        return node

    def _touch(self, root_id: str, at: datetime) -> None:
        root = self.nodes[root_id]
        if root.kind == "post":  # a post's updated_time moves with every comment
            root.updated = max(root.updated, at)

    # ------------------------------------------------------------ seeding from scrm events

    def load(self, events: Iterable[Event], *, platform: str = "facebook") -> None:
        """Apply scrm events as they would have happened on the platform.

        Roots become posts (Facebook) or media (Instagram), replies comments. Messages by the
        brand (``direction=outbound``) are authored by the Page / the IG account. Direct
        messages belong to the Messenger / Instagram Messaging APIs, not to these edges: they
        are skipped. ProfileUpdated changes the stored name (Facebook shows a Page only
        people's names, no handles) and username (Instagram).
        """
        for event in events:
            if isinstance(event, ProfileUpdated):
                p = event.profile
                with self._lock:
                    self.people[p.account_id] = (p.display_name or p.handle or p.account_id, p.handle or p.account_id)
            elif isinstance(event, MessageCreated):
                self._load_message(event.message, platform)
            elif isinstance(event, MessageEdited):
                if event.message.id in self.nodes:
                    self.edit(event.message.id, event.message.text, event.message.edited_at or event.message.created_at)
            elif isinstance(event, MessageDeleted) and event.message_id in self.nodes:
                self.remove(event.message_id)

    def _load_message(self, m: Message, platform: str) -> None:
        if m.visibility is Visibility.direct:
            return
        account = self.page_id if platform == "facebook" else self.ig_user_id
        author = account if m.direction is Direction.outbound else m.author.account_id
        if author not in self.people:
            name = m.author.display_name or m.author.handle or author
            self.people[author] = (name, m.author.handle or name)
        if m.parent_id is None:
            if platform == "facebook":
                self.add_post(author, m.text, m.created_at, post_id=m.id)
            else:
                self.add_media(m.text, m.created_at, media_id=m.id)
        elif m.parent_id in self.nodes:
            self.add_comment(m.parent_id, author, m.text, m.created_at, comment_id=m.id)

    # ------------------------------------------------------------ webhooks, as Meta sends them

    def webhook_payloads(
        self, events: Iterable[Event], *, platform: str = "facebook", per_payload: int = 3
    ) -> list[dict[str, Any]]:
        """``feed`` (Page) or ``comments`` (Instagram) notifications for scrm events, a few entries per payload.

        Instagram notifies new comments only: media, edits and deletions produce nothing.
        """
        entries: list[dict[str, Any]] = []
        kinds: dict[str, Message] = {}
        account = self.page_id if platform == "facebook" else self.ig_user_id
        for event in events:
            change: dict[str, Any] | None = None
            when: datetime | None = None
            if isinstance(event, MessageCreated | MessageEdited):
                m = event.message
                if m.visibility is Visibility.direct:
                    continue
                kinds.setdefault(m.id, m)
                if isinstance(event, MessageEdited):
                    when = m.edited_at
                    change = self._feed_value(m, "edited") if platform == "facebook" else None
                else:
                    when = m.created_at
                    change = self._feed_value(m, "add") if platform == "facebook" else self._ig_value(m)
            elif isinstance(event, MessageDeleted) and platform == "facebook" and event.message_id in kinds:
                when = event.deleted_at
                change = self._feed_value(kinds[event.message_id], "remove")
            if change is None:
                continue
            field_name = "feed" if platform == "facebook" else "comments"
            stamp = int((when or datetime.now(UTC)).timestamp())
            entries.append({"id": account, "time": stamp, "changes": [{"field": field_name, "value": change}]})
        obj = "page" if platform == "facebook" else "instagram"
        return [{"object": obj, "entry": entries[i : i + per_payload]} for i in range(0, len(entries), per_payload)]

    def _author(self, m: Message, account: str) -> tuple[str, str, str]:
        author = account if m.direction is Direction.outbound else m.author.account_id
        name, username = self.people.get(author, (m.author.display_name or author, m.author.handle or author))
        return author, name, username

    def _feed_value(self, m: Message, verb: str) -> dict[str, Any]:
        author, name, _ = self._author(m, self.page_id)
        root = m.thread_root_id or m.id
        value: dict[str, Any] = {
            "from": {"id": author, "name": name},
            "post_id": root,
            "verb": verb,
            "created_time": int(m.created_at.timestamp()),
        }
        if m.parent_id is None:
            value |= {"item": "status", "published": 1}
        else:
            value |= {"item": "comment", "comment_id": m.id, "parent_id": m.parent_id}
        if verb != "remove":
            value["message"] = m.text
        return value

    def _ig_value(self, m: Message) -> dict[str, Any] | None:
        if m.parent_id is None:
            return None  # the account's own media: no comments notification
        author, _, username = self._author(m, self.ig_user_id)
        value: dict[str, Any] = {
            "from": {"id": author, "username": username},
            "media": {"id": m.thread_root_id, "media_product_type": "FEED"},
            "id": m.id,
            "text": m.text,
        }
        if m.parent_id != m.thread_root_id:
            value["parent_id"] = m.parent_id
        return value

    def signed_delivery(self, payload: dict[str, Any] | bytes, *, secret: str | None = None) -> WebhookRequest:
        """A POST exactly as Meta delivers it: the JSON bytes and ``X-Hub-Signature-256`` over them."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
        signature = "sha256=" + hmac_sha256_hex(secret if secret is not None else self.app_secret, body)
        headers = {
            "content-type": "application/json",
            "x-hub-signature-256": signature,
            "user-agent": "facebookexternalua",
        }
        return WebhookRequest("POST", headers, {}, body)

    def verification_request(
        self, *, token: str | None = None, mode: str = "subscribe", challenge: str = "1158201444"
    ) -> WebhookRequest:
        """The GET Meta sends when a callback URL is set up in the App Dashboard."""
        query = {"hub.mode": mode, "hub.challenge": challenge, "hub.verify_token": token or self.verify_token}
        return WebhookRequest("GET", {}, query, b"")

    # ------------------------------------------------------------ the Graph API

    def _authenticate(self, authorization: str | None, query: dict[str, str]) -> None:
        token = query.get("access_token")
        if authorization and authorization.lower().startswith(("bearer ", "oauth ")):
            token = authorization.split(" ", 1)[1].strip()
        if not token:
            raise _Refused(
                400, 2500, "An active access token must be used to query information about the current user."
            )
        if token not in self.tokens:
            raise _Refused(400, 190, "Invalid OAuth access token - Cannot parse access token")

    def _need(self, permission: str) -> None:
        if permission not in self.permissions:
            raise _Refused(403, 200, f"(#200) Requires {permission} permission to manage the object")

    def _node(self, node_id: str) -> MetaNode:
        node = self.nodes.get(node_id)
        if node is None or node.deleted:
            raise _Refused(
                400,
                100,
                f"Unsupported get request. Object with ID '{node_id}' does not exist, cannot be loaded due to "
                "missing permissions, or does not support this operation.",
                subcode=33,
            )
        return node

    def _render(self, node: MetaNode, fields: str | None) -> dict[str, Any]:
        wanted = _top_level(fields) if fields else {"id", "message" if node.kind in ("post", "comment") else "text"}
        unknown = sorted(wanted - _FIELDS[node.kind])
        if unknown:
            raise _Refused(
                400,
                100,
                f"(#100) Tried accessing nonexisting field ({unknown[0]}) on node type ({_NODE_TYPE[node.kind]})",
            )
        name, username = self.people.get(node.author_id, (node.author_id, node.author_id))
        full: dict[str, Any]
        if node.kind in ("post", "comment"):
            full = {
                "id": node.id,
                "message": node.text,
                "created_time": _graph_time(node.created),
                "from": {"id": node.author_id, "name": name},
                "permalink_url": f"https://www.facebook.com/{node.root_id}"
                + ("" if node.kind == "post" else f"?comment_id={node.id}"),
                "message_tags": [],
            }
            if node.kind == "post":
                full["updated_time"] = _graph_time(node.updated)
            elif node.parent_id:
                full["parent"] = {"id": node.parent_id}
        elif node.kind == "media":
            full = {
                "id": node.id,
                "caption": node.text,
                "timestamp": _graph_time(node.created),
                "username": self.ig_username,
                "permalink": f"https://www.instagram.com/p/{node.id}/",
                "comments_count": sum(
                    1 for n in self.nodes.values() if n.root_id == node.id and n.id != node.id and not n.deleted
                ),
                "media_type": "IMAGE",
            }
        else:
            full = {
                "id": node.id,
                "text": node.text,
                "timestamp": _graph_time(node.created),
                "username": username,
                "from": {"id": node.author_id, "username": username},
                "media": {"id": node.root_id},
            }
            if node.parent_id:
                full["parent_id"] = node.parent_id
        return {k: v for k, v in full.items() if k in wanted or k == "id"}

    def _page(self, nodes: list[MetaNode], query: dict[str, str], url: str) -> dict[str, Any]:
        limit = max(1, min(int(query.get("limit") or 25), MAX_LIMIT))
        after = query.get("after")
        start = _decode_cursor(after) if after else 0
        chunk = nodes[start : start + limit]
        body: dict[str, Any] = {"data": [self._render(n, query.get("fields")) for n in chunk]}
        if chunk:
            paging: dict[str, Any] = {
                "cursors": {"before": _encode_cursor(start), "after": _encode_cursor(start + len(chunk) - 1 + 1)}
            }
            if start + len(chunk) < len(nodes):
                paging["next"] = url + "?" + urllib.parse.urlencode({**query, "after": paging["cursors"]["after"]})
            body["paging"] = paging
        return body

    def _get(self, parts: list[str], query: dict[str, str], url: str) -> dict[str, Any]:
        if len(parts) == 1:
            node = self._node(parts[0])
            self._need(READ_IG if node.kind in ("media", "ig_comment") else READ_FB)
            return self._render(node, query.get("fields"))
        if len(parts) != 2:
            raise _Refused(400, 100, "Unsupported get request.")
        owner, edge = parts
        live = [n for n in self.nodes.values() if not n.deleted]
        if edge == "feed" and owner == self.page_id:
            self._need(READ_FB)
            posts = sorted((n for n in live if n.kind == "post"), key=lambda n: (n.created, n.id), reverse=True)
            return self._page(posts, query, url)
        if edge == "media" and owner == self.ig_user_id:
            self._need(READ_IG)
            media = sorted((n for n in live if n.kind == "media"), key=lambda n: (n.created, n.id), reverse=True)
            return self._page(media, query, url)
        node = self._node(owner)
        if edge == "comments" and node.kind in ("post", "comment"):
            self._need(READ_FB)
            if node.kind == "post" and query.get("filter") == "stream":
                found = [n for n in live if n.root_id == node.id and n.kind == "comment"]
            else:
                found = [self.nodes[c] for c in node.children if not self.nodes[c].deleted]
            found.sort(key=lambda n: (n.created, n.id), reverse=query.get("order") == "reverse_chronological")
            return self._page(found, query, url)
        if (edge == "comments" and node.kind == "media") or (edge == "replies" and node.kind == "ig_comment"):
            self._need(READ_IG)
            found = sorted(
                (self.nodes[c] for c in node.children if not self.nodes[c].deleted), key=lambda n: (n.created, n.id)
            )
            if query.get("order") == "reverse_chronological":
                found.reverse()
            return self._page(found, query, url)
        raise _Refused(400, 100, f"(#100) Unknown edge {edge!r} on this node")

    def _post(self, parts: list[str], form: dict[str, str]) -> dict[str, Any]:
        if len(parts) != 2:
            raise _Refused(400, 100, "Unsupported post request.")
        target, edge = parts
        node = self._node(target)
        instagram = node.kind in ("media", "ig_comment")
        if (edge, instagram) not in (("comments", False), ("comments", True), ("replies", True)) or (
            instagram and (edge == "replies") != (node.kind == "ig_comment")
        ):
            raise _Refused(400, 100, f"(#100) Cannot post to edge {edge!r} of this node")
        self._need(WRITE_IG if instagram else WRITE_FB)
        text = form.get("message", "")
        if not text:
            raise _Refused(400, 100, "(#100) The parameter message is required")
        author = self.ig_user_id if instagram else self.page_id
        return {"id": self._comment(target, author, text, datetime.now(UTC).replace(microsecond=0), None).id}

    def _usage_headers(self, exhausted: bool = False) -> dict[str, str]:
        pct = 100 if exhausted else 3
        buc = {
            self.page_id: [
                {
                    "type": "pages",
                    "call_count": pct,
                    "total_cputime": 1,
                    "total_time": 1,
                    "estimated_time_to_regain_access": 1 if exhausted else 0,
                }
            ]
        }
        return {
            "x-app-usage": json.dumps({"call_count": pct, "total_time": 1, "total_cputime": 1}),
            "x-business-use-case-usage": json.dumps(buc),
        }

    def _build_app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        async def api(request: Request) -> Response:
            raw = await request.body()
            query = dict(request.query_params)
            parts = [p for p in request.url.path.split("/") if p][1:]  # drop the version
            fault, status, body, headers = Fault.none, 200, {}, self._usage_headers()
            write = request.method == "POST"
            with self._lock:
                try:
                    self._authenticate(request.headers.get("authorization"), query)
                    if self.faults.take_armed(Fault.rate_limited):  # answered as a Page limit (code 32)
                        self.refusals += 1
                        raise _Refused(400, 32, "(#32) Page request limit reached", headers=self._usage_headers(True))
                    fault = self.faults.roll()
                    if fault is Fault.rate_limited:
                        self.refusals += 1
                        raise _Refused(
                            400, 4, "(#4) Application request limit reached", headers=self._usage_headers(True)
                        )
                    if fault is Fault.server_error:
                        raise _Refused(500, 2, "An unexpected error has occurred. Please retry your request later.")
                    if write:
                        form = dict(urllib.parse.parse_qsl(raw.decode())) if raw else {}
                        form |= {k: v for k, v in query.items() if k == "message"}
                        body = self._post(parts, form)
                        if self.faults.take_armed(Fault.lost_response):
                            fault = Fault.lost_response
                    else:
                        body = self._get(parts, query, str(request.url).split("?")[0])
                except _Refused as refused:
                    status, body = refused.status, refused.body
                    headers = {**headers, **refused.headers}
                self.requests.append(
                    (request.method, request.url.path, 502 if fault is Fault.lost_response else status)
                )
            if fault is Fault.timeout:
                await asyncio.sleep(self.faults.timeout_seconds)
            if fault is Fault.lost_response:
                return Response("<html>502 Bad Gateway</html>", status_code=502, media_type="text/html")
            return JSONResponse(body, status_code=status, headers=headers)

        return Starlette(routes=[Route("/{path:path}", api, methods=["GET", "POST"])])


def _top_level(fields: str) -> set[str]:
    """``id,from{id,name},parent{id}`` -> {id, from, parent}."""
    names, depth, current = set(), 0, ""
    for ch in fields:
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth -= 1
        elif ch == "," and depth == 0:
            names.add(current.strip())
            current = ""
            continue
        if depth == 0 and ch not in "})":
            current += ch
    names.add(current.strip())
    return {n.split(".")[0] for n in names if n}


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return int(text.removeprefix("offset:"))
    except (ValueError, UnicodeDecodeError):
        raise _Refused(400, 100, "(#100) Invalid cursor") from None
