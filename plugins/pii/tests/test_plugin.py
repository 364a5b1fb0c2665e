import asyncio
from datetime import UTC, datetime
from pathlib import Path

import scrm_intent.plugin
import scrm_pii.plugin
from scrm.engine.ingest import Ingestor
from scrm.plugins import PluginHost
from scrm.store import AsyncStore, StateStore, open_store

from scrm_core import Message, MessageCreated, MessageEdited, SocialProfile
from scrm_core.config import Config, ListeningConfig
from scrm_core.models import EventPage

CARD_TEXT = "Refund to 4111 1111 1111 1111 please, or call +1 415 555 2671"
REDACTED = "Refund to [card] please, or call [phone]"


def message(text: str, edited_at: datetime | None = None) -> Message:
    author = SocialProfile(network="x", account_id="42", followers=10)
    return Message(network="x", id="7", author=author, text=text, created_at=datetime.now(UTC), edited_at=edited_at)


def host() -> PluginHost:
    h = PluginHost(env={})
    h.register(scrm_intent.plugin, "intent")
    h.register(scrm_pii.plugin, "pii")
    return h


def understand(m: Message) -> None:
    asyncio.run(Ingestor(None, host().hooks, Config.model_construct(listening=ListeningConfig())).understand(m))  # type: ignore[arg-type]


def test_the_text_is_rewritten_before_any_other_plugin_reads_it_and_labelled() -> None:
    m = message(CARD_TEXT)
    understand(m)
    assert m.text == REDACTED
    # intent ran after redaction: it saw the masked text and still found the complaint.
    assert m.labels == ["pii:card", "pii:phone", "intent:complaint"]


def test_a_clean_message_is_untouched() -> None:
    m = message("where is my order #100234987?")
    understand(m)
    assert m.text == "where is my order #100234987?"
    assert not [x for x in m.labels if x.startswith("pii:")]


def test_nothing_sent_to_the_crm_carries_the_number(tmp_path: Path) -> None:
    """Through the real ingest path: created and edited messages, case subject included."""

    async def run() -> list[str]:
        store = AsyncStore(lambda: open_store("sqlite:///state.db", tmp_path))
        await store.call(StateStore.migrate)
        ingest = Ingestor(store, host().hooks, Config.model_construct(listening=ListeningConfig()))
        try:
            created = await ingest.process(
                "x", EventPage(events=[MessageCreated(message=message(CARD_TEXT))], cursor="1")
            )
            await store.call(StateStore.commit_page, created)
            edit = message(CARD_TEXT + " thanks", edited_at=datetime.now(UTC))
            edited = await ingest.process("x", EventPage(events=[MessageEdited(message=edit)], cursor="2"))
        finally:
            await store.close()
        return [str(op.fields) for op in created.ops + edited.ops] + [c.subject for c in created.conversations]

    written = asyncio.run(run())
    assert any(REDACTED in w for w in written)
    assert any(REDACTED + " thanks" in w for w in written)  # the edit
    assert not any("4111" in w or "555 2671" in w for w in written)


def test_optional_entry_point_is_off_until_enabled() -> None:
    assert "pii" not in PluginHost(env={}).load().plugins
    host = PluginHost(env={"SCRM_ENABLE_PLUGINS": "pii"}).load()
    assert host.plugins["pii"].error is None
    assert host.plugins["pii"].hooks == ["scrm_redact_text"]
