"""FakeTelegram: the Bot API methods the adapter uses, as the Bot API documents them.

Enforced (https://core.telegram.org/bots/api):

* every method is ``/bot<token>/<method>``; a wrong token is 401 ``Unauthorized``;
  answers are ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code",
  "description", "parameters": {"retry_after"}}`` ("Making requests");
* ``getUpdates``: ``offset``, ``limit`` 1-100 (default 100). "An update is considered
  confirmed as soon as getUpdates is called with an offset higher than its update_id":
  confirmed updates are forgotten for good (the destructive read);
* a bot receives no update for its own messages, and none for a deletion; a reply's
  ``reply_to_message`` carries the parent without its own ``reply_to_message``;
* ``sendMessage``: ``text`` 1-4096 characters, ``reply_parameters.message_id`` must
  exist in that chat ("Bad Request: message to be replied not found");
* flood control: 429 with ``parameters.retry_after`` (armed with ``faults``).

A test sees what the bot posted in :attr:`FakeTelegram.sent`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from scrm_core import Event, Message, MessageCreated, MessageEdited, Visibility
from scrm_core.testing import Fault, FaultInjector

__all__ = ["GROUP", "TOKEN", "FakeTelegram"]

TOKEN = "123:fake-token"  # noqa: S105 (a fake's token)
GROUP = -1001  # the supergroup public messages are in; direct messages are private chats
BOT = {"id": 1004, "is_bot": True, "first_name": "Brand", "username": "brand_bot"}


class FakeTelegram:
    def __init__(self, scenario: list[Event] = (), *, bot_id: int = 1004) -> None:  # type: ignore[assignment]
        self.faults = FaultInjector()
        self.bot_id = bot_id
        self.updates: list[dict[str, Any]] = []  # not yet confirmed
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.sent: list[dict[str, Any]] = []
        self._next_update, self._lock = 1, threading.Lock()
        for event in scenario:
            if isinstance(event, MessageCreated | MessageEdited):
                self.post(event.message, edited=isinstance(event, MessageEdited))

    def post(self, m: Message, *, edited: bool = False) -> None:
        """A message of the scenario reaches the chat (the bot's own ones make no update)."""
        chat = {"id": int(m.author.account_id), "type": "private"} if m.visibility is Visibility.direct else None
        is_bot = int(m.author.account_id) == self.bot_id
        msg: dict[str, Any] = {
            "message_id": int(m.id),
            "from": {"id": int(m.author.account_id), "is_bot": is_bot, "first_name": m.author.display_name or "x"},
            "chat": chat or {"id": GROUP, "type": "supergroup", "title": "Acme"},
            "date": int(m.created_at.timestamp()),
            "text": m.text,
        }
        if m.author.handle:
            msg["from"]["username"] = m.author.handle
        if m.parent_id is not None:
            parent = dict(self.messages[(msg["chat"]["id"], int(m.parent_id))])
            parent.pop("reply_to_message", None)  # one level only
            msg["reply_to_message"] = parent
        if edited:
            msg["edit_date"] = int((m.edited_at or m.created_at).timestamp())
        self.messages[(msg["chat"]["id"], msg["message_id"])] = msg
        if not is_bot:
            self._update("edited_message" if edited else "message", msg)

    def _update(self, kind: str, msg: dict[str, Any]) -> None:
        with self._lock:
            self.updates.append({"update_id": self._next_update, kind: msg})
            self._next_update += 1

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/bot{token}/{method}", self._call, methods=["GET", "POST"])])

    async def _call(self, request: Request) -> Response:
        if request.path_params["token"] != TOKEN:
            return _error(401, "Unauthorized")
        if self.faults.take_armed(Fault.rate_limited):
            return _error(429, "Too Many Requests: retry after 1", retry_after=1)
        args = dict(request.query_params)
        if request.method == "POST":
            args.update(await request.json())
        method = request.path_params["method"]
        if method == "getUpdates":
            return self._get_updates(args)
        if method == "sendMessage":
            return self._send_message(args)
        return _error(404, "Not Found")

    def _get_updates(self, args: dict[str, Any]) -> Response:
        limit = int(args.get("limit", 100))
        if not 1 <= limit <= 100:
            return _error(400, "Bad Request: limit must be between 1 and 100")
        offset = int(args.get("offset", 0))
        with self._lock:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]  # confirmed: gone for good
            return JSONResponse({"ok": True, "result": self.updates[:limit]})

    def _send_message(self, args: dict[str, Any]) -> Response:
        chat, text = int(args["chat_id"]), str(args.get("text", ""))
        if not 1 <= len(text) <= 4096:
            return _error(400, "Bad Request: message text is empty" if not text else "Bad Request: message is too long")
        parent_id = (args.get("reply_parameters") or {}).get("message_id")
        parent = self.messages.get((chat, int(parent_id))) if parent_id is not None else None
        if parent_id is not None and parent is None:
            return _error(400, "Bad Request: message to be replied not found")
        ids = [mid for (c, mid) in self.messages if c == chat]  # ids are per chat, in order
        msg: dict[str, Any] = {"message_id": max(ids, default=0) + 1, "from": BOT, "chat": {"id": chat}, "text": text}
        msg["date"] = int(time.time())
        if parent is not None:
            msg["reply_to_message"] = {k: v for k, v in parent.items() if k != "reply_to_message"}
        self.messages[(chat, msg["message_id"])] = msg
        self.sent.append(msg)
        if self.faults.take_armed(Fault.lost_response):
            return Response("Bad Gateway", status_code=502)  # posted, answer lost
        return JSONResponse({"ok": True, "result": msg})


def _error(code: int, description: str, **parameters: Any) -> Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=code)
