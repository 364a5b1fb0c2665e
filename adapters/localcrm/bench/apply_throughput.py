"""Throughput of LocalCrm.apply for 500-op message batches; prints JSON.

    .venv/bin/python adapters/localcrm/bench/apply_throughput.py [--messages 200000]

Realistic shape: every default-mapping field set, authors spread over 5,000 profiles and
messages over 20,000 conversations. Reports wall-clock and CPU-time rates (CPU time is
the steadier number on a shared machine) for new messages, partial updates (edits),
redactions and full re-upserts of existing messages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from scrm_localcrm import LocalCrm

from scrm_core import AdapterContext, CrmObject, CrmOperation

BATCH = 500
PROFILES = 5_000
TEXT = "I love this product but the app keeps crashing whenever I open the settings page. #help "


def message(i: int, rng: random.Random) -> CrmOperation:
    author = rng.randrange(PROFILES)
    mid = str(110_000_000_000 + i)
    return CrmOperation(
        object=CrmObject.message,
        external_key=f"scrm:mastodon:{mid}",
        fields={
            "network": "mastodon",
            "message_id": mid,
            "conversation_key": f"mastodon:{rng.randrange(20_000)}",
            "parent_id": None,
            "text": TEXT * 2,
            "created_at": "2024-05-01T12:00:00+00:00",
            "edited_at": None,
            "deleted": False,
            "deleted_at": None,
            "direction": "inbound",
            "visibility": "public",
            "url": f"https://mastodon.example/@u{author}/{mid}",
            "language": "en",
            "sentiment_score": -0.4,
            "sentiment_label": "negative",
            "labels": ["intent:complaint"],
            "matched_queries": ["brand"],
        },
        refs={"profile": f"scrm:mastodon:u{author}", "contact": f"scrm:person:u{author}"},
    )


async def measure(crm: LocalCrm, n: int, make: Callable[[int], CrmOperation]) -> dict[str, int]:
    wall = cpu = 0.0
    for start in range(0, n, BATCH):
        batch = [make(i) for i in range(start, min(start + BATCH, n))]  # built outside the timing
        w, c = time.perf_counter(), time.process_time()
        results = await crm.apply(batch)
        wall += time.perf_counter() - w
        cpu += time.process_time() - c
        assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    return {"ops_per_s_wall": round(n / wall), "ops_per_s_cpu": round(n / cpu)}


async def main(n: int) -> dict[str, object]:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        crm = LocalCrm(LocalCrm.Settings(path="crm.db"), AdapterContext(name="bench", base_dir=Path(tmp)))
        await crm.start()
        try:
            for start in range(0, PROFILES, BATCH):
                people = range(start, start + BATCH)
                await crm.apply(
                    [
                        CrmOperation(
                            object=CrmObject.contact,
                            external_key=f"scrm:person:u{i}",
                            fields={"name": f"User {i}", "email": None},
                        )
                        for i in people
                    ]
                )
                await crm.apply(
                    [
                        CrmOperation(
                            object=CrmObject.profile,
                            external_key=f"scrm:mastodon:u{i}",
                            fields={"network": "mastodon", "account_id": f"u{i}", "handle": f"u{i}"},
                            refs={"contact": f"scrm:person:u{i}"},
                        )
                        for i in people
                    ]
                )
            key = "scrm:mastodon:{}".format
            out: dict[str, object] = {"messages": n, "batch": BATCH}
            out["insert"] = await measure(crm, n, lambda i: message(i, rng))
            out["partial_update_edit"] = await measure(
                crm,
                n,
                lambda i: CrmOperation(
                    object=CrmObject.message,
                    external_key=key(110_000_000_000 + i),
                    fields={"text": "edited: " + TEXT, "edited_at": "2024-05-01T13:00:00+00:00"},
                ),
            )
            out["partial_update_redaction"] = await measure(
                crm,
                n,
                lambda i: CrmOperation(
                    object=CrmObject.message,
                    external_key=key(110_000_000_000 + i),
                    fields={"text": "", "deleted": True, "deleted_at": "2024-05-01T14:00:00+00:00"},
                ),
            )
            out["full_upsert_existing"] = await measure(crm, n, lambda i: message(i, rng))
            return out
        finally:
            await crm.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    print(json.dumps(asyncio.run(main(parser.parse_args().messages))))
