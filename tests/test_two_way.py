"""Two-way, end to end: an agent's reply in each CRM reaches Mastodon once and comes back as outbound.

Everything real except the far ends: the engine, the Mastodon adapter (Mastodon.py over
HTTP to :class:`FakeMastodon`), and each CRM adapter against its store or fake (localcrm's
SQLite file; HubSpot's fake over HTTP; Salesforce's fake over HTTPS). The network fake loses
the answer to the reply's first POST, so the reply must be sent again with the same
idempotency key and still exist once on the network and once in the CRM. What the CRMs hold
is read from their stores directly, not through the adapters.
"""

from __future__ import annotations

import asyncio
import gc
import html
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from scrm.cli import app
from scrm.engine import Engine
from scrm.plugins import PluginHost
from scrm.store import ReplyRecord, ReplyStatus, open_store
from scrm_hubspot.testing import FakeHubSpot
from scrm_localcrm import add_reply
from scrm_mastodon.testing import FakeMastodon
from scrm_salesforce.testing import FakeSalesforce
from typer.testing import CliRunner

from scrm_core.testing.fakes import FakeServer
from scrm_core.testing.network import default_scenario
from tests.e2e import load, toml_inline

# In the default scenario, carol (account 1002) asks 105 "does the X200 work with 110V
# outlets?", the root of conversation mastodon:105; the brand answered it with 108.
CONVERSATION = "mastodon:105"
PARENT = "105"
TEXT = "Yes: the X200 takes 110 to 240 V, no adapter needed."
POSTED = f"@carol {TEXT}"  # the adapter mentions whom it answers, as Mastodon's apps do

RULES = """
[[routing.rules]]
name = "inbound opens a case"
when = { direction = "inbound" }
actions = [{ kind = "case" }]

[[routing.rules]]
name = "everything else"
actions = [{ kind = "log" }]
"""


# ---------------------------------------------------------------- the network side


@pytest.fixture
def mastodon() -> Iterator[tuple[FakeMastodon, FakeServer]]:
    fake = FakeMastodon()
    fake.load(default_scenario("mastodon"))
    with FakeServer(fake.app) as server:
        yield fake, server


def brand_statuses_with(fake: FakeMastodon, text: str) -> list[Any]:
    """The brand's statuses on the network whose text contains ``text`` (the fake's own records)."""
    with fake._lock:
        return [s for s in fake.statuses.values() if text in s.text and s.account_id == fake.brand_id]


def status_posts(fake: FakeMastodon) -> list[Any]:
    """Every POST /api/v1/statuses the fake answered."""
    return [r for r in list(fake.requests) if r.method == "POST" and r.path == "/api/v1/statuses"]


# ---------------------------------------------------------------- the CRM side


class Crm(Protocol):
    name: str

    def settings(self) -> dict[str, Any]: ...
    def has_inbound(self, message_id: str) -> bool: ...
    def agent_replies(self, text: str) -> str: ...  # the CRM's id of the agent's reply
    def assert_one_outbound(self, crm_id: str, text: str, status_id: str) -> None: ...
    def snapshot(self) -> Any: ...  # every record, to compare before and after a run


@dataclass
class LocalCrm:
    folder: Path
    name: str = "localcrm"

    @property
    def db(self) -> Path:
        return self.folder / "crm.db"

    def settings(self) -> dict[str, Any]:
        return {"path": "crm.db"}

    def _rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        con = sqlite3.connect(self.db)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def has_inbound(self, message_id: str) -> bool:
        rows = self._rows(
            "SELECT case_id FROM messages WHERE network = 'mastodon' AND message_id = ? AND direction = 'inbound'",
            message_id,
        )
        return len(rows) == 1 and rows[0][0] is not None

    def agent_replies(self, text: str) -> str:
        return str(add_reply(self.db, CONVERSATION, text))

    def assert_one_outbound(self, crm_id: str, text: str, status_id: str) -> None:
        replies = self._rows("SELECT id, status, network_message_id, in_reply_to FROM outbound_replies")
        assert replies == [(int(crm_id), "sent", status_id, PARENT)]
        messages = self._rows(
            "SELECT external_key, message_id, direction, conversation_key, parent_id FROM messages WHERE text LIKE ?",
            f"%{text}%",
        )
        assert messages == [(f"scrm:mastodon:{status_id}", status_id, "outbound", CONVERSATION, PARENT)]

    def snapshot(self) -> Any:
        return {
            table: self._rows(f"SELECT * FROM {table} ORDER BY id")
            for table in ("contacts", "profiles", "cases", "leads", "messages", "outbound_replies")
        }


