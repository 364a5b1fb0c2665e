"""Telegram through the Bot API: the groups and private chats the bot is in (https://core.telegram.org/bots/api)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import Field, SecretStr

from scrm_core import (
    Batch,
    Direction,
    Event,
    HttpApi,
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

NETWORK = "telegram"


class TelegramSettings(HttpSettings, PollingSettings):
    base_url: str = "https://api.telegram.org"
    token: SecretStr = Field(description="The bot's token from @BotFather.")
    page_size: int = Field(default=100, ge=1, le=100, description="Updates per getUpdates call.")


class Offset(JsonCursor):
    prefix = "tg1:"
    offset: int = 0  # the next update_id wanted; getUpdates with it confirms every update below


class TelegramAdapter(PollingAdapter[TelegramSettings, Offset]):
    """Bots get no update for their own messages nor for deletions, and cannot read a chat
    back, so replies are at most once."""

    name = NETWORK
    Settings = TelegramSettings
    cursor_type = Offset
    capabilities = frozenset({NetworkCapability.poll, NetworkCapability.reply, NetworkCapability.edits})
    reply_guarantee = ReplyGuarantee.at_most_once
    destructive_reads = True  # getUpdates forgets what it confirmed

    async def start(self) -> None:
        token = self.settings.token.get_secret_value()
        url = f"{self.settings.base_url}/bot{token}"
        self.api = HttpApi(NETWORK, url, http=self.context.http, credentials="the token setting")
        self.roots: LRUCache[str, str] = LRUCache(maxsize=50_000)  # message -> its thread's root

    async def close(self) -> None:
        await self.api.aclose()

    async def call(self, method: str, **params: Any) -> Any:
        answer = await self.api.post_json(f"/{method}", json=params, timeout=self.settings.timeout_seconds + 30)
        if not answer.get("ok"):
            raise SkippableError(f"telegram: {method}: {answer.get('description')}")
        return answer["result"]

    async def fetch(self, cursor: Offset) -> Batch[Offset]:
        wait = int(self.poll_seconds) if self.following else 0  # long polling while following
        updates = await self.call("getUpdates", offset=cursor.offset, limit=self.page_size, timeout=wait)
        after = Offset(offset=updates[-1]["update_id"] + 1) if updates else cursor
        return Batch(updates, after, more=len(updates) == self.page_size)

    def item_id(self, item: Any) -> str:
        return str(item["update_id"])

    def to_events(self, update: dict[str, Any]) -> list[Event]:
        if "edited_message" in update:  # edit_date has whole seconds: the update id tells edits apart
            edit = self.message(update["edited_message"])
            return [MessageEdited(message=edit, version=str(update["update_id"]))]
        if "message" not in update or "text" not in update["message"]:
            return []  # joins, photos without caption, other update kinds
        events: list[Event] = []
        parent = update["message"].get("reply_to_message")
        if parent and parent["from"].get("is_bot") and self.key(parent) not in self.roots:
            events.append(MessageCreated(message=self.message(parent)))  # the bot's own: no update of its own
        return [*events, MessageCreated(message=self.message(update["message"]))]

    def key(self, msg: dict[str, Any]) -> str:
        return f"{msg['chat']['id']}:{msg['message_id']}"

    def message(self, msg: dict[str, Any]) -> Message:
        sender, mid, parent = msg["from"], self.key(msg), msg.get("reply_to_message")
        parent_id = self.key(parent) if parent else None
        root = self.roots.get(parent_id, parent_id) if parent_id else None  # Telegram names the parent only
        self.roots[mid] = root or mid
        text = msg.get("text") or msg.get("caption") or ""
        tags = [text[e["offset"] : e["offset"] + e["length"]] for e in msg.get("entities", [])]
        name = " ".join(filter(None, [sender.get("first_name"), sender.get("last_name")]))
        author = SocialProfile(
            network=NETWORK, account_id=str(sender["id"]), handle=sender.get("username"), display_name=name or None
        )
        edited = msg.get("edit_date")
        return Message(
            network=NETWORK,
            id=mid,
            author=author,
            text=text,
            created_at=datetime.fromtimestamp(msg["date"], UTC),
            edited_at=datetime.fromtimestamp(edited, UTC) if edited else None,
            thread_root_id=root,
            parent_id=parent_id,
            visibility=Visibility.direct if msg["chat"].get("type") == "private" else Visibility.public,
            direction=Direction.outbound if sender.get("is_bot") else Direction.inbound,
            mentions=[t[1:] for t in tags if t.startswith("@")],
            hashtags=[t[1:] for t in tags if t.startswith("#")],
        )

    async def send_reply(self, in_reply_to: str, text: str, idempotency_key: str) -> SentReply:
        chat, _, message_id = in_reply_to.partition(":")
        try:
            sent = await self.call(
                "sendMessage", chat_id=int(chat), text=text, reply_parameters={"message_id": int(message_id)}
            )
        except RetryableError as exc:
            if exc.retry_after is not None:
                raise  # refused for its rate: nothing was posted
            # No answer: it may have been posted, and a bot cannot look. Never post it again.
            raise SkippableError(
                f"telegram: the reply may or may not have been posted ({exc}); check the chat"
            ) from exc
        return SentReply(message=self.message(sent))
