"""The fleet under fire: 3 ``scrm run`` workers and 2 ``scrm serve`` receivers on one
PostgreSQL and one Redis, the demo stream growing while webhook deliveries arrive, into
a HubSpot fake that fails 20% of its requests (429, 5xx, lost answers), and a random
worker SIGKILLed (and started again) 20 times, most of them while one of its CRM writes
was applied and its answer not yet delivered; every fourth round a receiver is SIGKILLed
right after a 200, the next delivery sent to it goes to the other (a load balancer's
part), and it starts again.

What must hold: every message in the CRM exactly once with its final text, every
acknowledged webhook synced, nothing dead-lettered, and no lease held by a dead worker
for longer than the lease time (from a monitor that reads the lease table all along, by
the database's clock).

Each process reaches the fake through its own port, so the fake's request log says whose
request each was (:class:`_Tagged`); a kill "lands during a CRM write" when the victim's
write was applied and held unanswered at the moment of the kill.
"""

from __future__ import annotations

import asyncio
import html
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest
from scrm_discourse.testing import FakeDiscourse
from scrm_hubspot.testing import FakeHubSpot
from scrm_postgres import PostgresStore
from scrm_redis.testing import RedisServer, require_redis
from scrm_replay.demo import generate_demo
from scrm_replay.torture import stored_text_matches

from scrm_core.testing.fakes import FakeServer, FaultInjector
from scrm_core.testing.fleet import eventually
from tests.e2e import LOG_ALL_RULES, expected_messages
from tests.serving import Served, start_serve

pytestmark = pytest.mark.slow

T = TypeVar("T")
LEASE = 2.0  # [state] lease_seconds
KILLS = 20
DELIVERIES_PER_ROUND = 2
SLOTS = ("w0", "w1", "w2")  # the workers killed in turn
RECEIVER_KILL_EVERY = 4  # rounds: a receiver (r0, r1 in turn) is SIGKILLed and started again


def until(check: Callable[[], T | None], what: str, within: float = 150.0) -> T:
    return eventually(check, what, within, every=0.05)  # each check reads the state


@dataclass
class _Request:
    slot: str
    method: str
    path: str
    started: float  # time.time()
    ended: float = 0.0
    held: bool = False  # its answer was held while the test killed the sender


@dataclass
class _Hold:
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)


class _Tagged:
    """The fake's app as seen by one process (one port per slot): every request is logged with
    its slot and times; a write (any non-GET that is not a search) can have its answer held
    after the fake applied it, until the test releases it."""

    def __init__(self, app: Any, slot: str, log: list[_Request], holds: dict[str, _Hold]) -> None:
        self.app, self.slot, self.log, self.holds = app, slot, log, holds

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = _Request(self.slot, scope["method"], scope["path"], time.time())
        write = request.method != "GET" and "search" not in request.path
        hold = self.holds.pop(self.slot, None) if write else None

        async def held_send(message: dict[str, Any]) -> None:
            if hold is not None and message["type"] == "http.response.start" and not request.held:
                request.held = True
                hold.reached.set()
                # This request only: the server goes on serving the others meanwhile.
                await asyncio.to_thread(hold.released.wait, 30)
            await send(message)

        try:
            await self.app(scope, receive, held_send)
        finally:
            request.ended = time.time()
            self.log.append(request)


@dataclass
class _Kill:
    slot: str
    worker_id: str | None  # its fleet id (None: it had not joined yet)
    at: float  # time.time()
    db_at: float  # the database's clock (epoch seconds)
    during_write: bool


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with RedisServer.start(require_redis()) as server:
        yield server.url