@dataclass
class HubSpot:
    fake: FakeHubSpot
    server: FakeServer
    name: str = "hubspot"

    def settings(self) -> dict[str, Any]:
        return {"base_url": self.server.url, "access_token": FakeHubSpot.TOKEN, "timeout_seconds": 5.0}

    def has_inbound(self, message_id: str) -> bool:
        note = self.fake.find("notes", "scrm_key", f"scrm:mastodon:{message_id}")
        ticket = self.fake.find("tickets", "scrm_key", f"scrm:{CONVERSATION}")
        return note is not None and note.get("scrm_direction") == "inbound" and ticket is not None

    def agent_replies(self, text: str) -> str:
        """A note as an agent writes it on the conversation's ticket: outbound, no scrm key."""
        ticket = self.fake.find("tickets", "scrm_key", f"scrm:{CONVERSATION}")
        assert ticket is not None
        props = {"hs_note_body": f"<p>{html.escape(text)}</p>", "scrm_direction": "outbound"}
        props["hs_timestamp"] = "1714568400000"
        return self.fake.create("notes", props, associate=[("tickets", ticket["hs_object_id"], 228)])

    def assert_one_outbound(self, crm_id: str, text: str, status_id: str) -> None:
        notes = [n for n in self.fake.records("notes") if text in html.unescape(n.get("hs_note_body") or "")]
        assert [n["hs_object_id"] for n in notes] == [crm_id], f"notes holding the reply: {notes}"
        (note,) = notes
        assert note.get("scrm_key") == f"scrm:mastodon:{status_id}"
        assert note.get("scrm_message_id") == status_id and note.get("scrm_direction") == "outbound"
        keyed = [n for n in self.fake.records("notes") if n.get("scrm_key") == f"scrm:mastodon:{status_id}"]
        assert len(keyed) == 1, f"{len(keyed)} notes carry the sent message's key"
        ticket = self.fake.find("tickets", "scrm_key", f"scrm:{CONVERSATION}")
        assert ticket is not None and ticket["hs_object_id"] in self.fake.associations("notes", crm_id, "tickets")

    def snapshot(self) -> Any:
        return {t: self.fake.records(t) for t in ("contacts", "tickets", "notes")}


@dataclass
class Salesforce:
    fake: FakeSalesforce
    server: FakeServer
    name: str = "salesforce"

    def settings(self) -> dict[str, Any]:
        return {
            "auth": "client_credentials",
            "login_url": self.server.url,
            "client_id": self.fake.consumer_key,
            "client_secret": self.fake.client_secret,
            "ca_bundle": self.server.ca_file,
            "bulk_poll_seconds": 0,
            "timeout_seconds": 5.0,
        }

    def has_inbound(self, message_id: str) -> bool:
        post = self.fake.find("SocialPost", "ExternalPostId", message_id)
        return post is not None and not post.get("IsOutbound") and post.get("ParentId") is not None

    def agent_replies(self, text: str) -> str:
        parent = self.fake.find("SocialPost", "ExternalPostId", PARENT)
        assert parent is not None
        return self.fake.agent_reply(parent["Id"], text)

    def assert_one_outbound(self, crm_id: str, text: str, status_id: str) -> None:
        posts = [p for p in self.fake.records("SocialPost") if text in (p.get("Content") or "")]
        assert [p["Id"] for p in posts] == [crm_id], f"SocialPosts holding the reply: {posts}"
        (post,) = posts
        assert post["IsOutbound"] is True and post["ExternalPostId"] == status_id
        assert post.get("Scrm_Key__c") == f"scrm:mastodon:{status_id}"
        parent = self.fake.find("SocialPost", "ExternalPostId", PARENT)
        assert parent is not None and post["ReplyToId"] == parent["Id"]

    def snapshot(self) -> Any:
        return {t: self.fake.records(t) for t in ("Contact", "SocialPersona", "Case", "SocialPost")}


