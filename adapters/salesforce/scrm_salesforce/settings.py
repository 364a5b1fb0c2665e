"""The ``[crm.settings]`` of the Salesforce adapter, validated once at start-up."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from scrm_core import AdapterSettings

__all__ = ["BULK_MAX_BATCH", "SalesforceSettings"]

#: Records per apply() call when Bulk API 2.0 is on: one ingest job per call.
BULK_MAX_BATCH = 10_000

#: The settings each login flow needs, and what each one is, for the error message.
REQUIRED_BY_AUTH: dict[str, dict[str, str]] = {
    "jwt": {
        "consumer_key": "the connected app's Consumer Key",
        "username": "the integration user's username",
        "private_key_file": "the PEM private key whose certificate is uploaded to the connected app",
    },
    "client_credentials": {
        "client_id": "the connected app's Consumer Key",
        "client_secret": "the connected app's Consumer Secret",
    },
    "password": {
        "client_id": "the connected app's Consumer Key",
        "client_secret": "the connected app's Consumer Secret",
        "username": "the integration user's username",
        "password": "the user's password followed by its security token",
    },
}


class SalesforceSettings(AdapterSettings):
    auth: Literal["jwt", "client_credentials", "password"] = Field(
        description="Login flow. 'password' is the legacy username-password flow Salesforce is retiring."
    )
    login_url: str = Field(
        default="https://login.salesforce.com",
        description="Where to ask for a token: login / test.salesforce.com or your My Domain URL.",
    )
    instance_url: str | None = Field(default=None, description="Overrides the instance_url of the token response.")
    api_version: str = Field(default="62.0", pattern=r"^\d+\.\d$")
    consumer_key: SecretStr | None = Field(default=None, description="jwt: the connected app's Consumer Key.")
    username: str | None = Field(default=None, description="jwt / password: the integration user.")
    private_key_file: str | None = Field(default=None, description="jwt: PEM private key, relative to the config.")
    jwt_audience: str | None = Field(default=None, description="jwt: the 'aud' claim; default: login_url.")
    client_id: str | None = Field(default=None, description="client_credentials / password: Consumer Key.")
    client_secret: SecretStr | None = Field(default=None, description="client_credentials / password.")
    password: SecretStr | None = Field(default=None, description="password: password + security token.")
    ca_bundle: str | None = Field(
        default=None, description="A PEM CA file to trust instead of the system's (a TLS-inspecting proxy)."
    )
    external_id_field: str = Field(default="Scrm_Key__c", pattern=r"^[A-Za-z][A-Za-z0-9_]*__c$")
    # Mapping onto Salesforce's picklists; unknown engine values pass through unchanged.
    case_origin: str | None = Field(default="Web", description="Case.Origin of the cases scrm opens.")
    case_status: dict[str, str] = Field(default_factory=lambda: {"open": "New", "closed": "Closed"})
    case_priority: dict[str, str] = Field(
        default_factory=lambda: {"low": "Low", "normal": "Medium", "high": "High", "urgent": "High"}
    )
    lead_status: dict[str, str] = Field(default_factory=lambda: {"new": "Open - Not Contacted"})
    lead_company: str = Field(
        default="[not provided]", description="Lead.Company is required; social leads rarely say."
    )
    lead_source: str | None = Field(default="Other", description="Lead.LeadSource of the leads scrm creates.")
    providers: dict[str, str] = Field(
        default_factory=dict,
        description="Network -> Provider picklist value, on top of the built-in ones (x -> Twitter, ...).",
    )
    bulk_threshold: int | None = Field(
        default=2000,
        ge=1,
        le=BULK_MAX_BATCH,
        description="Records in one apply() from which Bulk API 2.0 is used; None: sObject Collections only.",
    )
    bulk_poll_seconds: int = Field(default=5, ge=0, le=300, description="Wait between Bulk API 2.0 job polls.")
    limit_pause_seconds: float = Field(
        default=300.0, gt=0, description="Pause after 403 REQUEST_LIMIT_EXCEEDED before trying again."
    )
    timeout_seconds: float = Field(default=60.0, gt=0)

    @field_validator("login_url", "instance_url")
    @classmethod
    def _https_origin(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Salesforce serves its API over HTTPS only, at an origin (no path, no query)."""
        if value is None or value.startswith("<unset:"):
            return value
        example = (
            'login_url = "https://login.salesforce.com" (production), "https://test.salesforce.com" (a sandbox) '
            'or your My Domain, "https://<name>.my.salesforce.com"'
            if info.field_name == "login_url"
            else 'instance_url = "https://<name>.my.salesforce.com", or leave it out to use the login\'s answer'
        )
        parts = urlsplit(value)
        if parts.scheme != "https":
            raise ValueError(
                f"{value!r} is not an https:// URL: Salesforce answers its API over HTTPS only (TLS 1.2+), and "
                f"scrm's client speaks nothing else; set {example}"
            )
        if not parts.hostname or parts.query or parts.fragment or parts.path.strip("/"):
            raise ValueError(f"{value!r} must be the site's origin only (no path or query); set {example}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _auth_settings_present(self) -> SalesforceSettings:
        missing = [
            f"auth = {self.auth!r} needs the setting {name!r} ({what})"
            for name, what in REQUIRED_BY_AUTH[self.auth].items()
            if getattr(self, name) in (None, "")
        ]
        if missing:
            raise ValueError("; ".join(missing))
        return self
