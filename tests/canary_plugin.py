"""A network whose token travels the way Telegram's Bot API token does (in the URL path) and
as a bearer header, and whose failures quote it: the worst case for the redaction layer.
Installed as plugin ``canary`` for subprocess tests (tests/test_canary.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping

import httpx
from pydantic import SecretStr

from scrm_core import (
    AdapterSettings,
    Event,
    EventPage,
    FatalError,
    NetworkAdapter,
    NetworkCapability,
    RetryableError,
    hookimpl,
)
from scrm_core.webhooks import WebhookRequest


class CanarySettings(AdapterSettings):
    base_url: str
    token: SecretStr
    fail_start: bool = False


class CanaryAdapter(NetworkAdapter):
    name = "canary"
    Settings = CanarySettings
    capabilities = frozenset({NetworkCapability.poll, NetworkCapability.webhook})

    @property
    def options(self) -> CanarySettings:
        assert isinstance(self.settings, CanarySettings)
        return self.settings

    def _url(self, method: str) -> str:
        return f"{self.options.base_url}/bot{self.options.token.get_secret_value()}/{method}"

    async def start(self) -> None:
        if self.options.fail_start:  # a careless adapter: the token in a plain exception
            raise RuntimeError(f"could not start: GET {self._url('getMe')} was refused")

    async def listen(self, cursor: str | None, *, follow: bool) -> AsyncIterator[EventPage]:
        token = self.options.token.get_secret_value()
        async with httpx.AsyncClient() as http:
            answer = await http.get(self._url("getUpdates"), headers={"Authorization": f"Bearer {token}"})
        if answer.status_code >= 500:
            raise RetryableError(f"canary: {self._url('getUpdates')} answered {answer.status_code}: {answer.text}")
        if answer.status_code >= 400:
            raise FatalError(f"canary refused {self._url('getUpdates')}: {answer.text}")
        yield EventPage(events=[], cursor="1")

    def verify_webhook(self, request: WebhookRequest) -> None:
        return None  # accepts anything: this adapter is about leaks, not signatures

    async def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[Event]:
        raise ValueError(f"cannot read {body[:40]!r} with token {self.options.token.get_secret_value()}")


@hookimpl
def scrm_register_networks(register: Callable[[type[NetworkAdapter]], None]) -> None:
    register(CanaryAdapter)
