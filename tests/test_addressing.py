"""``message.addressed_to_us`` and ``when.addressed_to_us``: replies to, mentions of and direct
messages to the company's own accounts ([company] accounts)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from scrm.config import load_config
from scrm.engine.addressing import Addressing, CompanyAccounts
from scrm.engine.routing import compile_rules, explain, rule_warnings
from scrm.store import MessageRecord, ProfileRecord

from scrm_core.config import RoutingRule, RuleWhen
from scrm_core.errors import ConfigError
from scrm_core.models import Action, ActionKind, Direction, Message, MessageCreated, SocialProfile, Visibility

ACCOUNTS = CompanyAccounts(
    {
        "x": ["@AcmeHelp"],
        "mastodon": ["acmehelp@mastodon.social"],
        "bluesky": ["acme.bsky.social", "did:plc:acme"],
        "reddit": ["acme_official"],
    }
)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def message(text: str = "hello", network: str = "x", **fields: Any) -> Message:
    author = SocialProfile(**{"network": network, "account_id": "42", "handle": "customer", **fields.pop("author", {})})
    return Message(network=network, id=fields.pop("id", "1"), author=author, text=text, created_at=T0, **fields)


@pytest.mark.parametrize(
    ("msg", "reason"),
    [
        (message("@acmehelp my order is late"), "mentions @acmehelp"),
        (message("my order is late", mentions=["AcmeHelp"]), "mentions @acmehelp"),
        (message("cc @AcmeHelp."), "mentions @acmehelp"),
        (message("mail support@acmehelp.com"), None),  # an e-mail address is not a mention
        (message("@acmehelpers are great"), None),
        (message("@acmehelp", network="reddit"), None),  # another network's account
        (message("hi u/acme_official", network="reddit", mentions=["acme_official"]), "mentions @acme_official"),
        # Mastodon: the server scrm reads from writes its own accounts without the server
        (message("@acmehelp hello", network="mastodon", mentions=["acmehelp"]), "mentions @acmehelp"),
        (
            message("hi", network="mastodon", mentions=["acmehelp@mastodon.social"]),
            "mentions @acmehelp@mastodon.social",
        ),
        (message("hi", network="mastodon", mentions=["acmehelp@other.example"]), None),
        # Bluesky: mention facets hold DIDs, the text holds the handle
        (message("hi", network="bluesky", mentions=["did:plc:acme"]), "mentions @did:plc:acme"),
        (message("@acme.bsky.social help", network="bluesky", mentions=["did:plc:zzz"]), "mentions @acme.bsky.social"),
        (message("broken", network="bluesky", parent_id="at://did:plc:acme/app.bsky.feed.post/1"), "replies to"),
        (message("broken", network="bluesky", parent_id="at://did:plc:other/app.bsky.feed.post/1"), None),
        (message("psst", visibility=Visibility.direct), "a direct message"),
        (message("@acmehelp we are on it", direction=Direction.outbound), None),  # the company's own message
        (message("@acmehelp thanks", author={"handle": "acmehelp"}), None),  # written by the company
        (message("nothing to see"), None),
    ],
)
def test_what_counts_as_addressed_to_the_company(msg: Message, reason: str | None) -> None:
    found = ACCOUNTS.reason(msg)
    assert (found is None) is (reason is None), found
    if reason is not None:
        assert found is not None and found.startswith(reason)


def test_direct_messages_count_even_without_accounts() -> None:
    assert CompanyAccounts({}).reason(message("hi", visibility=Visibility.direct)) == "a direct message"
    assert CompanyAccounts({}).reason(message("@acmehelp hi")) is None


class FakeLookups:
    """The two state-store reads addressing makes, counted."""

    def __init__(self, messages: dict[str, MessageRecord], profiles: dict[str, ProfileRecord]) -> None:
        self._messages, self._profiles = messages, profiles
        self.calls: list[tuple[str, list[str]]] = []

    async def messages(self, keys: Sequence[str]) -> dict[str, MessageRecord]:
        self.calls.append(("messages", list(keys)))
        return {k: self._messages[k] for k in keys if k in self._messages}

    async def profiles(self, keys: Sequence[str]) -> dict[str, ProfileRecord]:
        self.calls.append(("profiles", list(keys)))
        return {k: self._profiles[k] for k in keys if k in self._profiles}


def test_replies_to_the_company_are_found_in_the_page_and_in_the_store() -> None:
    ours = SocialProfile(network="x", account_id="7", handle="AcmeHelp")
    stranger = SocialProfile(network="x", account_id="8", handle="someone")
    store = FakeLookups(
        {
            "x:old-ours": MessageRecord("x:old-ours", "x:old-ours", "x:7"),
            "x:old-theirs": MessageRecord("x:old-theirs", "x:old-theirs", "x:8"),
        },
        {"x:7": ProfileRecord(ours, "x:7", ""), "x:8": ProfileRecord(stranger, "x:8", "")},
    )
    page = [
        message("we are sorry", id="p1", author={"handle": "AcmeHelp"}, direction=Direction.outbound),
        message("still broken", id="r1", parent_id="p1"),  # replies to the company, in this page
        message("still broken", id="r2", parent_id="old-ours"),  # replies to the company, stored earlier
        message("me too", id="r3", parent_id="old-theirs"),  # replies to someone else
        message("@acmehelp me too", id="r4", parent_id="old-theirs"),  # mentions: no lookup needed
        message("first", id="r5", parent_id="never-seen"),
    ]
    page[0].author.account_id = "7"
    addressing = Addressing(ACCOUNTS, store)
    asyncio.run(addressing.mark([MessageCreated(message=m) for m in page]))
    assert [m.addressed_to_us for m in page] == [False, True, True, False, True, False]
    assert store.calls == [
        ("messages", ["x:never-seen", "x:old-ours", "x:old-theirs"]),
        ("profiles", ["x:7", "x:8"]),
    ]
    # The authors' verdicts are remembered: the next page reads the parents, not the profiles.
    again = [message("again", id="r6", parent_id="old-ours")]
    asyncio.run(addressing.mark([MessageCreated(message=m) for m in again]))
    assert again[0].addressed_to_us
    assert store.calls[-1] == ("messages", ["x:old-ours"])


def test_an_adapter_that_knows_keeps_its_verdict() -> None:
    msg = message("from the mentions timeline", addressed_to_us=True)
    asyncio.run(Addressing(CompanyAccounts({}), None).mark([MessageCreated(message=msg)]))
    assert msg.addressed_to_us


def rule(name: str, **when: Any) -> RoutingRule:
    return RoutingRule(name=name, when=RuleWhen(**when), actions=[Action(kind=ActionKind.case)])


def test_the_routing_condition() -> None:
    rules = compile_rules([rule("to-us", addressed_to_us=True), rule("others", addressed_to_us=False)])
    to_us = message("hi", addressed_to_us=True)
    verdicts = explain(rules, to_us)
    assert [v.fired for v in verdicts] == [True, False]
    assert verdicts[0].conditions == [("addressed to the company ([company] accounts)", True)]
    assert [v.fired for v in explain(rules, message("hi"))] == [False, True]


def test_the_condition_without_accounts_is_pointed_out() -> None:
    rules = [rule("to-us", addressed_to_us=True)]
    assert rule_warnings(rules, [], company_accounts=True) == []
    (warning,) = rule_warnings(rules, [], company_accounts=False)
    assert "routing.rules[0] ('to-us')" in warning and "only direct messages count" in warning


def write(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "scrm.toml"
    path.write_text('[[sources]]\nname = "s"\nadapter = "replay"\nsettings = { paths = ["x.ndjson"] }\n' + extra)
    return path


def test_accounts_in_the_config(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, '[company]\naccounts = { x = [" @AcmeHelp "], mastodon = ["acmehelp@mastodon.social"] }\n'),
        env={},
    )
    assert config.company.accounts == {"x": ["@AcmeHelp"], "mastodon": ["acmehelp@mastodon.social"]}


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ('[company]\naccounts = { X = ["acme"] }\n', "company.accounts: Value error, 'X' is not a network name"),
        ('[company]\naccounts = { x = ["acme help"] }\n', "x[0] is not a handle or account id"),
        ('[company]\naccounts = { x = ["@"] }\n', "x[0] is not a handle or account id"),
        ('[company]\nacounts = { x = ["acme"] }\n', "company.acounts: Extra inputs are not permitted"),
        ('[company]\naccounts = { x = "acme" }\n', "company.accounts.x: Input should be a valid list"),
    ],
)
def test_bad_accounts_are_refused_with_their_key(tmp_path: Path, toml: str, problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, toml), env={})
    assert any(problem in p for p in raised.value.problems), raised.value.problems


@pytest.mark.slow
def test_rules_test_shows_whether_and_why_a_message_is_addressed_to_the_company(tmp_path: Path) -> None:
    import json

    from tests.e2e import write_config
    from tests.test_cli import scrm

    extra = (
        '[company]\naccounts = { mastodon = ["acmehelp@mastodon.social"] }\n\n'
        '[[routing.rules]]\nname = "to-us"\nwhen = { addressed_to_us = true }\nactions = [{ kind = "case" }]\n'
    )
    config = write_config(tmp_path, [tmp_path / "x.ndjson"], extra=extra)
    message = {
        "network": "mastodon",
        "id": "42",
        "author": {"network": "mastodon", "account_id": "7", "handle": "ada"},
        "text": "@acmehelp my kettle leaks",
        "mentions": ["acmehelp"],
        "created_at": "2026-11-23T10:00:00+00:00",
    }
    path = tmp_path / "message.json"
    path.write_text(json.dumps(message))
    out = json.loads(scrm("rules", "test", str(path), "-c", str(config), "--json", cwd=tmp_path).stdout)
    assert out["addressed_to_us"] == "mentions @acmehelp"
    assert out["fired"] == ["to-us"]
    human = scrm("rules", "test", str(path), "-c", str(config), cwd=tmp_path).stdout
    assert "addressed to the company: yes (mentions @acmehelp)" in human
