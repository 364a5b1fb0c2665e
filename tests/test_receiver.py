"""The webhook receiver: verified, stored, then 2xx; everything else 4xx, counted, nothing stored."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from scrm.receiver import ReceiverCounts, build_receiver
from scrm.store import AsyncStore, StateStore, open_store

from scrm_core import AdapterContext
from scrm_core.testing.fakes.server import FakeServer
from tests import testnet

LIMIT = 4096


class Receiver:
    def __init__(self, tmp_path: Path) -> None:
        self.db = tmp_path / "state.db"
        self.store = AsyncStore(lambda: open_store("sqlite:///state.db", tmp_path))
        asyncio.run(self.store.call(StateStore.migrate))
        adapter = testnet.LoopbackNetAdapter(testnet.Settings(network_id="r"), AdapterContext(name="loop"))
        self.counts = ReceiverCounts()
        self.stored: list[str] = []
        app = build_receiver(
            self.store, {"loop": adapter}, max_body_bytes=LIMIT, on_stored=self.stored.append, counts=self.counts
        )
        self.server = FakeServer(app)
        self.url = f"{self.server.url}/webhooks/loop"
        self.http = httpx.Client(timeout=10)

    def rows(self) -> int:
        with sqlite3.connect(self.db) as con:
            return int(con.execute("SELECT count(*) FROM webhook_inbox").fetchone()[0])

    def close(self) -> None:
        self.http.close()
        self.server.stop()


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    r = Receiver(tmp_path)
    yield r
    r.close()


def test_a_signed_payload_is_stored_before_200_and_a_redelivery_is_stored_once(receiver: Receiver) -> None:
    headers, body = testnet.signed({"id": 1, "text": "hello"})
    first = receiver.http.post(receiver.url, content=body, headers=headers)
    assert first.status_code == 200 and first.json()["stored"] >= 1
    assert receiver.rows() == 1 and receiver.stored == ["loop"]
    again = receiver.http.post(receiver.url, content=body, headers=headers)
    assert again.status_code == 200 and again.json() == {"duplicate": True}
    assert receiver.rows() == 1
    with sqlite3.connect(receiver.db) as con:
        stored_headers, stored_body = con.execute("SELECT headers, body FROM webhook_inbox").fetchone()
    assert bytes(stored_body) == body
    assert json.loads(stored_headers) == {"x-test-event": "created"}  # only what parsing needs


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("wrong secret", 401, "bad_signature"),
        ("changed body", 401, "bad_signature"),
        ("no signature", 401, "bad_signature"),
        ("no timestamp", 401, "missing_timestamp"),
        ("replayed after 10 minutes", 401, "stale_timestamp"),
        ("signed but not JSON", 400, "malformed_json"),
        ("too large", 413, "body_too_large"),
        ("unknown source", 404, "unknown_source"),
    ],
)
def test_bad_requests_get_a_4xx_and_nothing_is_stored(receiver: Receiver, case: str, status: int, reason: str) -> None:
    url = receiver.url
    headers, body = testnet.signed({"id": 2, "text": "hi"})
    if case == "wrong secret":
        headers, body = testnet.signed({"id": 2, "text": "hi"}, secret="guessed")
    elif case == "changed body":
        body = body.replace(b"hi", b"ho")
    elif case == "no signature":
        del headers["x-test-signature"]
    elif case == "no timestamp":
        del headers["x-test-timestamp"]
    elif case == "replayed after 10 minutes":
        headers, body = testnet.signed({"id": 2, "text": "hi"}, at=time.time() - 600)
    elif case == "signed but not JSON":
        headers, body = testnet.signed(b'{"id": 2, "text": ')
    elif case == "too large":
        headers, body = testnet.signed({"id": 2, "text": "x" * LIMIT})
    elif case == "unknown source":
        url = url.replace("/loop", "/elsewhere")
    answer = receiver.http.post(url, content=body, headers=headers)
    assert (answer.status_code, answer.json()) == (status, {"error": reason})
    assert receiver.rows() == 0 and receiver.counts.rejected == {reason: 1}


def test_a_body_larger_than_its_content_length_claims_is_cut_off(receiver: Receiver) -> None:
    headers, _ = testnet.signed({"id": 3, "text": "x"})

    def chunks() -> Iterator[bytes]:  # chunked: no Content-Length to refuse up front
        for _ in range(LIMIT // 512 + 2):
            yield b"x" * 512

    answer = receiver.http.post(receiver.url, content=chunks(), headers=headers)
    assert answer.status_code == 413 and receiver.rows() == 0


def test_health_reports_counts(receiver: Receiver) -> None:
    headers, body = testnet.signed({"id": 4, "text": "ok"})
    receiver.http.post(receiver.url, content=body, headers=headers)
    receiver.http.post(receiver.url, content=b"{}", headers={"x-test-timestamp": "1"})
    health = receiver.http.get(receiver.url.replace("/webhooks/loop", "/health"))
    assert health.status_code == 200
    data = health.json()
    assert data["status"] == "ok" and data["sources"] == ["loop"]
    assert data["webhooks"]["stored"] == {"loop": 1} and data["webhooks"]["rejected"] == {"stale_timestamp": 1}


def _fuzz_request(rng: random.Random) -> tuple[str, dict[str, str], bytes]:
    """One hostile request: random bytes, forged or mangled signatures, stale stamps, odd methods."""
    valid_headers, valid_body = testnet.signed({"id": rng.randrange(10**6), "text": "fuzz"})
    body: bytes
    kind = rng.randrange(7)
    if kind == 0:
        body = rng.randbytes(rng.randrange(0, 600))
        headers = dict(valid_headers)
    elif kind == 1:  # a valid signature over different bytes
        body = bytearray(valid_body)
        body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
        body = bytes(body)
        headers = dict(valid_headers)
    elif kind == 2:
        body = valid_body
        headers = {**valid_headers, "x-test-signature": rng.randbytes(32).hex()}
    elif kind == 3:
        body = valid_body
        headers = {**valid_headers, "x-test-timestamp": rng.choice(["", "-1", "1e309", "nan", "0x10", "9" * 40])}
    elif kind == 4:
        headers, body = testnet.signed({"id": 1, "text": "old"}, at=time.time() - rng.randrange(301, 10**7))
        if rng.random() < 0.2:  # non-ASCII bytes, as a hostile client can send them
            headers["x-test-timestamp"] = "١٢٣"  # decoded by the server as Latin-1 mojibake
    elif kind == 5:
        body = valid_body + b"\x00" * rng.randrange(1, 50)
        headers = {k: v for k, v in valid_headers.items() if rng.random() < 0.5}
    else:
        body = rng.randbytes(LIMIT + rng.randrange(1, 2048))
        headers = dict(valid_headers)
    method = rng.choice(["POST", "POST", "POST", "GET", "PUT"])
    return method, headers, body


def test_fuzz_thousands_of_hostile_requests_store_nothing_and_the_server_stays_up(receiver: Receiver) -> None:
    rng = random.Random(20261123)
    requests = [_fuzz_request(rng) for _ in range(3000)]
    statuses: dict[int, int] = {}

    async def send_all() -> None:
        limit = asyncio.Semaphore(16)  # 16 at a time, as a flood would come
        async with httpx.AsyncClient(timeout=30) as http:

            async def one(method: str, headers: dict[str, str], body: bytes) -> None:
                raw = {k: v.encode() for k, v in headers.items()}
                async with limit:
                    answer = await http.request(method, receiver.url, content=body, headers=raw)
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

            await asyncio.gather(*(one(*r) for r in requests))

    asyncio.run(send_all())
    assert all(400 <= s < 500 for s in statuses), statuses  # never a 2xx, never a 5xx
    assert receiver.rows() == 0 and receiver.counts.errors == 0
    assert sum(receiver.counts.rejected.values()) == sum(v for k, v in statuses.items() if k != 405)
    headers, body = testnet.signed({"id": 5, "text": "still here"})
    assert receiver.http.post(receiver.url, content=body, headers=headers).status_code == 200
    assert receiver.rows() == 1


# ---------------------------------------------------------------- crash right after the 2xx


def _install_testnet(site: Path) -> dict[str, str]:
    """Make the testnet plugin an installed distribution for a subprocess (an entry point)."""
    site.mkdir()
    (site / "scrm_testnet_plugin.py").write_text("from tests.testnet import *  # noqa: F403\n")
    info = site / "scrm_testnet_plugin-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: scrm-testnet-plugin\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text("[scrm]\ntestnet = scrm_testnet_plugin\n")
    root = Path(__file__).resolve().parent.parent
    return {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{root}"}


def _start_serve(config: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    scrm = Path(sys.executable).parent / "scrm"
    proc = subprocess.Popen(
        [str(scrm), "serve", "-c", str(config), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if "receiving on " in line:
            return proc, line.split("receiving on ")[1].split()[0]
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError(f"scrm serve did not start: {proc.stdout.read()}")


@pytest.mark.slow
def test_a_crash_right_after_the_200_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    env = _install_testnet(tmp_path / "site")
    network_id = uuid.uuid4().hex
    config = tmp_path / "scrm.toml"
    config.write_text(
        '[state]\nurl = "sqlite:///state.db"\n[crm]\nadapter = "localcrm"\nsettings = { path = "crm.db" }\n'
        f'[[sources]]\nname = "loop"\nadapter = "testnet"\nsettings = {{ network_id = "{network_id}" }}\n'
        "[engine]\nbatch_window_ms = 0\n"
    )
    payloads = [testnet.signed({"id": i, "text": f"message {i}"}) for i in range(1, 4)]
    proc, url = _start_serve(config, env)
    try:
        with httpx.Client(timeout=10) as http:
            for headers, body in payloads:
                assert http.post(f"{url}/webhooks/loop", content=body, headers=headers).status_code == 200
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # right after the last 200: maybe before the engine saw it
        proc.wait()
    # The network redelivers one it did not see answered; then a fresh process finishes the sync.
    proc, url = _start_serve(config, env)
    try:
        with httpx.Client(timeout=10) as http:
            headers, body = payloads[-1]
            answer = http.post(f"{url}/webhooks/loop", content=body, headers=headers)
            assert answer.status_code == 200 and answer.json() == {"duplicate": True}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    subprocess.run([str(Path(sys.executable).parent / "scrm"), "run", "--once", "-c", str(config)], env=env, check=True)
    with sqlite3.connect(tmp_path / "crm.db") as con:
        rows = con.execute("SELECT external_key, text FROM messages ORDER BY external_key").fetchall()
    assert rows == [(f"scrm:testnet:{i}", f"message {i}") for i in range(1, 4)]
