"""The ``scrm`` entry point of scrm-salesforce: registers the Salesforce CRM adapter."""

from __future__ import annotations

from collections.abc import Callable

from scrm_core import CrmAdapter, hookimpl

from .adapter import SalesforceCrm


@hookimpl
def scrm_register_crms(register: Callable[[type[CrmAdapter]], None]) -> None:
    register(SalesforceCrm)
