"""The webhook receiver behind ``scrm serve``: verify, store durably, then answer 2xx.

One endpoint per configured source whose adapter has the ``webhook`` capability:
``/webhooks/<source name>``. For every request, in this order:

1. a request with both ``Content-Length`` and ``Transfer-Encoding`` is refused (400: its
   length is ambiguous, the stuff of request smuggling); the body is read up to
   ``[serve] max_body_bytes`` (a larger one gets 413 before more is read; a lying
   ``Content-Length`` is caught while reading) within ``[serve] body_timeout_seconds``
   (408 after that: a body that never ends cannot hold the connection);
2. the adapter's ``verify_webhook`` checks the signature on the raw bytes, in constant
   time, and the signed timestamp where the network signs one, before anything parses
   them; it may answer a handshake itself (nothing stored);
3. a POST body must be JSON that :func:`~scrm_core.webhooks.parse_webhook_json` accepts:
   the parser and depth limit the adapters read the stored copy with (400 otherwise), so
   nothing is acknowledged that the engine cannot read back;
4. the payload is written to the state store (one SQLite transaction, committed), and
   only then is 200 answered. A payload already stored (the same bytes: a redelivery or
   a replay) is answered 200 and stored once, so the network stops redelivering. If the
   store cannot write (disk full, read-only), the answer is 503 and the network retries.

Every refusal is a 4xx with a short reason code, counted per reason in ``/health``, and
logged in constant time: what came from the request is cut short and its control
characters escaped (:func:`~scrm_core.redaction.printable`), so no request can forge a log
line or make logging slow. No answer is a redirect (none is built from a ``Host`` header).
Nothing from a refused request is stored. The events are parsed later by the engine from
the stored copy (:mod:`scrm.engine.inbox`); read timeouts and the connection cap are
the server's (:mod:`scrm.connections`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp

from scrm.store import AsyncStore, StateStore
from scrm_core.adapters import NetworkAdapter
from scrm_core.errors import FatalError
from scrm_core.redaction import printable
from scrm_core.webhooks import WebhookPayloadError, WebhookRejected, WebhookRequest, parse_webhook_json

__all__ = ["ReceiverCounts", "build_receiver"]

log = logging.getLogger("scrm.serve")


class _AnyName(Convertor[str]):
    """Everything after ``/webhooks/``, slashes and control characters included: whatever is
    not a source's name is answered ``unknown_source`` (and logged, escaped), never routed
    elsewhere or redirected."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("scrm_source", _AnyName())


@dataclass
class ReceiverCounts:
    stored: Counter[str] = field(default_factory=Counter)  # per source
    duplicates: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)  # per reason
    errors: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "stored": dict(self.stored),
            "duplicates": dict(self.duplicates),
            "rejected": dict(self.rejected),
            "errors": self.errors,
        }


#: Refusals after which the connection closes: where the request's length is in doubt, or its
#: body never came. (After others the rest of an unread body is skipped, within the server's
#: read deadlines, and the connection is kept: closing with data unread resets it, and the
#: client would never see its 413.)
_CLOSE_AFTER = frozenset({"ambiguous_length", "bad_content_length", "body_timeout"})


async def _read_body(request: Request, limit: int, seconds: float) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and "transfer-encoding" in request.headers:
        raise WebhookRejected(400, "ambiguous_length")
    if declared is not None:
        if not declared.isdigit():
            raise WebhookRejected(400, "bad_content_length")
        if int(declared) > limit:
            raise WebhookRejected(413, "body_too_large")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise WebhookRejected(413, "body_too_large")
                chunks.append(chunk)
    except TimeoutError:
        raise WebhookRejected(408, "body_timeout") from None
    except ClientDisconnect:
        raise WebhookRejected(400, "client_disconnected") from None
    return b"".join(chunks)


def _kept_headers(adapter: NetworkAdapter, headers: Mapping[str, str]) -> dict[str, str]:
    return {name: headers[name] for name in type(adapter).webhook_headers if name in headers}


