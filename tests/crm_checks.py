"""What a CRM fed with the torture stream must hold, read straight from the HubSpot and Salesforce fakes.

Shared by the torture tests (in process, with faults, and killed with SIGKILL): every live
message and every author exactly once, each message's final text (never an older
version; a long one cut with scrm's marker), each message linked to its author, no
deleted text anywhere in any field of any record, no record of a key twice.
"""

from __future__ import annotations

import html
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from scrm_hubspot.testing import FakeHubSpot
from scrm_replay.torture import GONE, TortureExpectation, stored_text_matches
from scrm_salesforce.testing import FakeSalesforce

from scrm_core.testing.fakes import FakeServer, FaultInjector

KEY = "Scrm_Key__c"


class CrmUnderTest(Protocol):
    name: str
    fake: Any
    server: FakeServer

    def settings(self) -> dict[str, Any]: ...
    def messages(self) -> dict[str, tuple[str, bool, str | None]]: ...  # key -> (text, deleted, author key)
    def message_rows(self) -> int: ...
    def profiles(self) -> Counter[str]: ...  # profile key -> records holding it
    def display_name(self, profile_key: str) -> str | None: ...
    def all_strings(self) -> Iterator[tuple[str, str]]: ...  # (where, value) of every text field
    def cases(self) -> dict[str, str]: ...  # case key -> subject


@dataclass
class SalesforceUnderTest:
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
            "timeout_seconds": 1.0,
            "limit_pause_seconds": 0.2,
        }

    def _key(self, sobject: str, record_id: str | None) -> str | None:
        record = self.fake.get(sobject, record_id) if record_id else None
        return record.get(KEY) if record else None

    def messages(self) -> dict[str, tuple[str, bool, str | None]]:
        return {
            p[KEY]: (
                p.get("Content") or "",
                bool(p.get("Scrm_Deleted__c")),
                self._key("SocialPersona", p.get("PersonaId")),
            )
            for p in self.fake.records("SocialPost")
        }

    def message_rows(self) -> int:
        return self.fake.count("SocialPost")

    def profiles(self) -> Counter[str]:
        return Counter(p[KEY] for p in self.fake.records("SocialPersona"))

    def display_name(self, profile_key: str) -> str | None:
        persona = self.fake.find("SocialPersona", KEY, profile_key)
        return persona.get("RealName") if persona else None

    def all_strings(self) -> Iterator[tuple[str, str]]:
        for sobject in self.fake.schema:
            for record in self.fake.records(sobject):
                for name, value in record.items():
                    if isinstance(value, str):
                        yield f"{sobject}.{name} of {record.get(KEY)}", value

    def cases(self) -> dict[str, str]:
        return {c[KEY]: c.get("Subject") or "" for c in self.fake.records("Case")}


@dataclass
class HubSpotUnderTest:
    fake: FakeHubSpot
    server: FakeServer
    name: str = "hubspot"

    def settings(self) -> dict[str, Any]:
        return {
            "base_url": self.server.url,
            "access_token": FakeHubSpot.TOKEN,
            "timeout_seconds": 1.0,
            "requests_per_window": 100,
            "window_seconds": 1.0,
        }

    def messages(self) -> dict[str, tuple[str, bool, str | None]]:
        return {
            n["scrm_key"]: (
                html.unescape(n.get("hs_note_body") or ""),
                n.get("scrm_deleted") == "true",
                n.get("scrm_profile_key"),
            )
            for n in self.fake.records("notes")
        }

    def message_rows(self) -> int:
        return self.fake.count("notes")

    def profiles(self) -> Counter[str]:
        return Counter(c["scrm_profile_key"] for c in self.fake.records("contacts") if c.get("scrm_profile_key"))

    def display_name(self, profile_key: str) -> str | None:
        contact = self.fake.find("contacts", "scrm_profile_key", profile_key)
        return contact.get("scrm_display_name") if contact else None

    def all_strings(self) -> Iterator[tuple[str, str]]:
        for obj in ("contacts", "tickets", "notes"):
            for record in self.fake.records(obj):
                for name, value in record.items():
                    yield f"{obj}.{name} of {record.get('scrm_key')}", html.unescape(value)

    def cases(self) -> dict[str, str]:
        return {t["scrm_key"]: t.get("subject") or "" for t in self.fake.records("tickets")}


def make_crm(name: str, faults: FaultInjector | None = None) -> CrmUnderTest:
    faults = faults or FaultInjector()
    if name == "hubspot":
        hub = FakeHubSpot(with_properties=True, rate_limit=(100, 1.0), faults=faults)
        return HubSpotUnderTest(hub, FakeServer(hub.app))
    org = FakeSalesforce(faults=faults)
    return SalesforceUnderTest(org, FakeServer(org.app, tls=True))


def assert_torture_landed(crm: CrmUnderTest, expected: TortureExpectation) -> None:
    held = crm.messages()
    assert crm.message_rows() == len(held), "two CRM records share one external key"
    missing = set(expected.texts) - set(held)
    extra = set(held) - set(expected.texts)
    assert not missing and not extra, f"missing {sorted(missing)[:3]} ({len(missing)}), unexpected {sorted(extra)[:3]}"
    wrong = [
        k
        for k, text in expected.texts.items()
        if not stored_text_matches(held[k][0] or None, text) or held[k][1] != (text is None)
    ]
    assert not wrong, (
        f"{len(wrong)} message(s) differ, e.g. {wrong[0]}: {held[wrong[0]][:2]!r}, expected "
        f"{(expected.texts[wrong[0]] or '(deleted)')[:80]!r}"
    )
    unlinked = [k for k, author in expected.authors.items() if held[k][2] != author]
    assert not unlinked, f"{len(unlinked)} message(s) not linked to their author, e.g. {unlinked[0]}"
    profiles = crm.profiles()
    assert set(profiles) == expected.profiles, f"authors missing: {len(expected.profiles - set(profiles))}"
    assert max(profiles.values()) == 1, "an author's profile is in the CRM twice"
    for key, name in expected.display_names.items():
        if key in expected.profiles:
            assert stored_text_matches(crm.display_name(key), name), f"{key}: display name {name[:40]!r}"
    leaks = [where for where, value in crm.all_strings() if GONE in value]
    assert not leaks, f"deleted text survives in {len(leaks)} field(s), e.g. {leaks[:3]}"
    assert crm.cases(), "no case was opened"


def assert_state_settled(state_db: Path) -> None:
    with sqlite3.connect(state_db) as con:
        assert con.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0, "the outbox is not empty"
        letters = con.execute("SELECT reason FROM dead_letters").fetchall()
    assert not letters, f"{len(letters)} dead letter(s), e.g. {letters[0][0]}"
