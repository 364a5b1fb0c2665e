"""Webhook receiver throughput: signed Discourse deliveries verified and stored, per second.

Three request kinds against the same `scrm serve` receiver app (uvicorn on 127.0.0.1,
the real Discourse adapter, a SQLite state store), each sent by one client with 16 in
flight, in the same run:

- ``baseline``: ``GET /health`` (HTTP and one cheap store read: the floor of the stack);
- ``forged``: a POST whose signature is wrong (read, verify in constant time, refuse);
- ``stored``: a valid signed delivery (read, verify, JSON check, committed to SQLite, 200).

Prints JSON: requests/s per kind (median of ``--runs``) and the ratios to the baseline.

    .venv/bin/python bench/bench_webhooks.py --requests 3000 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from scrm.receiver import build_receiver
from scrm.store import AsyncStore, StateStore, open_store
from scrm_discourse.adapter import DiscourseAdapter
from scrm_discourse.settings import DiscourseSettings
from scrm_discourse.testing import FakeDiscourse

from scrm_core import AdapterContext
from scrm_core.testing.fakes.server import FakeServer

SECRET = "bench-webhook-secret"


def deliveries(n: int, *, forged: bool) -> list[tuple[dict[str, str], bytes]]:
    fake = FakeDiscourse(webhook_secret=SECRET)
    out = []
    for i in range(n):
        post = {"id": 10_000 + i, "topic_id": 7, "post_number": i + 2, "raw": f"delivery {i}", "user_id": 3}
        d = fake.signed_request("post_created", {"post": post}, secret="wrong" if forged else None)
        headers = {k: v for k, v in d.headers.items() if k not in ("Host", "Content-Length", "Connection")}
        out.append((headers, d.body))
    return out


async def blast(url: str, requests: list[tuple[str, dict[str, str], bytes]]) -> tuple[float, dict[int, int]]:
    limit = asyncio.Semaphore(16)
    statuses: dict[int, int] = {}
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=16)) as http:

        async def one(method: str, headers: dict[str, str], body: bytes) -> None:
            async with limit:
                answer = await http.request(method, url, headers=headers, content=body)
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(one(*r) for r in requests))
        return len(requests) / (time.perf_counter() - started), statuses


def run_once(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        store = AsyncStore(lambda: open_store("sqlite:///state.db", Path(folder)))
        asyncio.run(store.call(StateStore.migrate))
        settings = DiscourseSettings(
            base_url="http://127.0.0.1:9", api_key="unused", api_username="acme", webhook_secret=SECRET
        )
        adapter = DiscourseAdapter(settings, AdapterContext(name="forum"))
        server = FakeServer(build_receiver(store, {"forum": adapter}, max_body_bytes=1_048_576))
        try:
            hook = f"{server.url}/webhooks/forum"
            results: dict[str, float] = {}
            kinds = {
                "baseline": (f"{server.url}/health", [("GET", {}, b"")] * n),
                "forged": (hook, [("POST", h, b) for h, b in deliveries(n, forged=True)]),
                "stored": (hook, [("POST", h, b) for h, b in deliveries(n, forged=False)]),
            }
            for kind, (url, requests) in kinds.items():
                rate, statuses = asyncio.run(blast(url, requests))
                expected = {"baseline": 200, "forged": 401, "stored": 200}[kind]
                assert statuses == {expected: n}, (kind, statuses)
                results[kind] = rate
            return results
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [run_once(args.requests) for _ in range(args.runs)]
    median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(
        json.dumps(
            {
                "benchmark": "webhook receiver (scrm serve), Discourse deliveries, 16 in flight",
                "requests_per_kind": args.requests,
                "runs": args.runs,
                "requests_per_second_median": {k: round(v) for k, v in median.items()},
                "ratio_to_baseline": {k: round(v / median["baseline"], 2) for k, v in median.items()},
                "all_runs": [{k: round(v) for k, v in r.items()} for r in runs],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
