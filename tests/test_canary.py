"""A canary secret appears in no output, no log and no store, in every failure mode we can provoke.

The secrets are configured as each adapter's SecretStr; the services they talk to are an
"echo" server that answers every request with an error quoting the URL (a Telegram-style
token is in the path) and every request header (Authorization, Api-Key): the worst server
there is. The modes: a source that keeps failing (retried, then given up), a source refused
for good, a webhook payload whose parsing error quotes the token, an adapter that crashes
with the token in a plain exception (with and without SCRM_RAISE_ERRORS=1, and -v so httpx
logs every URL), a CRM (HubSpot) whose API echoes the bearer token back.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router

from scrm_core.testing.fakes import FakeServer
from tests.e2e import toml_inline
from tests.serving import install_plugin, query, scrm, start_serve, wait_until

pytestmark = pytest.mark.slow

CANARY = "canary-7f3e9b1c2d4a"  # the configured secret; no byte of output or state may hold it
OTHER_CANARY = "hubspot-pat-na1-5b8e0c6f-a913"


def _echo_app(status: int) -> Router:
    """Every request answered ``status`` with the URL and every header quoted back."""

    async def echo(request: Request) -> Response:
        quoted = f"{request.method} {request.url} with headers {dict(request.headers)}"
        return JSONResponse(
            {"errors": [quoted], "message": quoted, "status": "error", "category": "INVALID_AUTHENTICATION"},
            status,
        )

    return Router(routes=[Route("/{path:path}", echo, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])])


def _config(folder: Path, sources: list[tuple[str, str, dict[str, Any]]], crm: str = "") -> Path:
    text = '[state]\nurl = "sqlite:///state.db"\n'
    text += crm or '[crm]\nadapter = "localcrm"\nsettings = { path = "crm.db" }\n'
    for name, adapter, settings in sources:
        text += f'[[sources]]\nname = "{name}"\nadapter = "{adapter}"\nsettings = {toml_inline(settings)}\n'
    text += "[engine]\nbatch_window_ms = 0\nmax_attempts = 2\nretry_max_seconds = 0.05\n"
    path = folder / "scrm.toml"
    path.write_text(text)
    return path


def _no_canary_in_files(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file() and not path.name.endswith(".toml"):
            data = path.read_bytes()
            assert CANARY.encode() not in data and OTHER_CANARY.encode() not in data, f"the canary is in {path}"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return install_plugin(tmp_path / "site", "canary", "tests.canary_plugin")


def test_the_canary_survives_no_failure(tmp_path: Path, env: dict[str, str]) -> None:
    outputs: list[str] = []
    with FakeServer(_echo_app(503)) as down, FakeServer(_echo_app(403)) as refusing:
        # 1. a source that keeps failing (503 quoting the token), one refused for good (403), and a
        #    Discourse source whose server echoes its Api-Key: -v, so httpx logs every URL
        config = _config(
            tmp_path,
            [
                ("down", "canary", {"base_url": down.url, "token": CANARY}),
                ("refusing", "canary", {"base_url": refusing.url, "token": CANARY}),
                ("forum", "discourse", {"base_url": refusing.url, "api_key": CANARY, "api_username": "brand"}),
            ],
        )
        run = scrm("run", "--once", "-v", "-c", str(config), cwd=tmp_path, env=env)
        assert run.returncode == 1
        assert "source down stopped: unreachable after 2 attempts" in " ".join(run.stderr.split())
        assert "source forum stopped" in run.stderr and "source refusing stopped" in run.stderr
        assert "HTTP Request: GET" in run.stderr  # httpx's own log was there, redacted
        outputs += [run.stdout, run.stderr]

        # 2. serve: a webhook payload whose parsing error quotes the token, /health with the failures
        served = start_serve(config, args=["-v"], env=env)
        try:
            answer = httpx.post(f"{served.url}/webhooks/down", content=b'{"hello": 1}', timeout=30)
            assert answer.status_code == 200
            wait_until(lambda: query(tmp_path / "state.db", "SELECT reason FROM dead_letters"), what="a dead letter")
            health = httpx.get(f"{served.url}/health", timeout=30).text
            assert "refusing" in health
            outputs.append(health)
        finally:
            served.stop()
        outputs.append(served.output())
        (reason,) = query(tmp_path / "state.db", "SELECT reason FROM dead_letters")[0]
        assert "cannot read" in reason and "[REDACTED]" in reason

        # 3. an adapter that crashes with the token in a plain exception, with and without tracebacks
        (tmp_path / "crash").mkdir()
        crashing = {"base_url": down.url, "token": CANARY, "fail_start": True}
        crash = _config(tmp_path / "crash", [("boom", "canary", crashing)])
        plain = scrm("run", "--once", "-c", str(crash), cwd=tmp_path, env=env)
        assert plain.returncode == 1 and "unexpected RuntimeError" in plain.stderr
        traced = scrm("run", "--once", "-v", "-c", str(crash), cwd=tmp_path, env={**env, "SCRM_RAISE_ERRORS": "1"})
        assert traced.returncode == 1 and "Traceback (most recent call last)" in traced.stderr
        outputs += [plain.stdout, plain.stderr, traced.stdout, traced.stderr]

        # 4. a CRM whose API echoes the bearer token (HubSpot), with SCRM_RAISE_ERRORS=1
        data = tmp_path / "hub" / "one.ndjson"
        data.parent.mkdir()
        data.write_text(
            '{"kind": "message.created", "message": {"network": "x", "id": "1", "text": "hi", '
            '"created_at": "2026-01-01T00:00:00Z", "author": {"network": "x", "account_id": "9"}}}\n'
        )
        hubspot = toml_inline({"access_token": OTHER_CANARY, "base_url": refusing.url})
        hub = _config(
            tmp_path / "hub",
            [("demo", "replay", {"paths": [str(data)]})],
            crm=f'[crm]\nadapter = "hubspot"\nsettings = {hubspot}\n',
        )
        for extra in ({}, {"SCRM_RAISE_ERRORS": "1"}):
            crm_run = scrm("run", "--once", "-v", "-c", str(hub), cwd=tmp_path, env={**env, **extra})
            assert crm_run.returncode == 1
            outputs += [crm_run.stdout, crm_run.stderr]
    for text in outputs:
        assert CANARY not in text and OTHER_CANARY not in text, text
    assert any("[REDACTED]" in text for text in outputs)
    _no_canary_in_files(tmp_path)
    assert os.environ.get("SCRM_RAISE_ERRORS") is None
