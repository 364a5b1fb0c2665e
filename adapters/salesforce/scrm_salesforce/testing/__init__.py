"""A stateful fake Salesforce org for tests, benchmarks and trying a config by hand.

Shipped with the adapter (``pip install scrm-salesforce[testing]``) so an adapter author
or an operator tests against the same adversary scrm's own suite uses::

    from scrm_core.testing.fakes import FakeServer
    from scrm_salesforce.testing import FakeSalesforce

    fake = FakeSalesforce()
    with FakeServer(fake.app, tls=True) as server:
        ...  # login_url = server.url, ca_bundle = server.ca_file

``python -m scrm_salesforce.testing`` serves one on 127.0.0.1 until Ctrl-C and prints the
``[crm.settings]`` that point the adapter at it.
"""

from .fake import (
    COLLECTION_LIMIT,
    INTENT_CORRECTION,
    INTENT_VALUES,
    PROVIDERS,
    SCRM_KEY,
    FakeSalesforce,
    FieldSpec,
    SalesforceRequest,
    make_rsa_key_pair,
)

__all__ = [
    "COLLECTION_LIMIT",
    "INTENT_CORRECTION",
    "INTENT_VALUES",
    "PROVIDERS",
    "SCRM_KEY",
    "FakeSalesforce",
    "FieldSpec",
    "SalesforceRequest",
    "make_rsa_key_pair",
]
