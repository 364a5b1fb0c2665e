"""HubSpotCrm against the CRM conformance suite, over HTTP, with the real hubspot-api-client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scrm_hubspot import HubSpotCrm
from scrm_hubspot.records import contact_fields, lead_fields, note_fields, profile_fields, ticket_fields
from scrm_hubspot.schema import INTENT_CORRECTION
from scrm_hubspot.testing import FakeHubSpot

from scrm_core import CrmAdapter, CrmObject
from scrm_core.testing.crm import CrmAdapterConformance
from scrm_core.testing.fakes import FakeServer

from .conftest import Switchable, make_crm

_WHERE = {
    CrmObject.contact: ("contacts", "scrm_key"),
    CrmObject.profile: ("contacts", "scrm_profile_key"),
    CrmObject.lead: ("contacts", "scrm_lead_key"),
    CrmObject.case: ("tickets", "scrm_key"),
    CrmObject.message: ("notes", "scrm_key"),
}


class TestHubSpotConformance(CrmAdapterConformance):
    fake: FakeHubSpot
    url: str

    @pytest.fixture(autouse=True)
    def _fresh_fake(self, served: tuple[Switchable, FakeServer]) -> Iterator[None]:
        switch, server = served
        switch.fake = type(self).fake = FakeHubSpot(with_properties=True)
        type(self).url = server.url
        yield
        assert all(r.records <= 100 for r in switch.fake.requests), "a request exceeded HubSpot's batch cap"

    def make_adapter(self, tmp_path: Path) -> CrmAdapter:
        return make_crm(self.url, tmp_path)

    def read_back(self, adapter: CrmAdapter, obj: CrmObject, external_key: str) -> dict[str, Any] | None:
        object_type, prop = _WHERE[obj]
        props = self.fake.find(object_type, prop, external_key)
        if props is None:
            return None
        settings = adapter.config if isinstance(adapter, HubSpotCrm) else None
        assert settings is not None
        if obj is CrmObject.contact:
            return contact_fields(props)
        if obj is CrmObject.profile:
            return profile_fields(props) | {"_refs": {"contact": props["scrm_key"]}}
        if obj is CrmObject.lead:
            return lead_fields(props)
        if obj is CrmObject.case:
            return ticket_fields(props, settings)
        return note_fields(props) | {"_refs": self._note_refs(props)}

    def _note_refs(self, note: dict[str, str]) -> dict[str, str]:
        refs = {"profile": note["scrm_profile_key"]} if note.get("scrm_profile_key") else {}
        for to, name in (("contacts", "contact"), ("tickets", "case")):
            for record_id in self.fake.associations("notes", note["hs_object_id"], to):
                refs[name] = (self.fake.get(to, record_id) or {})["scrm_key"]
        return refs

    def count(self, adapter: CrmAdapter, obj: CrmObject) -> int | None:
        object_type, _ = _WHERE[obj]
        if obj in (CrmObject.profile, CrmObject.lead):
            return None  # properties of contacts, not records of their own
        return self.fake.count(object_type)

    def write_reply(self, adapter: CrmAdapter, conversation_key: str, in_reply_to: str, text: str) -> bool:
        ticket = self.fake.find("tickets", "scrm_conversation_key", conversation_key)
        assert ticket is not None, f"no ticket for {conversation_key}"
        self.fake.create(
            "notes",
            {
                "hs_note_body": f"<p>{text}</p>",
                "hs_timestamp": "1714564800000",
                "scrm_direction": "outbound",
                "scrm_in_reply_to": in_reply_to,
            },
            associate=[("tickets", ticket["hs_object_id"], 228)],
        )
        return True

    def correct_label(self, adapter: CrmAdapter, obj: CrmObject, external_key: str, label: str) -> bool:
        object_type, prop = _WHERE[obj]
        record = self.fake.find(object_type, prop, external_key)
        assert record is not None, f"no {object_type} {external_key}"
        self.fake.update(object_type, record["hs_object_id"], {INTENT_CORRECTION: label})
        return True
