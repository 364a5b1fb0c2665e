"""``scrm serve``'s work: the webhook receiver (starlette under uvicorn) and a following sync in
one process; imported when the command runs (:mod:`scrm.cli.serve` registers it)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Iterator

import uvicorn

from scrm.connections import ACCEPT_BACKLOG, ConnectionGuard, connection_cap, quiet_accept_errors
from scrm.engine import Engine, RunStats
from scrm.plugins import PluginHost
from scrm.receiver import ReceiverCounts, build_receiver
from scrm_core.adapters import NetworkCapability
from scrm_core.config import Config
from scrm_core.errors import FatalError

from .common import console


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: ``serve`` stops the receiver and the engine together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise FatalError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port") from None
    sock.listen(ACCEPT_BACKLOG)
    return sock


async def serve(config: Config, host: PluginHost, *, address: str, port: int) -> tuple[RunStats, ReceiverCounts]:
    """Run the engine (following) and, once its adapters are started, the receiver."""
    sock = _bind(address, port)  # first: a port in use is said at once, before anything starts
    engine = Engine(config, host)
    engine_task = asyncio.create_task(engine.run(follow=True, handle_signals=False), name="engine")
    ready = asyncio.create_task(engine.ready.wait())
    await asyncio.wait({engine_task, ready}, return_when=asyncio.FIRST_COMPLETED)
    counts = ReceiverCounts()
    if engine_task.done():  # it failed while starting
        ready.cancel()
        sock.close()
        return engine_task.result(), counts
    assert engine.store is not None
    hooks = {n: a for n, a in engine.sources.items() if NetworkCapability.webhook in type(a).capabilities}
    settings = config.serve
    guard = ConnectionGuard(
        max_connections=connection_cap(settings.max_connections),
        header_timeout=settings.header_timeout_seconds,
        body_timeout=settings.body_timeout_seconds,
    )
    app = build_receiver(
        engine.store,
        hooks,
        max_body_bytes=settings.max_body_bytes,
        body_timeout=settings.body_timeout_seconds,
        on_stored=engine.webhook_stored,
        counts=counts,
        status=lambda: {
            "failed_sources": dict(engine.failed_sources),
            "retrying_sources": dict(engine.retrying_sources),
            "connections": guard.counts.as_dict(guard.max_connections),
        },
    )
    server = _Server(
        uvicorn.Config(
            app,
            http=guard.protocol(),
            log_config=None,  # uvicorn's records go to scrm's handlers: redacted, one line each
            log_level="warning",
            access_log=False,
            lifespan="off",
            backlog=ACCEPT_BACKLOG,
            h11_max_incomplete_event_size=16 * 1024,  # a request head larger than this gets 400
            timeout_graceful_shutdown=int(settings.body_timeout_seconds) + 5,
        )
    )

    def stop() -> None:
        server.should_exit = True
        engine.request_stop()

    loop = asyncio.get_running_loop()
    quiet_accept_errors(loop)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    bound_host, bound_port = sock.getsockname()[:2]
    console.print(f"receiving on http://{bound_host}:{bound_port}  (GET /health)", highlight=False)
    for name in sorted(hooks):
        console.print(f"  source {name}: /webhooks/{name}", highlight=False)
    if not hooks:
        console.print("  no configured source receives webhooks; the sync runs all the same", highlight=False)
    server_task = asyncio.create_task(server.serve(sockets=[sock]), name="receiver")
    try:
        await asyncio.wait({engine_task, server_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True  # stop taking payloads first, then let the engine finish
        await asyncio.gather(server_task, return_exceptions=True)
        engine.request_stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        sock.close()
    return await engine_task, counts
