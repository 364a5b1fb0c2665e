"""Replies going out: queued by `scrm reply` or found in the CRM, sent once, synced back as outbound."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from scrm.engine import Engine
from scrm.engine.replies import MAY_HAVE_POSTED, POSTING
from scrm.plugins import PluginHost
from scrm.store import NewReply, ReplyStatus, open_store
from scrm_localcrm import add_reply

from scrm_core import MessageCreated, ReplyDraft, ReplyGuarantee, SentReply, hookimpl
from tests import testnet
from tests.e2e import load, toml_inline


@pytest.fixture
def net() -> testnet.Network:
    name = uuid.uuid4().hex
    network = testnet.NETWORKS[name] = testnet.Network()
    network.events = [
        MessageCreated(message=testnet.customer_message("1", "my kettle broke, please help")),
        MessageCreated(message=testnet.customer_message("2", "still waiting", parent="1")),
        MessageCreated(message=testnet.customer_message("3", "where do I buy one?", author="u2")),
    ]
    return network


def network_id(net: testnet.Network) -> str:
    return next(k for k, v in testnet.NETWORKS.items() if v is net)


@pytest.fixture
def host() -> PluginHost:
    host = PluginHost(env={}).load()
    host.register(testnet, "testnet")
    return host


def write(folder: Path, net: testnet.Network, extra: str = "") -> Path:
    settings = toml_inline({"network_id": network_id(net)})
    text = (
        '[state]\nurl = "sqlite:///state.db"\n[crm]\nadapter = "localcrm"\nsettings = { path = "crm.db" }\n'
        f'[[sources]]\nname = "loop"\nadapter = "testnet"\nsettings = {settings}\n'
        "[engine]\nbatch_window_ms = 0\nretry_max_seconds = 0.01\n"
        f"[replies]\nclaim_seconds = 0.5\n{extra}"
    )
    path = folder / "scrm.toml"
    path.write_text(text)
    return path


def run(path: Path, host: PluginHost, *, listen: bool = True) -> None:
    asyncio.run(Engine(load(path, host), host).run(follow=False, handle_signals=False, listen=listen))


def queue(folder: Path, text: str, *, to: str = "2", key: str | None = None) -> int:
    store = open_store("sqlite:///state.db", folder)
    try:
        store.migrate()
        (reply,) = store.enqueue_replies([NewReply(key or f"cli-{uuid.uuid4().hex}", "cli", "testnet:1", to, text)])
        return reply.id
    finally:
        store.close()


def reply_row(folder: Path, reply_id: int) -> tuple[ReplyStatus, str | None, str | None, int]:
    store = open_store("sqlite:///state.db", folder)
    try:
        r = store.reply(reply_id)
        return r.status, r.network_message_id, r.error, r.attempts
    finally:
        store.close()


def crm_outbound(folder: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(folder / "crm.db") as con:
        return con.execute(
            "SELECT external_key, message_id, text FROM messages WHERE direction = 'outbound' ORDER BY id"
        ).fetchall()


def test_a_queued_reply_is_sent_once_and_comes_back_as_outbound(
    tmp_path: Path, host: PluginHost, net: testnet.Network
) -> None:
    config = write(tmp_path, net)
    run(config, host)  # the conversation is known
    reply_id = queue(tmp_path, "We are sending a new kettle.")
    run(config, host, listen=False)
    assert [m.text for m in net.posts] == ["We are sending a new kettle."]
    posted = net.posts[0]
    assert posted.parent_id == "2" and posted.thread_root_id == "1"
    status, network_id_, _, attempts = reply_row(tmp_path, reply_id)
    assert (status, network_id_, attempts) == (ReplyStatus.sent, posted.id, 1)
    assert crm_outbound(tmp_path) == [(f"scrm:testnet:{posted.id}", posted.id, "We are sending a new kettle.")]
    run(config, host)  # nothing is sent again, nothing copied twice
    assert len(net.posts) == 1 and len(crm_outbound(tmp_path)) == 1


def test_an_agents_reply_in_the_crm_goes_out_once_and_is_marked_sent(
    tmp_path: Path, host: PluginHost, net: testnet.Network
) -> None:
    config = write(tmp_path, net)
    run(config, host)
    crm_reply = add_reply(tmp_path / "crm.db", "testnet:1", "Thanks, a replacement is on its way.")
    run(config, host)
    run(config, host)  # a second poll finds nothing new
    assert [m.text for m in net.posts] == ["Thanks, a replacement is on its way."]
    assert net.posts[0].parent_id == "2"  # the conversation's latest inbound message
    with sqlite3.connect(tmp_path / "crm.db") as con:
        status, sent_id = con.execute(
            "SELECT status, network_message_id FROM outbound_replies WHERE id = ?", (crm_reply,)
        ).fetchone()
    assert (status, sent_id) == ("sent", net.posts[0].id)
    assert [row[1] for row in crm_outbound(tmp_path)] == [net.posts[0].id]


def test_a_lost_answer_is_retried_with_the_same_key_and_posts_once(
    tmp_path: Path, host: PluginHost, net: testnet.Network
) -> None:
    config = write(tmp_path, net)
    run(config, host)
    reply_id = queue(tmp_path, "Sorry about that!")
    net.lose_next_answers = 1
    run(config, host, listen=False)
    status, _, error, _ = reply_row(tmp_path, reply_id)
    assert status is ReplyStatus.pending and error and "lost" in error
    assert len(net.posts) == 1  # the network did apply it
    run(config, host, listen=False)
    status, sent_id, _, attempts = reply_row(tmp_path, reply_id)
    assert (status, sent_id, attempts) == (ReplyStatus.sent, net.posts[0].id, 2)
    assert len(net.posts) == 1 and len(crm_outbound(tmp_path)) == 1


def test_a_sender_that_died_mid_send_is_taken_over_after_its_claim_expires(
    tmp_path: Path, host: PluginHost, net: testnet.Network
) -> None:
    config = write(tmp_path, net)
    run(config, host)
    reply_id = queue(tmp_path, "On it.")
    store = open_store("sqlite:///state.db", tmp_path)
    try:
        assert store.claim_reply(reply_id, 60) is not None  # a sender claims it, then dies
        assert store.claim_reply(reply_id, 60) is None  # nobody else may send it meanwhile
        run(config, host, listen=False)
        assert store.reply(reply_id).status is ReplyStatus.sending and not net.posts
        # claim_seconds = 0.5 in the config: once it has passed, the next run takes over.
        store._conn.execute("UPDATE replies SET claimed_at = '2000-01-01T00:00:00+00:00'")
        store._conn.commit()
    finally:
        store.close()
    run(config, host, listen=False)
    assert reply_row(tmp_path, reply_id)[0] is ReplyStatus.sent and len(net.posts) == 1


def test_a_reply_the_network_will_never_take_fails_and_the_others_still_go(
    tmp_path: Path, host: PluginHost, net: testnet.Network
) -> None:
    config = write(tmp_path, net)
    run(config, host)
    net.refuse.add("2")
    doomed = queue(tmp_path, "to a message that is gone", to="2")
    fine = queue(tmp_path, "to one that is there", to="1")
    run(config, host, listen=False)
    status, _, error, _ = reply_row(tmp_path, doomed)
    assert status is ReplyStatus.failed and error == "message 2 cannot be answered"
    assert reply_row(tmp_path, fine)[0] is ReplyStatus.sent
    assert [m.text for m in net.posts] == ["to one that is there"]


class Gatekeeper:
    """A scrm_before_reply plugin: refuses passwords, holds refunds, signs everything else."""

    @hookimpl
    def scrm_before_reply(self, draft: ReplyDraft) -> ReplyDraft | None:
        if "password" in draft.text:
            return draft.model_copy(update={"refused": "never ask for passwords"})
        if "refund" in draft.text:
            return draft.model_copy(update={"hold": True})
        return draft.model_copy(update={"text": draft.text + " ^AC"})


def test_before_reply_holds_changes_and_refuses(tmp_path: Path, host: PluginHost, net: testnet.Network) -> None:
    host.register(Gatekeeper(), "gatekeeper")
    config = write(tmp_path, net)
    run(config, host)
    refused = queue(tmp_path, "send us your password")
    held = queue(tmp_path, "a refund is coming")
    signed = queue(tmp_path, "thanks!")
    run(config, host, listen=False)
    assert reply_row(tmp_path, refused)[:3:2] == (ReplyStatus.refused, "never ask for passwords")
    assert reply_row(tmp_path, held)[0] is ReplyStatus.held
    assert reply_row(tmp_path, signed)[0] is ReplyStatus.sent
    assert [m.text for m in net.posts] == ["thanks! ^AC"]  # the changed text is what went out
    store = open_store("sqlite:///state.db", tmp_path)
    try:
        store.update_reply(held, ReplyStatus.pending, approved=True)  # what `scrm replies approve` does
        actions = [entry.action for _, entry in store.audit_log(20)]
    finally:
        store.close()
    assert "reply.refused" in actions and "reply.held" in actions and "reply.sent" in actions
    run(config, host, listen=False)
    assert reply_row(tmp_path, held)[0] is ReplyStatus.sent
    assert [m.text for m in net.posts] == ["thanks! ^AC", "a refund is coming"]  # approved: not asked again


def test_a_reply_to_a_network_without_a_source_fails_with_the_reason(
    tmp_path: Path, host: PluginHost, net: testnet.Network
) -> None:
    config = write(tmp_path, net)
    run(config, host)
    store = open_store("sqlite:///state.db", tmp_path)
    try:
        (reply,) = store.enqueue_replies([NewReply("k-1", "cli", "mastodon:77", "77", "hello")])
    finally:
        store.close()
    run(config, host, listen=False)
    status, _, error, _ = reply_row(tmp_path, reply.id)
    assert status is ReplyStatus.failed and error is not None and "'mastodon'" in error


def test_replies_can_be_switched_off(tmp_path: Path, host: PluginHost, net: testnet.Network) -> None:
    config = write(tmp_path, net, extra="enabled = false\n")
    run(config, host)
    reply_id = queue(tmp_path, "not now")
    run(config, host)
    assert reply_row(tmp_path, reply_id)[0] is ReplyStatus.pending and not net.posts


def test_the_same_idempotency_key_is_queued_once(tmp_path: Path, host: PluginHost, net: testnet.Network) -> None:
    config = write(tmp_path, net)
    run(config, host)
    first = queue(tmp_path, "once", key="fixed-key")
    again = queue(tmp_path, "once", key="fixed-key")
    assert first == again
    run(config, host, listen=False)
    assert len(net.posts) == 1


# ---------------------------------------------------------------- declared reply guarantees
# An at-most-once network (no idempotency key, no way to read its own posts back: a Telegram
# bot) is never posted to twice: a reply whose post may have started when scrm stopped fails
# with a reason for the agent. A network with a key is sent again with the same key.


def _stop_after_posting(monkeypatch: pytest.MonkeyPatch, net: testnet.Network) -> None:
    """The next ``send_reply`` reaches the network, then scrm stops before hearing the answer."""
    original = testnet.LoopbackNetAdapter.send_reply

    async def send_then_stop(self: Any, in_reply_to: str, text: str, key: str) -> SentReply:
        await original(self, in_reply_to, text, key)
        monkeypatch.setattr(testnet.LoopbackNetAdapter, "send_reply", original)
        raise KeyboardInterrupt  # the process is being stopped mid-post

    monkeypatch.setattr(testnet.LoopbackNetAdapter, "send_reply", send_then_stop)


def test_an_at_most_once_reply_interrupted_mid_post_fails_with_a_reason_and_is_not_posted_again(
    tmp_path: Path, host: PluginHost, net: testnet.Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(testnet.LoopbackNetAdapter, "reply_guarantee", ReplyGuarantee.at_most_once)
    config = write(tmp_path, net)
    run(config, host)
    reply_id = queue(tmp_path, "A replacement is on its way.")
    _stop_after_posting(monkeypatch, net)
    with pytest.raises(KeyboardInterrupt):
        run(config, host, listen=False)
    status, _, error, _ = reply_row(tmp_path, reply_id)
    assert error == POSTING and status is ReplyStatus.pending
    run(config, host, listen=False)
    status, _, error, _ = reply_row(tmp_path, reply_id)
    assert (status, error) == (ReplyStatus.failed, MAY_HAVE_POSTED)
    assert len(net.posts) == 1  # posted once, never again


def test_an_at_most_once_reply_that_was_answered_is_recorded_not_posted_again(
    tmp_path: Path, host: PluginHost, net: testnet.Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(testnet.LoopbackNetAdapter, "reply_guarantee", ReplyGuarantee.at_most_once)
    config = write(tmp_path, net)
    run(config, host)
    reply_id = queue(tmp_path, "Thanks!")
    run(config, host, listen=False)
    status, sent_id, error, _ = reply_row(tmp_path, reply_id)
    assert (status, sent_id, error) == (ReplyStatus.sent, net.posts[0].id, None)
    run(config, host, listen=False)
    assert len(net.posts) == 1


def test_a_keyed_reply_interrupted_mid_post_is_sent_again_with_its_key_and_posts_once(
    tmp_path: Path, host: PluginHost, net: testnet.Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(testnet.LoopbackNetAdapter, "reply_guarantee", ReplyGuarantee.idempotency_key)
    config = write(tmp_path, net)
    run(config, host)
    reply_id = queue(tmp_path, "A replacement is on its way.")
    _stop_after_posting(monkeypatch, net)
    with pytest.raises(KeyboardInterrupt):
        run(config, host, listen=False)
    run(config, host, listen=False)
    status, sent_id, _, _ = reply_row(tmp_path, reply_id)
    assert (status, sent_id) == (ReplyStatus.sent, net.posts[0].id)
    assert len(net.posts) == 1  # the key kept the retry single