@pytest.fixture(params=["localcrm", "hubspot", "salesforce"])
def crm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Crm]:
    if request.param == "localcrm":
        yield LocalCrm(tmp_path)
        return
    if request.param == "hubspot":
        hub = FakeHubSpot(with_properties=True)
        server = FakeServer(hub.app)
        under: Crm = HubSpot(hub, server)
    else:
        sf = FakeSalesforce()
        server = FakeServer(sf.app, tls=True)
        under = Salesforce(sf, server)
    yield under
    gc.collect()  # drop caught responses holding keep-alive sockets, so stop() need not wait for them
    server.stop()


# ---------------------------------------------------------------- config, runs, state store


def write_config(folder: Path, crm: Crm, mastodon_url: str, *, replies_enabled: bool = True) -> Path:
    source = toml_inline({"base_url": mastodon_url, "access_token": FakeMastodon.TOKEN, "timeout_seconds": 5.0})
    text = (
        f'[state]\nurl = "sqlite:///state.db"\n\n[crm]\nadapter = "{crm.name}"\n'
        f"settings = {toml_inline(crm.settings())}\n"
        f'\n[[sources]]\nname = "social"\nadapter = "mastodon"\nsettings = {source}\n'
        "\n[engine]\nbatch_window_ms = 0\nretry_max_seconds = 0.01\n"
        f"\n[replies]\nclaim_seconds = 1\nenabled = {str(replies_enabled).lower()}\n"
        f"{RULES}"
    )
    path = folder / "scrm.toml"
    path.write_text(text)
    return path


def run(config: Path) -> None:
    host = PluginHost(env={}).load()
    asyncio.run(Engine(load(config, host), host).run(follow=False, handle_signals=False))


def replies(folder: Path) -> list[ReplyRecord]:
    store = open_store("sqlite:///state.db", folder)
    try:
        return store.replies([], limit=100)
    finally:
        store.close()


# ---------------------------------------------------------------- the promise


def sync_and_reply_with_a_lost_answer(crm: Crm, fake: FakeMastodon, config: Path) -> tuple[str, Any, Any]:
    """Steps 1-3: the conversation lands in the CRM, an agent answers it there, the network
    takes the reply but its answer is lost. Returns the agent's record id, the status and the POST."""
    run(config)  # the conversation lands in the CRM, with a case to reply on
    assert crm.has_inbound(PARENT), f"{CONVERSATION} did not reach {crm.name}"
    assert not status_posts(fake) and not replies(config.parent)

    crm_id = crm.agent_replies(TEXT)

    fake.lose_next_response()
    run(config)  # posted, but the answer is lost: the reply stays pending
    (posted,) = brand_statuses_with(fake, TEXT)
    (first,) = status_posts(fake)
    assert (first.status, first.fault) == (502, "lost_response") and first.idempotency_key
    (reply,) = replies(config.parent)
    assert (reply.origin, reply.crm_id, reply.in_reply_to) == ("crm", crm_id, PARENT)
    assert reply.status is ReplyStatus.pending and reply.error, (reply.status, reply.error)
    assert reply.network_message_id is None
    return crm_id, posted, first


def assert_sent_once(crm: Crm, fake: FakeMastodon, folder: Path, crm_id: str, posted: Any, first: Any) -> None:
    """The retry went out with the same key: one status on the network, one record in the CRM."""
    statuses = brand_statuses_with(fake, TEXT)
    assert [s.id for s in statuses] == [posted.id], "the reply is on the network exactly once"
    assert (posted.text, posted.in_reply_to_id, posted.account_id) == (POSTED, PARENT, fake.brand_id)
    assert posted.visibility == "public"  # the parent's
    assert [(r.status, r.idempotency_key) for r in status_posts(fake)] == [
        (502, first.idempotency_key),
        (200, first.idempotency_key),
    ]
    (reply,) = replies(folder)
    assert (reply.status, reply.network_message_id, reply.attempts) == (ReplyStatus.sent, posted.id, 2)
    crm.assert_one_outbound(crm_id, TEXT, posted.id)


