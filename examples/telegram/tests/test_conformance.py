"""The Telegram adapter against the whole network conformance suite, over HTTP, with its fake."""

from pathlib import Path

import pytest
from scrm_telegram import TelegramAdapter
from scrm_telegram.testing import GROUP, TOKEN, FakeTelegram

from scrm_core import Direction, Event, Message, MessageCreated, MessageEdited, NetworkAdapter, Visibility
from scrm_core.testing.network import NetworkAdapterConformance


class TestTelegram(NetworkAdapterConformance):
    network = "telegram"

    def make_fake(self, scenario: list[Event]) -> FakeTelegram:
        return FakeTelegram(scenario)

    def make_adapter(self, scenario: list[Event], tmp_path: Path) -> NetworkAdapter:
        return TelegramAdapter({"base_url": self.fake_url, "token": TOKEN, "page_size": 3})

    def expected_keys(self, scenario: list[Event]) -> list[str]:
        """Ids are "<chat>:<message>", edits are versioned by their update's id; no profile or
        deletion updates; the bot's own messages arrive only as the parent of a reply."""
        answered = {e.message.parent_id for e in scenario if isinstance(e, MessageCreated)}
        keys, update = [], 0
        for event in scenario:
            if isinstance(event, MessageCreated | MessageEdited):
                m = event.message
                key = f"telegram:{m.author.account_id if m.visibility is Visibility.direct else GROUP}:{m.id}"
                if m.direction is Direction.inbound:
                    update += 1
                    keys.append(f"e:{key}:v={update}" if isinstance(event, MessageEdited) else f"c:{key}")
                elif m.id in answered:
                    keys.append(f"c:{key}")
        return keys

    def network_replies(self, adapter: NetworkAdapter, target: Message) -> list[Message]:
        chat, _, mid = target.id.partition(":")
        sent = [m for m in self.fake.sent if m["reply_to_message"]["message_id"] == int(mid)]
        return [target.model_copy(update={"id": f"{chat}:{m['message_id']}", "text": m["text"]}) for m in sent]


class _AcknowledgesOnRead(TelegramAdapter):
    destructive_reads = False  # fetches from what it has read, so each getUpdates confirms the page before


def test_the_suite_catches_an_adapter_that_acknowledges_on_read(tmp_path: Path) -> None:
    suite = TestTelegram()
    suite._servers, suite._fake = [], None
    suite.make_adapter = lambda scenario, path: _AcknowledgesOnRead(  # type: ignore[method-assign]
        {"base_url": suite.fake_url, "token": TOKEN, "page_size": 3}
    )
    try:
        scenario = suite.scenario()
        pages = suite.run_drain(suite.make_adapter(scenario, tmp_path))
        suite.fresh_network()
        with pytest.raises(AssertionError, match="then a crash"):
            suite._check_resume_after_crash(scenario, pages, tmp_path, commit_upto=0)
    finally:
        for server in suite._servers:
            server.stop()
