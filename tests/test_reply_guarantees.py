"""The engine keeps each adapter's declared reply guarantee across interruptions.

An at-most-once network (no idempotency key, no way to read its own posts back: a
Telegram bot) must never be posted to twice: a reply whose post may have started when
scrm stopped fails with a reason for the agent instead of being sent again. A network
with a key is simply sent again with the same key (it posts once).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from scrm_core import ReplyGuarantee, SentReply
from scrm_core.engine.replies import MAY_HAVE_POSTED, POSTING
from scrm_core.plugins import PluginHost
from scrm_core.store import ReplyStatus
from tests import testnet
from tests.test_replies import host, net, queue, reply_row, run, write  # noqa: F401 (fixtures)


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
