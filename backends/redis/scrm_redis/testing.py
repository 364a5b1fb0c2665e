"""A real Redis server for tests: Debian's ``redis-server``, on 127.0.0.1 and a free port,
nothing saved to disk, stopped afterwards. Never a mock.

:func:`require_redis` skips the test saying why when the binary is missing (``apt-get
install redis-server``), or fails it when ``SCRM_REQUIRE_REDIS=1`` (CI).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RedisServer", "require_redis"]

REQUIRE_ENV = "SCRM_REQUIRE_REDIS"
_START_SECONDS = 30.0


def find_redis() -> tuple[Path | None, str]:
    found = os.environ.get("SCRM_REDIS_SERVER") or shutil.which("redis-server") or "/usr/bin/redis-server"
    if Path(found).exists():
        return Path(found), ""
    return None, "Redis is not installed (apt-get install redis-server); the Redis tests need it"


def require_redis() -> Path:
    import pytest

    binary, why = find_redis()
    if binary is None:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{why} ({REQUIRE_ENV} is set)")
        pytest.skip(why)
    return binary


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    @contextlib.contextmanager
    def start(cls, binary: Path) -> Iterator[RedisServer]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        folder = Path(tempfile.mkdtemp(prefix="scrm-redis-"))
        process = subprocess.Popen(
            [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        server = cls(port, process)
        try:
            deadline = time.monotonic() + _START_SECONDS
            while not server._answers():
                if process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {process.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start within {_START_SECONDS:.0f} s")
                time.sleep(0.05)  # polling interval, not a wait for an outcome
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            shutil.rmtree(folder, ignore_errors=True)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False
