"""scrm-salesforce: keep Salesforce's social objects current from scrm.

    [crm]
    adapter = "salesforce"
    [crm.settings]
    auth = "jwt"
    consumer_key = "${SF_CONSUMER_KEY}"
    username = "integration@example.com"
    private_key_file = "salesforce.key"

Contacts, SocialPersonas, Cases, Leads and SocialPosts are upserted by the external ID
field ``Scrm_Key__c``; ``scrm check`` lists what the org still needs. See
docs/adapters/salesforce.md.
"""

from __future__ import annotations

from .adapter import SalesforceCrm
from .mapping import OBJECTS, Mapper
from .settings import SalesforceSettings

__all__ = ["OBJECTS", "Mapper", "SalesforceCrm", "SalesforceSettings"]
