"""localcrm against the CRM conformance suite every CRM adapter runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scrm_localcrm import LocalCrm, LocalCrmReader, add_label_correction, add_reply

from scrm_core import AdapterContext, CrmAdapter, CrmObject
from scrm_core.testing.crm import CrmAdapterConformance


def _path(adapter: CrmAdapter) -> Path:
    assert isinstance(adapter, LocalCrm)
    return adapter.path


class TestLocalCrmConformance(CrmAdapterConformance):
    def make_adapter(self, tmp_path: Path) -> CrmAdapter:
        return LocalCrm(LocalCrm.Settings(path="crm.db"), AdapterContext(name="crm", base_dir=tmp_path))

    def read_back(self, adapter: CrmAdapter, obj: CrmObject, external_key: str) -> dict[str, Any] | None:
        with LocalCrmReader(_path(adapter)) as crm:
            return crm.record(obj, external_key)

    def count(self, adapter: CrmAdapter, obj: CrmObject) -> int | None:
        with LocalCrmReader(_path(adapter)) as crm:
            return crm.count(f"{obj.value}s")

    def write_reply(self, adapter: CrmAdapter, conversation_key: str, in_reply_to: str, text: str) -> bool:
        add_reply(_path(adapter), conversation_key, text, in_reply_to=in_reply_to)
        return True

    def correct_label(self, adapter: CrmAdapter, obj: CrmObject, external_key: str, label: str) -> bool:
        add_label_correction(_path(adapter), external_key, label, by="conformance")
        return True
