"""The ``settings`` of a Matrix source."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator

from scrm_core import HttpSettings, PollingSettings

__all__ = ["MatrixSettings"]


class MatrixSettings(HttpSettings, PollingSettings):
    """A homeserver, the account scrm listens and replies as, and the rooms it reads.

    Authenticate with an ``access_token``, or with ``user`` + ``password`` (a password
    login on ``device_id``). Keep ``device_id`` fixed: the homeserver scopes reply
    transaction ids to the device, so a new device would forget which replies it sent
    (https://spec.matrix.org/v1.15/client-server-api/#transaction-identifiers).
    """

    renamed = {"sync_timeout": "sync_seconds"}

    base_url: str = Field(description="The homeserver's client-server API base, e.g. https://matrix.example.com.")
    access_token: SecretStr | None = Field(default=None, description="The account's access token.")
    user: str | None = Field(default=None, description="For a password login: '@scrm:example.com' or 'scrm'.")
    password: SecretStr | None = Field(default=None, description="For a password login, with user.")
    device_id: str = Field(
        default="SCRM", min_length=1, description="Device a password login reuses (reply idempotency is per device)."
    )
    rooms: list[str] = Field(min_length=1, description="Room ids ('!abc...') or aliases ('#support:example.com').")
    page_size: int = Field(
        default=100, ge=1, le=1000, description="Room events per page; also the /sync timeline limit."
    )
    sync_seconds: float = Field(
        default=30.0, ge=0, le=300, description="Seconds one /sync long poll waits in follow mode."
    )
    thread_scan_limit: int = Field(
        default=2000, ge=1, description="Most room events fetch_thread reads after a root to find its replies."
    )

    @field_validator("rooms")
    @classmethod
    def _room_ids_or_aliases(cls, value: list[str]) -> list[str]:
        for room in value:
            # Room ids are '!opaque' (room version 12 dropped the ':server' part), aliases '#name:server'
            # (https://spec.matrix.org/v1.15/appendices/#room-ids, #room-aliases).
            is_id = len(room) > 1 and room[0] == "!"
            is_alias = room[:1] == "#" and ":" in room
            if not (is_id or is_alias):
                raise ValueError(f"{room!r} is neither a room id ('!id') nor an alias ('#name:server')")
        if len(set(value)) != len(value):
            raise ValueError("a room is listed twice")
        return value

    @model_validator(mode="after")
    def _one_way_to_log_in(self) -> MatrixSettings:
        if self.access_token is None and (self.user is None or self.password is None):
            raise ValueError("set access_token, or user and password")
        if self.access_token is not None and self.password is not None:
            raise ValueError("set access_token or password, not both")
        return self
