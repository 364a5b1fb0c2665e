"""The webhook receiver behind ``scrm serve``: verify, store durably, then answer 2xx.

One endpoint per configured source whose adapter has the ``webhook`` capability:
``/webhooks/<source name>``. For every request, in this order:

1. the body is read up to ``[serve] max_body_bytes`` (a larger one gets 413 before more
   is read; a lying ``Content-Length`` is caught while reading);
2. the adapter's ``verify_webhook`` checks the signature on the raw bytes, in constant
   time, and the signed timestamp where the network signs one, before anything parses
   them; it may answer a handshake itself (nothing stored);
3. a POST body must be well-formed JSON (400 otherwise);
4. the payload is written to the state store (one SQLite transaction, committed), and
   only then is 200 answered. A payload already stored (the same bytes: a redelivery or
   a replay) is answered 200 and stored once, so the network stops redelivering.

Every refusal is a 4xx with a short reason code, counted per reason in ``/health``; no
request can take the server down, and nothing from a refused request is stored. The
events are parsed later by the engine from the stored copy (:mod:`scrm_core.engine.inbox`).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .adapters import NetworkAdapter
from .store import AsyncStore
from .webhooks import WebhookRejected, WebhookRequest

__all__ = ["ReceiverCounts", "build_receiver"]

log = logging.getLogger("scrm.serve")


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


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise WebhookRejected(400, "bad_content_length")
        if int(declared) > limit:
            raise WebhookRejected(413, "body_too_large")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise WebhookRejected(413, "body_too_large")
            chunks.append(chunk)
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
    on_stored: Callable[[str], None] = lambda source: None,
    counts: ReceiverCounts | None = None,
) -> Starlette:
    """The ASGI app. ``sources``: the webhook sources by name (their adapters started)."""
    tally = counts if counts is not None else ReceiverCounts()

    async def receive(request: Request) -> Response:
        name = request.path_params["source"]
        adapter = sources.get(name)
        try:
            if adapter is None:
                raise WebhookRejected(404, "unknown_source")
            body = await _read_body(request, max_body_bytes)
            headers = {k.lower(): v for k, v in request.headers.items()}
            hook = WebhookRequest(request.method, headers, dict(request.query_params), body)
            answer = adapter.verify_webhook(hook)
            if answer is not None:
                return Response(answer.body, answer.status, media_type=answer.media_type)
            if request.method != "POST":
                raise WebhookRejected(405, "method_not_allowed")
            try:
                orjson.loads(body)
            except orjson.JSONDecodeError:
                raise WebhookRejected(400, "malformed_json") from None
            digest = hashlib.sha256(body).hexdigest()
            stored = await store.store_webhook(name, digest, _kept_headers(adapter, headers), body)
        except WebhookRejected as exc:
            tally.rejected[exc.reason] += 1
            log.info("webhook for %s refused: %d %s", name, exc.status, exc.reason)
            return JSONResponse({"error": exc.reason}, exc.status)
        except Exception as exc:  # an adapter bug or the store failing: never a 2xx, never a crash
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
            depth = await store.outbox_depth()
        except Exception as exc:
            log.error("health: the state store failed: %s", type(exc).__name__)
            return JSONResponse({"status": "unavailable", "store": "failing"}, 503)
        return JSONResponse({"status": "ok", "sources": sorted(sources), "outbox": depth, "webhooks": tally.as_dict()})

    async def root(request: Request) -> Response:
        return PlainTextResponse("scrm webhook receiver: POST to /webhooks/<source>; GET /health\n")

    return Starlette(
        routes=[
            Route("/", root, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/webhooks/{source}", receive, methods=["GET", "POST"]),
        ]
    )