def assert_a_run_changes_nothing(crm: Crm, fake: FakeMastodon, config: Path, crm_id: str, posted: Any) -> None:
    network_before, crm_before = dict(fake.statuses), crm.snapshot()
    run(config)
    assert dict(fake.statuses) == network_before and len(status_posts(fake)) == 2
    assert crm.snapshot() == crm_before
    assert [(r.status, r.attempts) for r in replies(config.parent)] == [(ReplyStatus.sent, 2)]
    crm.assert_one_outbound(crm_id, TEXT, posted.id)


def test_an_agents_reply_reaches_mastodon_once_and_comes_back_as_outbound(
    crm: Crm, mastodon: tuple[FakeMastodon, FakeServer], tmp_path: Path
) -> None:
    fake, server = mastodon
    config = write_config(tmp_path, crm, server.url)
    crm_id, posted, first = sync_and_reply_with_a_lost_answer(crm, fake, config)
    run(config)  # sent again with the same key: the network answers with the same status
    assert_sent_once(crm, fake, tmp_path, crm_id, posted, first)
    assert_a_run_changes_nothing(crm, fake, config, crm_id, posted)


def test_the_networks_copy_read_before_the_retry_is_folded_into_the_agents_record(
    crm: Crm, mastodon: tuple[FakeMastodon, FakeServer], tmp_path: Path
) -> None:
    """After the lost answer, a sync reads the brand's new status from the network (and copies
    it to the CRM) before the reply is retried: the CRM must still end with one record of it."""
    fake, server = mastodon
    config = write_config(tmp_path, crm, server.url)
    crm_id, posted, first = sync_and_reply_with_a_lost_answer(crm, fake, config)
    write_config(tmp_path, crm, server.url, replies_enabled=False)
    run(config)  # listening only: the status comes in from the network
    assert replies(tmp_path)[0].status is ReplyStatus.pending and len(status_posts(fake)) == 1
    write_config(tmp_path, crm, server.url)
    run(config)  # the retry: same key, same status; reply_sent, then the sync-back
    assert_sent_once(crm, fake, tmp_path, crm_id, posted, first)
    assert_a_run_changes_nothing(crm, fake, config, crm_id, posted)


def test_scrm_reply_on_the_command_line_posts_once_and_lands_as_outbound(
    mastodon: tuple[FakeMastodon, FakeServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, server = mastodon
    local = LocalCrm(tmp_path)
    config = write_config(tmp_path, local, server.url)
    run(config)
    assert local.has_inbound(PARENT)
    monkeypatch.setenv("COLUMNS", "250")  # rich's tables: one line per reply
    cli = CliRunner()

    done = cli.invoke(app, ["reply", CONVERSATION, TEXT, "-c", str(config)])
    assert done.exit_code == 0, (done.output, done.exception)
    (posted,) = brand_statuses_with(fake, TEXT)
    assert (posted.text, posted.in_reply_to_id) == (POSTED, PARENT)
    assert f"sent: network id {posted.id}" in done.output
    (reply,) = replies(tmp_path)
    assert (reply.origin, reply.status, reply.network_message_id) == ("cli", ReplyStatus.sent, posted.id)
    rows = local._rows(
        "SELECT external_key, message_id, direction, conversation_key FROM messages WHERE text LIKE ?", f"%{TEXT}%"
    )
    assert rows == [(f"scrm:mastodon:{posted.id}", posted.id, "outbound", CONVERSATION)]

    listed = cli.invoke(app, ["replies", "list", "-c", str(config)])
    assert listed.exit_code == 0, (listed.output, listed.exception)
    (line,) = [ln for ln in listed.output.splitlines() if posted.id in ln]
    cells = [c.strip() for c in line.strip().strip("│┃|").split("│")]
    assert cells[:7] == [str(reply.id), "sent", "cli", CONVERSATION, PARENT, "1", posted.id], cells

    run(config)  # a later sync posts nothing and copies nothing twice
    assert len(brand_statuses_with(fake, TEXT)) == 1 and len(status_posts(fake)) == 1
    assert len(local._rows("SELECT id FROM messages WHERE text LIKE ?", f"%{TEXT}%")) == 1
