"""The ``[sources.<name>.settings]`` of the Meta adapter: one source per Facebook Page or Instagram account."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from scrm_core import HttpSettings, PollingSettings

__all__ = ["MetaSettings", "Platform"]

Platform = Literal["facebook", "instagram"]


class MetaSettings(HttpSettings, PollingSettings):
    """A Page access token and the ids of the Page (Facebook) or the Instagram professional account."""

    platform: Platform = Field(
        default="facebook",
        description="Which surface this source reads; its messages carry network=<platform> and replies route by it.",
    )
    page_id: str | None = Field(default=None, pattern=r"^\d+$", description="The Facebook Page id (platform facebook).")
    ig_user_id: str | None = Field(
        default=None, pattern=r"^\d+$", description="The Instagram professional account id (platform instagram)."
    )
    page_access_token: SecretStr = Field(
        description="A Page access token (also used for the Page's Instagram account)."
    )
    app_secret: SecretStr | None = Field(
        default=None, description="The Meta app's secret: checks X-Hub-Signature-256 on webhook deliveries."
    )
    verify_token: SecretStr | None = Field(
        default=None, description="The Verify Token typed into the App Dashboard's webhook set-up."
    )
    base_url: str = Field(
        default="https://graph.facebook.com", description="The Graph API host; a fake's URL in tests."
    )
    api_version: str = Field(default="v21.0", pattern=r"^v\d+\.\d+$", description="Graph API version in every path.")
    page_size: int = Field(default=25, ge=1, le=100, description="Events per yielded page, and the Graph `limit`.")
    max_posts: int = Field(
        default=100, ge=1, description="Newest posts (or media) whose comments each poll pass reads."
    )
    poll_seconds: float = Field(default=60.0, gt=0, description="Seconds between polls with follow=True.")

    @model_validator(mode="after")
    def _account_for_platform(self) -> MetaSettings:
        if self.platform == "facebook" and not self.page_id:
            raise ValueError("platform 'facebook' needs page_id (the Page's numeric id)")
        if self.platform == "instagram" and not self.ig_user_id:
            raise ValueError("platform 'instagram' needs ig_user_id (the Instagram professional account's id)")
        return self

    @property
    def account_id(self) -> str:
        """The id of the configured account: what marks a message as ours (outbound)."""
        account = self.page_id if self.platform == "facebook" else self.ig_user_id
        assert account is not None  # the validator above
        return account
