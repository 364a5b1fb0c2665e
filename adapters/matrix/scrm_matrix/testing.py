"""A fault-injecting reverse proxy for a real Matrix homeserver, for adapter tests.

Matrix is the network a company runs itself, so its adapter is tested against a real
homeserver (Synapse) rather than a fake. What a real server will not do on demand is
fail: this proxy sits between the adapter and the homeserver, forwards every request,
and on request answers in the homeserver's own failure shapes:

* :meth:`MatrixFaultProxy.rate_limit_next`: the next request gets 429 with the body
  ``{"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests", "retry_after_ms": N}``
  and a ``Retry-After`` header in seconds, as Synapse answers
  (https://spec.matrix.org/v1.15/client-server-api/#rate-limiting; ``synapse/api/errors.py``
  ``LimitExceededError``), without forwarding it;
* :meth:`MatrixFaultProxy.lose_next_response`: the next write (PUT / POST / DELETE) IS
  forwarded, so the homeserver applies it, and then answered with a 502, as a load
  balancer that lost the upstream answer would. Sending again with the same transaction
  id must not post twice (https://spec.matrix.org/v1.15/client-server-api/#transaction-identifiers);
* random faults from ``faults`` (a :class:`FaultInjector`: ``rate_429``, ``rate_5xx``
  (500 ``M_UNKNOWN``, not forwarded), ``rate_lost_response``).

It never reaches beyond the ``upstream`` URL it was given::

    proxy = MatrixFaultProxy("http://127.0.0.1:8008")
    with FakeServer(proxy.app) as server:
        settings = {"base_url": server.url, ...}
        proxy.rate_limit_next()
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from scrm_core.testing.fakes import Fault, FaultInjector

__all__ = ["MatrixFaultProxy"]

#: Headers that describe one hop, not the message (RFC 9110 section 7.6.1), or that httpx
#: has already undone (it decodes gzip, so the length and encoding no longer hold).
_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "host",
        "content-length",
        "content-encoding",
    }
)
_WRITES = frozenset({"PUT", "POST", "DELETE"})


class MatrixFaultProxy:
    """Forwards to ``upstream``; ``counts`` tells which faults were served."""

    def __init__(self, upstream: str, *, retry_after_ms: int = 50, faults: FaultInjector | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.retry_after_ms = retry_after_ms
        self.faults = faults or FaultInjector()
        self.counts: Counter[str] = Counter()
        self.requests: list[tuple[str, str]] = []  # (method, path), for tests that check what was asked
        self._client: httpx.AsyncClient | None = None
        self.app = Starlette(
            routes=[Route("/{path:path}", self._handle, methods=["GET", "PUT", "POST", "DELETE", "OPTIONS"])]
        )

    # ------------------------------------------------------------ arming

    def rate_limit_next(self, times: int = 1) -> None:
        """Refuse the next ``times`` requests with 429 ``M_LIMIT_EXCEEDED``."""
        self.faults.arm(Fault.rate_limited, times)

    def lose_next_response(self) -> None:
        """Forward the next write, then answer 502 instead of the homeserver's answer."""
        self.faults.arm(Fault.lost_response)

    def reset(self) -> None:
        self.faults.clear()
        self.counts.clear()
        self.requests.clear()

    @property
    def refusals(self) -> int:
        return self.counts[Fault.rate_limited.value]

    # ------------------------------------------------------------ serving

    def _fault_for(self, method: str) -> Fault:
        if self.faults.take_armed(Fault.rate_limited):
            return Fault.rate_limited
        if method in _WRITES and self.faults.take_armed(Fault.lost_response):
            return Fault.lost_response
        fault = self.faults.roll()
        if fault is Fault.timeout:  # not simulated here: forward normally
            return Fault.none
        return fault

    async def _handle(self, request: Request) -> Response:
        self.requests.append((request.method, request.url.path))
        fault = self._fault_for(request.method)
        if fault is Fault.rate_limited:
            self.counts[fault.value] += 1
            return JSONResponse(
                {"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests", "retry_after_ms": self.retry_after_ms},
                status_code=429,
                headers={"Retry-After": str(max(1, -(-self.retry_after_ms // 1000)))},
            )
        if fault is Fault.server_error:
            self.counts[fault.value] += 1
            return JSONResponse({"errcode": "M_UNKNOWN", "error": "Internal server error"}, status_code=500)
        upstream = await self._forward(request)
        if fault is Fault.lost_response:
            self.counts[fault.value] += 1
            return Response(b"<html><body>502 Bad Gateway</body></html>", status_code=502, media_type="text/html")
        return upstream

    async def _forward(self, request: Request) -> Response:
        if self._client is None:  # created in the server's own event loop
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(330.0))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        answer = await self._client.request(
            request.method,
            self.upstream + request.url.path,
            params=list(request.query_params.multi_items()),
            headers=headers,
            content=await request.body(),
        )
        kept: dict[str, Any] = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_HEADERS}
        return Response(answer.content, status_code=answer.status_code, headers=kept)