def build_receiver(
    store: AsyncStore,
    sources: Mapping[str, NetworkAdapter],
    *,
    max_body_bytes: int,
    body_timeout: float = 30.0,
    on_stored: Callable[[str], None] = lambda source: None,
    counts: ReceiverCounts | None = None,
    status: Callable[[], Mapping[str, object]] = dict,
) -> ASGIApp:
    """The ASGI app. ``sources``: the webhook sources by name (their adapters started).
    ``status``: more for ``/health`` (the engine's failed and retrying sources, the connection
    counts); a ``failed_sources`` or ``retrying_sources`` entry that is not empty makes the
    status ``degraded`` (still 200: the receiver itself works)."""
    tally = counts if counts is not None else ReceiverCounts()

    async def receive(request: Request) -> Response:
        name = request.path_params["source"]
        adapter = sources.get(name)
        try:
            if adapter is None:
                raise WebhookRejected(404, "unknown_source")
            body = await _read_body(request, max_body_bytes, body_timeout)
            headers = {k.lower(): v for k, v in request.headers.items()}
            hook = WebhookRequest(request.method, headers, dict(request.query_params), body)
            answer = adapter.verify_webhook(hook)
            if answer is not None:
                return Response(answer.body, answer.status, media_type=answer.media_type)
            if request.method != "POST":
                raise WebhookRejected(405, "method_not_allowed")
            try:
                parse_webhook_json(body)
            except WebhookPayloadError as exc:
                raise WebhookRejected(400, exc.reason) from None
            digest = hashlib.sha256(body).hexdigest()
            stored = await store.call(StateStore.store_webhook, name, digest, _kept_headers(adapter, headers), body)
        except WebhookRejected as exc:
            tally.rejected[exc.reason] += 1
            # Constant work whatever was sent: the name is cut short, control characters escaped.
            log.info("webhook for %s refused: %d %s", printable(name, 64), exc.status, exc.reason)
            close = {"connection": "close"} if exc.reason in _CLOSE_AFTER else None
            return JSONResponse({"error": exc.reason}, exc.status, headers=close)
        except FatalError as exc:  # the store cannot write (disk full, read-only): the network retries
            tally.errors += 1
            log.error("webhook for %s not stored: %s", name, exc.operator_message)
            return JSONResponse({"error": "store_unavailable"}, 503, headers={"retry-after": "30"})
        except Exception as exc:  # an adapter bug: never a 2xx, never a crash
            tally.errors += 1
            # The type only: an exception's text may quote the request.
            log.error("webhook for %s failed: %s", name, type(exc).__name__)
            return JSONResponse({"error": "internal"}, 500)
        if stored is None:
            tally.duplicates[name] += 1
            return JSONResponse({"duplicate": True})
        tally.stored[name] += 1
        on_stored(name)
        return JSONResponse({"stored": stored})

    async def health(request: Request) -> Response:
        try:
            depth = await store.call(StateStore.outbox_depth)
        except Exception as exc:
            log.error("health: the state store failed: %s", getattr(exc, "operator_message", type(exc).__name__))
            return JSONResponse({"status": "unavailable", "store": "failing"}, 503)
        extra = dict(status())
        state = "degraded" if extra.get("failed_sources") or extra.get("retrying_sources") else "ok"
        return JSONResponse(
            {"status": state, "sources": sorted(sources), "outbox": depth, "webhooks": tally.as_dict(), **extra}
        )

    async def root(request: Request) -> Response:
        return PlainTextResponse("scrm webhook receiver: POST to /webhooks/<source>; GET /health\n")

    # A Router, not a Starlette app: no redirect (Starlette's would point at a URL built from
    # the Host header), no debug pages. Any text after /webhooks/ is a source name to look up.
    return Router(
        routes=[
            Route("/", root, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/webhooks/{source:scrm_source}", receive, methods=["GET", "POST"]),
        ],
        redirect_slashes=False,
    )
