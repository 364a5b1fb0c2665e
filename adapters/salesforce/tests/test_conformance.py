"""The Salesforce adapter against the CRM conformance suite, on a fresh fake org per test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from scrm_salesforce import OBJECTS, SalesforceCrm
from scrm_salesforce.testing import INTENT_CORRECTION, FakeSalesforce

from scrm_core import AdapterContext, CrmAdapter, CrmObject
from scrm_core.testing.crm import CrmAdapterConformance
from scrm_core.testing.fakes import FakeServer

KEY = "Scrm_Key__c"


def _key_of(fake: FakeSalesforce, sobject: str, record_id: str | None) -> str | None:
    record = fake.get(sobject, record_id) if record_id else None
    return record[KEY] if record else None


def engine_fields(fake: FakeSalesforce, obj: CrmObject, record: dict[str, Any]) -> dict[str, Any]:
    """A Salesforce record as the engine's field names, with ``_refs`` as external keys."""
    if obj is CrmObject.contact:
        name = " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p)
        return {"name": name, "email": record.get("Email")}
    if obj is CrmObject.lead:
        return {"name": record.get("LastName"), "status": record.get("Status")}
    refs: dict[str, str | None] = {}
    if obj is CrmObject.profile:
        refs["contact"] = _key_of(fake, "Contact", record.get("ParentId"))
        fields = {
            "account_id": record.get("ExternalId"),
            "handle": record.get("Name"),
            "display_name": record.get("RealName"),
            "url": record.get("ProfileUrl"),
            "followers": record.get("Followers"),
            "verified": record.get("IsVerified"),
            "bio": record.get("Bio"),
        }
    elif obj is CrmObject.case:
        refs["contact"] = _key_of(fake, "Contact", record.get("ContactId"))
        fields = {"subject": record.get("Subject"), "status": record.get("Status"), "priority": record.get("Priority")}
    else:
        refs |= {
            "profile": _key_of(fake, "SocialPersona", record.get("PersonaId")),
            "contact": _key_of(fake, "Contact", record.get("WhoId")),
            "case": _key_of(fake, "Case", record.get("ParentId")),
        }
        fields = {
            "message_id": record.get("ExternalPostId"),
            "text": record.get("Content"),
            "created_at": record.get("Posted"),
            "url": record.get("PostUrl"),
            "direction": "outbound" if record.get("IsOutbound") else "inbound",
            "conversation_key": record.get("Scrm_Conversation_Key__c"),
            "deleted": record.get("Scrm_Deleted__c"),
            "labels": (record.get("Scrm_Labels__c") or "").split(";"),
        }
    return {**fields, "_refs": {name: key for name, key in refs.items() if key}}


class TestSalesforceConformance(CrmAdapterConformance):
    fake: FakeSalesforce
    _servers: list[FakeServer]

    @pytest.fixture(autouse=True)
    def _stop_servers(self) -> Iterator[None]:
        self._servers = []
        yield
        for server in self._servers:
            server.stop()

    def make_adapter(self, tmp_path: Path) -> CrmAdapter:
        self.fake = FakeSalesforce()
        server = FakeServer(self.fake.app, tls=True)
        self._servers.append(server)
        settings = SalesforceCrm.Settings(
            auth="client_credentials",
            login_url=server.url,
            client_id=self.fake.consumer_key,
            client_secret=self.fake.client_secret,
            ca_bundle=server.ca_file,
            bulk_poll_seconds=0,
        )
        return SalesforceCrm(settings, AdapterContext(name="crm", base_dir=tmp_path))

    def read_back(self, adapter: CrmAdapter, obj: CrmObject, external_key: str) -> dict[str, Any] | None:
        record = self.fake.find(OBJECTS[obj].sobject, KEY, external_key)
        return engine_fields(self.fake, obj, record) if record else None

    def count(self, adapter: CrmAdapter, obj: CrmObject) -> int | None:
        return self.fake.count(OBJECTS[obj].sobject)

    def write_reply(self, adapter: CrmAdapter, conversation_key: str, in_reply_to: str, text: str) -> bool:
        replied_to = next(
            r
            for r in self.fake.records("SocialPost")
            if r["ExternalPostId"] == in_reply_to and r["Scrm_Conversation_Key__c"] == conversation_key
        )
        self.fake.insert(
            "SocialPost",
            {
                "Name": "Agent reply",
                "IsOutbound": True,
                "Content": text,
                "ReplyToId": replied_to["Id"],
                "Posted": datetime.now(UTC).isoformat(),
                "Provider": "Other",
            },
        )
        return True

    def correct_label(self, adapter: CrmAdapter, obj: CrmObject, external_key: str, label: str) -> bool:
        sobject = OBJECTS[obj].sobject
        record = self.fake.find(sobject, KEY, external_key)
        assert record is not None, f"no {sobject} {external_key}"
        self.fake.edit(sobject, record["Id"], {INTENT_CORRECTION: label})
        return True
