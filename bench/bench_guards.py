#!/usr/bin/env python3
"""What the guards of an unattended ``scrm serve`` cost, in CPU time, beside what they guard.

Prints JSON:

* ``webhook_json``: parsing a stored Discourse delivery with orjson alone (the baseline)
  and with :func:`scrm_core.webhooks.parse_webhook_json` (orjson + the depth limit the
  receiver and the readers share);
* ``log_record``: emitting one INFO record to a null handler, without and with the
  redaction layer's record factory (a URL with a token in it, as httpx logs at ``-v``);
* ``refused_request_log``: the receiver's log line for an unknown source, for paths of
  100 B and 60 KB: the work is the same (constant), where an unbounded line grew with it.

    .venv/bin/python bench/bench_guards.py
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import orjson
from scrm.logs import install_logging
from scrm_discourse.testing import FakeDiscourse

from scrm_core.redaction import printable, register_secret
from scrm_core.testing.network import default_scenario
from scrm_core.webhooks import parse_webhook_json


def cpu_us(fn: Callable[[int], object], n: int) -> float:
    start = time.process_time()
    for i in range(n):
        fn(i)
    return round((time.process_time() - start) / n * 1e6, 2)


def main() -> None:
    forum = FakeDiscourse(staff=["brand"])
    forum.load(default_scenario("discourse"))
    bodies = [d.body for d in forum.webhook_payloads()]
    n = 20_000
    webhook = {
        "bodies": len(bodies),
        "mean_bytes": sum(map(len, bodies)) // len(bodies),
        "orjson_us": cpu_us(lambda i: orjson.loads(bodies[i % len(bodies)]), n),
        "parse_webhook_json_us": cpu_us(lambda i: parse_webhook_json(bodies[i % len(bodies)]), n),
    }

    logger = logging.getLogger("bench.guards")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    logger.setLevel(logging.INFO)
    token = "123456:AAHk2Kd9-abcdefghijklmnopqrstu"
    register_secret(token)
    url = f"https://api.telegram.org/bot{token}/getUpdates?offset=1"
    plain = cpu_us(lambda i: logger.info('HTTP Request: GET %s "HTTP/1.1 200 OK"', url), n)
    install_logging()
    redacted = cpu_us(lambda i: logger.info('HTTP Request: GET %s "HTTP/1.1 200 OK"', url), n)

    short, long_ = "p" * 100, "p%0a" * 15_000
    refused = {
        "path_100_bytes_us": cpu_us(lambda i: logger.info("webhook for %s refused", printable(short, 64)), n),
        "path_60_kb_us": cpu_us(lambda i: logger.info("webhook for %s refused", printable(long_, 64)), n),
    }
    print(
        json.dumps(
            {
                "benchmark": "guards of an unattended scrm serve (CPU microseconds per operation)",
                "webhook_json": webhook,
                "log_record": {"plain_us": plain, "redacted_us": redacted},
                "refused_request_log": refused,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
