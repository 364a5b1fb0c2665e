"""A source that stays unreachable ends ``scrm run --once`` within ``max_attempts``, with an error
naming it, while the other sources finish; the back-off is the sink's (capped, with jitter)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from scrm.config import load_config
from scrm.engine import Engine
from scrm.plugins import PluginHost
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router

from scrm_core.retry import backoff
from scrm_core.testing.fakes import FakeServer
from tests.e2e import toml_inline
from tests.serving import free_port, query, scrm

LINE = (
    '{"kind": "message.created", "message": {"network": "demo", "id": "%d", "text": "message %d", '
    '"created_at": "2026-01-01T00:00:00Z", "author": {"network": "demo", "account_id": "a"}}}\n'
)


class Down:
    """A Discourse that answers every request 503, counting them."""

    def __init__(self) -> None:
        self.requests: list[str] = []

        async def down(request: Request) -> Response:
            self.requests.append(request.url.path)
            return JSONResponse({"errors": ["maintenance"]}, 503)

        self.app = Router(routes=[Route("/{path:path}", down)])


def _config(folder: Path, forum_url: str, attempts: int) -> Path:
    data = folder / "events.ndjson"
    data.write_text("".join(LINE % (i, i) for i in range(5)))
    forum = {"base_url": forum_url, "api_key": "k" * 16, "api_username": "brand", "poll_seconds": 60}
    text = (
        '[state]\nurl = "sqlite:///state.db"\n[crm]\nadapter = "localcrm"\nsettings = { path = "crm.db" }\n'
        f'[[sources]]\nname = "forum"\nadapter = "discourse"\nsettings = {toml_inline(forum)}\n'
        f'[[sources]]\nname = "demo"\nadapter = "replay"\nsettings = {toml_inline({"paths": [str(data)]})}\n'
        f"[engine]\nbatch_window_ms = 0\nmax_attempts = {attempts}\nretry_max_seconds = 0.05\n"
    )
    path = folder / "scrm.toml"
    path.write_text(text)
    return path


def test_a_source_answering_503_is_given_up_after_max_attempts_and_the_others_finish(tmp_path: Path) -> None:
    down = Down()
    host = PluginHost(env={}).load()
    with FakeServer(down.app) as server:
        config = load_config(_config(tmp_path, server.url, 4), env={}, networks=host.networks, crms=host.crms)
        stats = asyncio.run(Engine(config, host).run(follow=False, handle_signals=False))
    assert down.requests == ["/posts.json"] * 4  # one GET per attempt, and no more
    assert stats.failed_sources.keys() == {"forum"}
    assert stats.failed_sources["forum"].startswith("unreachable after 4 attempts: discourse: GET /posts.json")
    messages = query(tmp_path / "crm.db", "SELECT external_key FROM messages ORDER BY external_key")
    assert messages == [(f"scrm:demo:{i}",) for i in range(5)]  # the other source finished


@pytest.mark.slow
def test_run_once_with_an_unreachable_source_exits_1_naming_it(tmp_path: Path) -> None:
    config = _config(tmp_path, f"http://127.0.0.1:{free_port()}", 3)  # nothing listens there
    run = scrm("run", "--once", "-c", str(config), cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    err = " ".join(run.stderr.split())
    stopped = "error: source forum stopped: unreachable after 3 attempts"
    assert f"{stopped}: discourse: GET /posts.json: connection failed" in err
    assert "1 source(s) failed; the others were synced" in err and "Traceback" not in run.stderr
    assert "new messages 5" in " ".join(run.stdout.split())
    # the next run goes on from where the others are, and tries the failed one again
    again = scrm("run", "--once", "-c", str(config), cwd=tmp_path)
    assert again.returncode == 1 and "new messages 0" in " ".join(again.stdout.split())


def test_the_back_off_is_exponential_capped_and_jittered() -> None:
    waits = [[backoff(attempt, cap=4.0) for attempt in range(1, 8)] for _ in range(200)]
    for attempt, column in enumerate(zip(*waits, strict=True), start=1):
        ceiling = min(0.5 * 2 ** (attempt - 1), 4.0)
        assert all(ceiling / 2 <= w <= ceiling for w in column)
        assert len(set(column)) > 100  # jitter: retries of many processes do not line up
    assert backoff(3, 120.0, cap=4.0) == 4.0  # what the service asks for, capped too
    assert backoff(3, 1.5, cap=4.0) == 1.5
