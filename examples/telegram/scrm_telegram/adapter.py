"""Telegram's Bot API (https://core.telegram.org/bots/api): no update for a bot's own messages nor for
deletions; a reply names only its parent, so one to a message the bot never saw starts a thread."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import Field, SecretStr

from scrm_core import (
    Batch,
    Direction,
    FatalError,
    HttpSettings,
    JsonCursor,
    LRUCache,
    Message,
    MessageCreated,
    MessageEdited,
    NetworkCapability,
    PollingAdapter,
    PollingSettings,
    ReplyGuarantee,
    RetryableError,
    SentReply,
    SkippableError,
    SocialProfile,
    Visibility,
)


class TelegramSettings(HttpSettings, PollingSettings):
    base_url: str = "https://api.telegram.org"
    token: SecretStr = Field(description="The bot's token from @BotFather.")
    page_size: int = Field(default=100, ge=1, le=100, description="Updates per getUpdates call.")


class Offset(JsonCursor):
    prefix = "tg1:"
    offset: int = 0  # the next update_id; getUpdates with it confirms (forgets) every update below


class TelegramAdapter(PollingAdapter[TelegramSettings, Offset]):
    name = "telegram"
    Settings = TelegramSettings
    cursor_type = Offset
    item_id_field = "update_id"
    capabilities = frozenset({NetworkCapability.poll, NetworkCapability.reply, NetworkCapability.edits})
    reply_guarantee = ReplyGuarantee.at_most_once  # no idempotency key, no way to look before posting
    destructive_reads = True

    async def start(self) -> None:
        token = self.settings.token.get_secret_value()
        self.api = self.http_api(f"{self.settings.base_url}/bot{token}", credentials="the token setting")
        self.roots: LRUCache[str, str] = LRUCache(maxsize=50_000)  # message -> its thread's root

    async def call(self, method: str, refused: type[Exception] = SkippableError, **params: Any) -> Any:
        answer = await self.api.post_json(f"/{method}", json=params, timeout=self.settings.timeout_seconds + 30)
        if not answer.get("ok"):
            raise refused(f"telegram: {method}: {answer.get('description')}")
        return answer["result"]

    async def fetch(self, cursor: Offset) -> Batch[Offset]:
        wait = int(self.poll_seconds) if self.following else 0  # long polling while following
        params = {"offset": cursor.offset, "limit": self.page_size, "timeout": wait}
        updates = await self.call("getUpdates", FatalError, **params)
        after = Offset(offset=updates[-1]["update_id"] + 1) if updates else cursor
        return Batch(updates, after, more=len(updates) == self.page_size)

    def to_events(self, update: dict[str, Any]) -> list[MessageCreated | MessageEdited]:
        if "edited_message" in update:  # edit_date has whole seconds: the update's id tells edits apart
            return [MessageEdited(message=self.message(update["edited_message"]), version=str(update["update_id"]))]
        msg = update.get("message") or {}
        if "text" not in msg:
            return []  # joins, photos without a caption, other kinds of update
        parent = msg.get("reply_to_message") or {}
        own = parent and parent["from"].get("is_bot") and self.key(parent) not in self.roots
        first = [MessageCreated(message=self.message(parent))] if own else []  # the bot's: no update of its own
        return [*first, MessageCreated(message=self.message(msg))]

    def key(self, msg: dict[str, Any]) -> str:
        return f"{msg['chat']['id']}:{msg['message_id']}"

    def message(self, msg: dict[str, Any]) -> Message:
        sender, mid, parent = msg["from"], self.key(msg), msg.get("reply_to_message")
        parent_id = self.key(parent) if parent else None
        root = self.roots.get(parent_id, parent_id) if parent_id else None
        self.roots[mid] = root or mid
        text = msg.get("text") or ""
        tags = [text[e["offset"] : e["offset"] + e["length"]] for e in msg.get("entities", [])]
        name = " ".join(filter(None, [sender.get("first_name"), sender.get("last_name")]))
        author = SocialProfile(network=self.name, account_id=str(sender["id"]), handle=sender.get("username"))
        return Message(
            network=self.name,
            id=mid,
            author=author.model_copy(update={"display_name": name or None}),
            text=text,
            created_at=datetime.fromtimestamp(msg["date"], UTC),
            edited_at=datetime.fromtimestamp(msg["edit_date"], UTC) if msg.get("edit_date") else None,
            thread_root_id=root,
            parent_id=parent_id,
            visibility=Visibility.direct if msg["chat"].get("type") == "private" else Visibility.public,
            direction=Direction.outbound if sender.get("is_bot") else Direction.inbound,
            mentions=[t[1:] for t in tags if t.startswith("@")],
            hashtags=[t[1:] for t in tags if t.startswith("#")],
        )

    async def send_reply(self, in_reply_to: str, text: str, idempotency_key: str) -> SentReply:
        chat, _, message_id = in_reply_to.partition(":")
        target = {"message_id": int(message_id)}
        try:
            sent = await self.call("sendMessage", chat_id=int(chat), text=text, reply_parameters=target)
        except RetryableError as exc:
            if exc.retry_after is not None:
                raise  # refused for its rate: nothing was posted, trying again is safe
            raise SkippableError(f"telegram: the reply may or may not be posted ({exc}); check the chat") from exc
        return SentReply(message=self.message(sent))
