"""Run a fake service (any ASGI app) with uvicorn on 127.0.0.1 in a background thread.

Used by adapter tests, benchmarks and ``python -m scrm_core.testing.fakes``::

    with FakeServer(FakeHubSpot().app) as server:
        client = HubSpot(access_token="t", host=server.url)

The socket is bound before the thread starts (port 0: the OS picks a free port), so
``url`` is valid as soon as the constructor returns and no test ever races the server's
start-up or reaches beyond loopback.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from types import TracebackType
from typing import Any

import uvicorn

__all__ = ["FakeServer"]


class FakeServer:
    """An ASGI app served on ``127.0.0.1:<port>`` until :meth:`stop` (or the ``with`` block ends)."""

    def __init__(self, app: Any, *, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(128)
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._serve, name=f"fake-server-{self.port}", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
