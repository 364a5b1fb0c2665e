"""The ``[crm.settings]`` of the HubSpot adapter."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from scrm_core import AdapterSettings

__all__ = ["HubSpotSettings"]


class HubSpotSettings(AdapterSettings):
    """A private-app token, or an OAuth app's client id, secret and refresh token."""

    access_token: SecretStr | None = Field(default=None, description="Private app access token (or an OAuth one).")
    client_id: str | None = Field(default=None, description="OAuth app client id, to refresh the access token.")
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    base_url: str = Field(default="https://api.hubapi.com", description="The API host; a fake's URL in tests.")
    key_property: str = Field(
        default="scrm_key",
        pattern=r"^[a-z][a-z0-9_]*$",
        description="Unique-value custom property holding scrm's external key on contacts, tickets and notes.",
    )
    ticket_pipeline: str = Field(default="0", description="Pipeline id of new tickets ('0': the default one).")
    ticket_open_stage: str = Field(default="1", description="Stage id of an open case ('1': New).")
    ticket_closed_stage: str = Field(default="4", description="Stage id of a closed case ('4': Closed).")
    lead_lifecycle_stage: str | None = Field(
        default="lead", description="Contact lifecycle stage set on purchase intent; None leaves it alone."
    )
    lead_status: str | None = Field(default="NEW", description="hs_lead_status set on purchase intent; None: unset.")
    timeout_seconds: float = Field(default=30.0, gt=0, description="Per request; a timeout is retried by the sink.")
    requests_per_window: int = Field(
        default=100, ge=1, description="Burst limit of the account's apps: requests per window (private app: 100)."
    )
    window_seconds: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> HubSpotSettings:
        oauth = (self.client_id, self.client_secret, self.refresh_token)
        if any(oauth) and not all(oauth):
            raise ValueError("OAuth needs client_id, client_secret and refresh_token together")
        if self.access_token is None and not all(oauth):
            raise ValueError("set access_token (a private app's) or client_id, client_secret and refresh_token")
        return self

    @property
    def oauth(self) -> bool:
        return self.refresh_token is not None
