"""scrm-telegram: a Telegram Bot API network adapter, written from docs/writing-adapters.md alone."""

from .adapter import Offset, TelegramAdapter, TelegramSettings

__all__ = ["Offset", "TelegramAdapter", "TelegramSettings"]
