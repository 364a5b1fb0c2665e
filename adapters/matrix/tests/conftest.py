"""A real Synapse homeserver on 127.0.0.1 for the whole test session, and a fault proxy in front.

Synapse's config is generated (``--generate-config``) into a temporary folder and then
overridden: one client listener on a free loopback port, no federation listener and no
federation at all (``federation_domain_whitelist: []``), no trusted key servers, no
presence, no URL previews, no stats reporting, sqlite, open rate limits (the proxy
injects the rate limits the tests want), cheap password hashing. So it never reaches
the internet. Users are registered with the shared-secret admin API
(https://element-hq.github.io/synapse/latest/admin_api/register_api.html).

Start-up takes about 3 s (config generation ~2.5 s, then start ~1.5 s on this machine).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from scrm_matrix.testing import MatrixFaultProxy

from scrm_core.testing.fakes import FakeServer

CLIENT = "/_matrix/client/v3"
_START_DEADLINE = 60.0
_OPEN = {"per_second": 10_000, "burst_count": 10_000}


def q(segment: str) -> str:
    return quote(segment, safe="")


@dataclass
class User:
    """A registered account and a client speaking directly to Synapse as it."""

    hs: Homeserver
    user_id: str
    token: str
    password: str

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self.hs.http.request(
            method, CLIENT + path, json=body, params=params or None, headers={"Authorization": f"Bearer {self.token}"}
        )
        response.raise_for_status()
        return response.json()

    def create_room(self, **body: Any) -> str:
        return str(self.call("POST", "/createRoom", body)["room_id"])

    def join(self, room: str, displayname: str | None = None) -> str:
        """Join by setting our own member state, which (unlike /join) returns the event id."""
        content = {"membership": "join", **({"displayname": displayname} if displayname else {})}
        return str(self.call("PUT", f"/rooms/{q(room)}/state/m.room.member/{q(self.user_id)}", content)["event_id"])

    def invite(self, room: str, user_id: str) -> None:
        self.call("POST", f"/rooms/{q(room)}/invite", {"user_id": user_id})

    def send(self, room: str, content: dict[str, Any], txn: str | None = None) -> str:
        txn = txn or uuid.uuid4().hex
        return str(self.call("PUT", f"/rooms/{q(room)}/send/m.room.message/{q(txn)}", content)["event_id"])

    def say(self, room: str, text: str, **extra: Any) -> str:
        return self.send(room, {"msgtype": "m.text", "body": text, **extra})

    def edit(self, room: str, event_id: str, text: str) -> str:
        return self.send(
            room,
            {
                "msgtype": "m.text",
                "body": f"* {text}",
                "m.new_content": {"msgtype": "m.text", "body": text},
                "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
            },
        )

    def redact(self, room: str, event_id: str) -> str:
        return str(self.call("PUT", f"/rooms/{q(room)}/redact/{q(event_id)}/{uuid.uuid4().hex}", {})["event_id"])

    def event(self, room: str, event_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/rooms/{q(room)}/event/{q(event_id)}"))

    def messages(self, room: str) -> list[dict[str, Any]]:
        """Every m.room.message of the room, oldest first (straight from /messages)."""
        out: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"dir": "f", "limit": 100, "filter": json.dumps({"types": ["m.room.message"]})}
            if token:
                params["from"] = token
            page = self.call("GET", f"/rooms/{q(room)}/messages", **params)
            out += page["chunk"]
            if not page.get("end") or page["end"] == token:
                return out
            token = page["end"]


@dataclass
class Homeserver:
    url: str
    secret: str
    http: httpx.Client
    log: Path

    _serial = itertools.count(1)

    def register(self, name: str, displayname: str | None = None) -> User:
        """A new user ``@<name>-<n>:localhost`` (a fresh one every call, so tests never share state)."""
        localpart = f"{name}-{next(self._serial)}-{uuid.uuid4().hex[:6]}"
        password = uuid.uuid4().hex
        nonce = self.http.get("/_synapse/admin/v1/register").json()["nonce"]
        mac = hmac.new(self.secret.encode(), digestmod=hashlib.sha1)
        mac.update(f"{nonce}\x00{localpart}\x00{password}\x00notadmin".encode())
        body = {"nonce": nonce, "username": localpart, "password": password, "admin": False, "mac": mac.hexdigest()}
        if displayname:
            body["displayname"] = displayname
        response = self.http.post("/_synapse/admin/v1/register", json=body)
        response.raise_for_status()
        data = response.json()
        return User(self, data["user_id"], data["access_token"], password)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_config(folder: Path, port: int) -> Path:
    import yaml  # a Synapse dependency

    config = folder / "homeserver.yaml"
    subprocess.run(
        [
            sys.executable, "-m", "synapse.app.homeserver", "--server-name", "localhost",
            "--config-path", str(config), "--data-directory", str(folder / "data"),
            "--generate-config", "--report-stats=no",
        ],
        cwd=folder, check=True, capture_output=True,
    )  # fmt: skip
    data = yaml.safe_load(config.read_text())
    data.update(
        listeners=[
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        database={"name": "sqlite3", "args": {"database": str(folder / "data" / "homeserver.db")}},
        enable_registration=False,
        trusted_key_servers=[],
        suppress_key_server_warning=True,
        federation_domain_whitelist=[],
        presence={"enabled": False},
        url_preview_enabled=False,
        report_stats=False,
        enable_metrics=False,
        bcrypt_rounds=4,
        rc_message=_OPEN,
        rc_registration=_OPEN,
        rc_login={"address": _OPEN, "account": _OPEN, "failed_attempts": _OPEN},
        rc_joins={"local": _OPEN, "remote": _OPEN},
        rc_invites={"per_room": _OPEN, "per_user": _OPEN, "per_issuer": _OPEN},
        rc_admin_redaction=_OPEN,
        rc_room_creation=_OPEN,
    )
    config.write_text(yaml.safe_dump(data))
    return config


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Homeserver]:
    try:
        import synapse as _  # noqa: F401
    except ImportError:
        why = "matrix-synapse is not installed (pip install -e 'adapters/matrix[test]'); the Matrix tests need it"
        if os.environ.get("SCRM_REQUIRE_SYNAPSE"):  # CI sets it: there, a missing Synapse is a failure
            pytest.fail(why)
        pytest.skip(why)
    folder = tmp_path_factory.mktemp("synapse")
    port = _free_port()
    started = time.monotonic()
    config = _write_config(folder, port)
    log = folder / "stdout.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "synapse.app.homeserver", "-c", str(config)],
            cwd=folder, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    http = httpx.Client(base_url=url, timeout=30)
    try:
        deadline = started + _START_DEADLINE
        while True:
            if process.poll() is not None:
                pytest.fail(f"Synapse exited with {process.returncode}; see {log}")
            try:
                if http.get("/_matrix/client/versions").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"Synapse did not answer within {_START_DEADLINE:.0f} s; see {log}")
            time.sleep(0.05)  # polling interval, not a wait for something to happen
        sys.stderr.write(f"\n[synapse ready on {url} after {time.monotonic() - started:.1f} s]\n")
        import yaml

        secret = yaml.safe_load(config.read_text())["registration_shared_secret"]
        yield Homeserver(url=url, secret=secret, http=http, log=log)
    finally:
        http.close()
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def proxy_server(synapse: Homeserver) -> Iterator[tuple[MatrixFaultProxy, FakeServer]]:
    proxy = MatrixFaultProxy(synapse.url)
    with FakeServer(proxy.app) as server:
        yield proxy, server


@pytest.fixture
def proxy(proxy_server: tuple[MatrixFaultProxy, FakeServer]) -> MatrixFaultProxy:
    proxy_server[0].reset()
    return proxy_server[0]


@pytest.fixture
def proxy_url(proxy_server: tuple[MatrixFaultProxy, FakeServer]) -> str:
    return proxy_server[1].url