class _Monitor(threading.Thread):
    """Reads the lease and worker tables every 50 ms (the database's clock), until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.snapshots: list[tuple[float, list[tuple[str, str | None, float]]]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                try:
                    rows = conn.execute(
                        "SELECT EXTRACT(EPOCH FROM now()), name, holder, EXTRACT(EPOCH FROM expires_at) FROM leases"
                        " WHERE expires_at > '-infinity'"
                    ).fetchall()
                except psycopg.errors.UndefinedTable:
                    rows = []
                if rows:
                    self.snapshots.append(
                        (float(rows[0][0]), [(name, holder, float(exp)) for _, name, holder, exp in rows])
                    )
                self.stop.wait(0.05)  # the sampling period


def _worker_id(url: str, pid: int) -> str | None:
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            row = conn.execute("SELECT id FROM workers WHERE pid = %s ORDER BY started_at DESC LIMIT 1", (pid,))
            found = row.fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return None if found is None else str(found[0])


def test_three_workers_two_receivers_twenty_kills_during_crm_writes_everything_once(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    rng = random.Random(16)
    generate_demo(tmp_path / "full", messages=300, seed=16)
    full = sorted((tmp_path / "full").glob("*.ndjson"))
    chunks = [path.read_bytes().splitlines(keepends=True) for path in full]
    (tmp_path / "data").mkdir()
    files = [tmp_path / "data" / path.name for path in full]
    for path in files:
        path.write_bytes(b"")

    # The CRM: 20% of requests fail transiently (rate limit, server error, applied but the
    # answer lost); each process gets its own port onto the same fake.
    faults = FaultInjector(rate_429=0.05, rate_5xx=0.08, rate_lost_response=0.07, seed=16)
    hub = FakeHubSpot(with_properties=True, rate_limit=(100, 1.0), faults=faults)
    log: list[_Request] = []
    holds: dict[str, _Hold] = {}
    slots = (*SLOTS, "r0", "r1")
    servers = {slot: FakeServer(_Tagged(hub.app, slot, log, holds)) for slot in slots}
    forum = FakeDiscourse(staff=["brand"], rate_limit_wait=0)
    forum.add_user(1, "brand", "Brand", staff=True)
    forum.add_user(7, "alice", "Alice")
    forum_server = FakeServer(forum.app)

    def config(slot: str) -> Path:
        sources = "".join(
            f'\n[[sources]]\nname = "src-{i}"\nadapter = "replay"\n'
            f'settings = {{ paths = ["{p}"], poll_seconds = 0.2 }}\n'
            for i, p in enumerate(files)
        )
        sources += (
            '\n[[sources]]\nname = "forum"\nadapter = "discourse"\n'
            f'settings = {{ base_url = "{forum_server.url}", api_key = "{FakeDiscourse.API_KEY}", '
            f'api_username = "brand", webhook_secret = "{FakeDiscourse.WEBHOOK_SECRET}", poll_interval = 3600 }}\n'
        )
        path = tmp_path / f"scrm-{slot}.toml"
        path.write_text(
            f'[state]\nurl = "{postgres_url}"\nlease_seconds = {LEASE}\ncoordination_url = "{redis_url}"\n\n'
            f'[crm]\nadapter = "hubspot"\nsettings = {{ base_url = "{servers[slot].url}", '
            f'access_token = "{FakeHubSpot.TOKEN}", timeout_seconds = 2.0 }}\n{sources}\n'
            "[engine]\nbatch_window_ms = 50\nretry_max_seconds = 0.5\n" + LOG_ALL_RULES
        )
        return path

    running: dict[str, subprocess.Popen[bytes]] = {}
    started: list[subprocess.Popen[bytes]] = []
    receivers: list[Served] = []
    monitor = _Monitor(postgres_url)

    def start(slot: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "scrm", "run", "-c", str(config(slot))],
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / f"{slot}-{len(started)}.log", "wb"),  # noqa: SIM115
        )
        running[slot] = process
        started.append(process)
        return process

    acknowledged: set[str] = set()
    delivered = 0
    rounds: list[float] = []

    def deliver(http: httpx.Client, n: int, to: int | None = None) -> None:
        """One delivery of a new post, to either receiver (or receiver ``to``; every fifth, to
        both: the second is a duplicate the inbox drops); sent again until a receiver says 200."""
        post_id = 900_000 + n
        delivery = forum.signed_request(
            "post_created",
            {
                "post": {
                    "id": post_id, "topic_id": 1, "post_number": n + 1, "username": "alice", "name": "Alice",
                    "user_id": 7, "created_at": "2026-01-05T10:00:00.000Z", "updated_at": "2026-01-05T10:00:00.000Z",
                    "raw": f"the kettle lid broke again, delivery {n}", "cooked": f"<p>kettle {n}</p>", "version": 1,
                    "topic_archetype": "regular", "category_id": 5,
                }
            },
        )  # fmt: skip
        targets = [to] if to is not None else [n % 2, (n + 1) % 2] if n % 5 == 0 else [n % 2]
        send = partial(_post, http, headers=delivery.headers, body=delivery.body)

        def either(first: int) -> int | None:
            # The load balancer's part: a receiver that does not answer (killed, restarting)
            # leaves the delivery to the other one.
            return send(receivers[first]) or send(receivers[1 - first])

        for target in targets:
            assert until(partial(either, target), f"delivery {n} acknowledged") == 200
        acknowledged.add(f"scrm:discourse:{post_id}")

    try:
        monitor.start()
        for slot in SLOTS:
            start(slot)
        receivers.extend(start_serve(config(r)) for r in ("r0", "r1"))
        kills: list[_Kill] = []
        receiver_kills: list[int] = []  # the last delivery acknowledged before each receiver kill
        with httpx.Client(timeout=10) as http, psycopg.connect(postgres_url, autocommit=True) as db:
            for round_ in range(KILLS):
                round_started = time.monotonic()
                for path, lines in zip(files, chunks, strict=True):  # the next slice of every stream
                    done, part = len(lines) * round_ // KILLS, len(lines) * (round_ + 1) // KILLS
                    with path.open("ab") as out:
                        out.write(b"".join(lines[done:part]))
                for _ in range(DELIVERIES_PER_ROUND):
                    deliver(http, delivered)
                    delivered += 1
                if round_ % RECEIVER_KILL_EVERY == RECEIVER_KILL_EVERY - 1:
                    # A receiver killed right after its last 200 (what it acknowledged is in
                    # the shared inbox, maybe not yet read by any worker), and the next
                    # delivery sent to it while it is down; then it starts again.
                    which = len(receiver_kills) % 2
                    receivers[which].proc.send_signal(signal.SIGKILL)
                    receivers[which].proc.wait()
                    receiver_kills.append(delivered - 1)
                    deliver(http, delivered, to=which)
                    delivered += 1
                    receivers[which] = start_serve(config(("r0", "r1")[which]))
                # A random worker among those that joined the fleet (one just restarted may not have).
                joined = until(
                    lambda: [s for s in SLOTS if _worker_id(postgres_url, running[s].pid)], "a worker joined"
                )
                slot = rng.choice(joined)
                victim = running[slot]
                hold = holds[slot] = _Hold()
                # Wait (a while) for one of its CRM writes to be applied, then kill it before
                # the answer arrives; a worker with nothing to write is killed anyway.
                during_write = hold.reached.wait(timeout=2 * LEASE)
                holds.pop(slot, None)
                victim_id = _worker_id(postgres_url, victim.pid)
                at = time.time()
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                (db_at,) = db.execute("SELECT EXTRACT(EPOCH FROM now())").fetchone() or (0,)
                hold.released.set()
                kills.append(_Kill(slot, victim_id, at, float(db_at), during_write))
                start(slot)
                rounds.append(round(time.monotonic() - round_started, 1))

            expected = expected_messages(full)
            want = set(expected) | acknowledged

            def notes() -> dict[str, dict[str, str]] | None:
                held = {n.get("scrm_key", ""): n for n in hub.records("notes")}
                return held if set(held) >= want else None

            until(notes, "every message and acknowledged webhook in the CRM")
            # Each killed worker's last heartbeat came before its kill (it never renewed after).
            beats: dict[str, Any] = dict(
                db.execute(
                    "SELECT id, EXTRACT(EPOCH FROM heartbeat_at) FROM workers WHERE id = ANY(%s)",
                    ([k.worker_id for k in kills],),
                ).fetchall()
            )
            late = [(k.worker_id, float(beats[k.worker_id]) - k.db_at) for k in kills if k.worker_id in beats]
            assert len(late) == KILLS and all(after <= 0 for _, after in late), late
            store = PostgresStore(postgres_url)
            try:
                until(lambda: store.outbox_depth() == 0, "the outbox drained")
                dead = store.dead_letters(5)
                assert store.dead_letter_count() == 0, [d.reason for d in dead]
            finally:
                store.close()
    finally:
        monitor.stop.set()
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for served in receivers:
            served.stop()
        for process in started:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        monitor.join(timeout=10)
        for server in (*servers.values(), forum_server):
            server.stop()

    # Every message exactly once, with its final text (or redacted); every webhook synced.
    held = {n.get("scrm_key", ""): n for n in hub.records("notes")}
    assert hub.count("notes") == len(held), "two notes share one external key"
    assert set(held) == want, (sorted(set(held) - want)[:3], sorted(want - set(held))[:3])
    wrong = [
        key
        for key, (text, deleted) in expected.items()
        if (held[key].get("scrm_deleted") == "true") != deleted
        or (not deleted and not stored_text_matches(html.unescape(held[key].get("hs_note_body") or ""), text))
    ]
    assert not wrong, f"{len(wrong)} message(s) differ, e.g. {wrong[0]}"
    assert delivered == (DELIVERIES_PER_ROUND * KILLS + len(receiver_kills)) and acknowledged <= set(held)
    assert len(receiver_kills) == KILLS // RECEIVER_KILL_EVERY
    assert {f"scrm:discourse:{900_000 + n}" for n in receiver_kills} <= acknowledged

    # The faults and the kills landed where they claim: transient faults were served, and
    # most kills came while the victim's write was applied and unanswered (the fake's log:
    # a write from the victim's port, held, spanning the moment of the kill).
    assert sum(faults.counts.values()) >= 20, faults.counts
    landed = [
        k
        for k in kills
        if k.during_write and any(r.slot == k.slot and r.held and r.started <= k.at <= r.ended for r in log)
    ]
    assert len(kills) == KILLS and len(landed) >= KILLS // 4, [(k.slot, k.during_write) for k in kills]

    takeovers = []  # seconds from a kill until every lease the victim held had another holder
    for k in kills:
        before = [x for at, x in monitor.snapshots if at <= k.db_at]
        theirs = {name for name, holder, _ in (before[-1] if before else []) if holder == k.worker_id}
        for at, leases in monitor.snapshots:
            current = {name: holder for name, holder, expires in leases if expires > at}
            if at > k.db_at and all(current.get(n) not in (None, k.worker_id) for n in theirs):
                takeovers.append(round(at - k.db_at, 2))
                break
    print(
        f"kills {len(kills)}, during a CRM write {len(landed)}, faults served {dict(faults.counts)}, "
        f"requests {len(log)}, 429s {hub.statuses(429)}, "
        f"takeover seconds max {max(takeovers, default=0)} (lease {LEASE}), rounds {rounds}"
    )
    # No lease held by a dead worker longer than the lease time (the database's clock).
    overdue = [
        (k.worker_id, name, round(at - k.db_at, 2))
        for k in kills
        for at, leases in monitor.snapshots
        if at > k.db_at + LEASE
        for name, holder, expires in leases
        if holder == k.worker_id and expires > at
    ]
    assert not overdue, overdue[:5]
    assert any(at > kills[-1].db_at + LEASE for at, _ in monitor.snapshots), "the monitor stopped too early"
    assert all(k.worker_id is not None for k in kills)


def _post(http: httpx.Client, served: Served, headers: dict[str, str], body: bytes) -> int | None:
    try:
        status = http.post(f"{served.url}/webhooks/forum", content=body, headers=headers).status_code
    except httpx.HTTPError:
        return None
    return status if status == 200 else None
