"""scrm-hubspot: scrm's records as HubSpot contacts, tickets and notes (docs/adapters/hubspot.md)."""

from .adapter import HubSpotCrm
from .schema import custom_properties
from .settings import HubSpotSettings
from .webhooks import sign_v3, verify_signature_v3

__all__ = ["HubSpotCrm", "HubSpotSettings", "custom_properties", "sign_v3", "verify_signature_v3"]
