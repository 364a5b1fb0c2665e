"""A streamed source (``stream = true``) on real ``scrm run`` workers, one PostgreSQL and one
Redis: its pages are ingested by every worker and committed in order, exactly once, also
when a consumer or the reader is killed with SIGKILL.

The order is read from PostgreSQL itself: each page is one transaction, so every event key
a page stored in ``seen_events`` carries that transaction's id (``xmin``); in the order of
the source's lines those ids never go back."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
import redis
from scrm_hubspot.testing import FakeHubSpot
from scrm_postgres import PostgresStore
from scrm_redis.testing import RedisServer
from scrm_replay.demo import generate_demo
from scrm_replay.format import is_blank, parse_line

from scrm_core.streams import split_checkpoint
from scrm_core.testing.fakes import FakeServer
from scrm_core.testing.fleet import eventually
from tests.e2e import LOG_ALL_RULES, crm_state, expected_messages

T = TypeVar("T")
LEASE = 3.0  # [state] lease_seconds: a dead consumer's pages are claimed after this long
SOURCE = "firehose"
HIGH_WATER = 100  # [engine] outbox_high_water, where the outage test's reader pauses
STREAM = f"scrm:pages:{SOURCE}"
PLUGINS = "replay,localcrm,hubspot,postgres,redis,sentiment,language"
LOCALCRM = '[crm]\nadapter = "localcrm"\nsettings = { path = "crm.db" }\n'


def until(check: Callable[[], T | None], what: str, within: float = 120.0) -> T:
    return eventually(check, what, within)


class Fleet:
    """Workers on one config; the firehose's file arrives whole (renamed in) when asked."""

    def __init__(
        self,
        folder: Path,
        postgres_url: str,
        redis_url: str,
        messages: int,
        seed: int,
        crm: str = LOCALCRM,
        engine: str = "",
    ) -> None:
        self.folder, self.url = folder, postgres_url
        generate_demo(folder / "demo", messages=messages, seed=seed)
        self.lines = b"".join(p.read_bytes() for p in sorted((folder / "demo").glob("*.ndjson")))
        (folder / "data").mkdir()
        (folder / "data" / "0-empty.ndjson").write_bytes(b"")  # the source starts with nothing to read
        self.config = folder / "scrm.toml"
        self.config.write_text(
            f'[state]\nurl = "{postgres_url}"\nlease_seconds = {LEASE}\ncoordination_url = "{redis_url}"\n\n'
            f"{crm}\n"
            f'[[sources]]\nname = "{SOURCE}"\nadapter = "replay"\nstream = true\n'
            'settings = { paths = ["data/*.ndjson"], poll_seconds = 0.1, page_size = 25 }\n\n'
            f"[engine]\nbatch_window_ms = 50\nretry_max_seconds = 0.5\n{engine}" + LOG_ALL_RULES
        )
        self.redis = redis.Redis.from_url(redis_url)
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"worker-{len(self.processes)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "scrm", "run", "-v", "-c", str(self.config)],
            env={**os.environ, "SCRM_LOAD_PLUGINS": PLUGINS, "COLUMNS": "400"},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        self.processes.append(process)
        return process

    def log(self, process: subprocess.Popen[bytes]) -> str:
        return (self.folder / f"worker-{self.processes.index(process)}.log").read_text()

    def arrive(self) -> None:
        staged = self.folder / "firehose.tmp"
        staged.write_bytes(self.lines)
        staged.rename(self.folder / "data" / "1-firehose.ndjson")

    def joined(self) -> int:
        """How many workers are in the fleet (each consumes the stream once started)."""
        with psycopg.connect(self.url) as conn:
            try:
                rows = conn.execute("SELECT id FROM workers WHERE heartbeat_at > now() - interval '3 s'").fetchall()
                return len(rows)
            except psycopg.errors.UndefinedTable:
                return 0

    def pending(self) -> list[tuple[str, int]]:
        """(consumer, page sequence) of every page delivered and not yet acknowledged."""
        try:
            rows: list[dict[str, bytes]] = self.redis.xpending_range(STREAM, "scrm", "-", "+", 100)  # type: ignore[assignment]
        except redis.ResponseError:
            return []
        return [(row["consumer"].decode(), int(row["message_id"].decode().split("-")[0])) for row in rows]

    def published(self) -> int:
        try:
            return int(self.redis.xinfo_stream(STREAM)["entries-added"])
        except redis.ResponseError:
            return 0

    def committed(self) -> int:
        with psycopg.connect(self.url) as conn:
            try:
                row = conn.execute("SELECT cursor FROM checkpoints WHERE source = %s", (SOURCE,)).fetchone()
            except psycopg.errors.UndefinedTable:
                return 0
        return (split_checkpoint(row[0])[0] or 0) if row else 0

    def reading(self) -> bool:
        """Whether a reader has started the source's stream (its checkpoint exists)."""
        with psycopg.connect(self.url) as conn:
            try:
                return conn.execute("SELECT 1 FROM checkpoints WHERE source = %s", (SOURCE,)).fetchone() is not None
            except psycopg.errors.UndefinedTable:
                return False

    def reader_pid(self) -> int | None:
        with psycopg.connect(self.url) as conn:
            try:
                row = conn.execute(
                    "SELECT holder FROM leases WHERE name = %s AND expires_at > now()", (SOURCE,)
                ).fetchone()
            except psycopg.errors.UndefinedTable:
                return None
        return int(row[0].split(":")[1]) if row and row[0] else None

    def process(self, pid: int) -> subprocess.Popen[bytes]:
        return next(p for p in self.processes if p.pid == pid)

    def expected(self) -> dict[str, tuple[str, bool]]:
        whole = self.folder / "whole.ndjson"
        whole.write_bytes(self.lines)
        return expected_messages([whole])

    def synced(self) -> None:
        """Every message in the CRM once, the stream empty, each page one transaction, in order."""
        expected = self.expected()
        until(lambda: crm_state(self.folder / "crm.db").messages == expected, "every message synced")
        store = PostgresStore(self.url)
        until(lambda: store.outbox_depth() == 0, "the outbox drained")
        crm = crm_state(self.folder / "crm.db")
        assert crm.message_rows == len(crm.messages) == len(expected)  # no message twice
        assert store.dead_letter_count() == 0 and store.counts()["messages"] == len(expected)
        store.close()
        until(lambda: self.committed() == self.published(), "every published page committed")
        assert self.pending() == []
        self.assert_in_order()

    def assert_in_order(self) -> None:
        keys: list[str] = []
        for raw in self.lines.splitlines():
            if not is_blank(raw):
                event = parse_line(raw)
                assert not isinstance(event, str)
                keys.append(event.key)
        with psycopg.connect(self.url) as conn:
            # A creation is its message's index row (``created``), which later edits and the
            # sink's settlement rewrite: the order is read from the other events' keys.
            xids: dict[str, int] = dict(conn.execute("SELECT key, xmin::text::bigint FROM seen_events").fetchall())
        first: dict[str, int] = {}
        for key in keys:
            if key in xids:
                first.setdefault(key, xids[key])
        order = list(first.values())
        assert len(set(order)) >= 3, "too few pages with events outside the index to judge the order"
        assert order == sorted(order), "a page was committed before the one it follows"
        assert len(set(order)) <= self.committed()  # one transaction per page at most

    def stop(self) -> list[int]:
        running = [p for p in self.processes if p.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        return [p.wait(timeout=60) for p in running]


@pytest.fixture
def fleet(tmp_path: Path, postgres_url: str, redis_server: RedisServer) -> Iterator[Fleet]:
    redis.Redis.from_url(redis_server.url).flushdb()
    made = Fleet(tmp_path, postgres_url, redis_server.url, messages=600, seed=5)
    yield made
    for process in made.processes:
        if process.poll() is None:
            process.kill()
        process.wait()


def _committed_by(log: str) -> int:
    found = re.findall(r"this worker committed (\d+) page", log)
    assert found, log[-2000:]
    return int(found[-1])


def test_two_workers_share_one_sources_pages_and_commit_them_in_order_once(fleet: Fleet) -> None:
    workers = [fleet.start(), fleet.start()]
    until(lambda: fleet.joined() == 2, "both workers joined")
    fleet.arrive()
    fleet.synced()
    assert fleet.stop() == [0, 0]
    by_worker = [_committed_by(fleet.log(w)) for w in workers]
    assert all(n > 0 for n in by_worker) and sum(by_worker) == fleet.committed(), by_worker


@pytest.mark.slow
def test_a_consumer_killed_holding_a_page_loses_nothing(fleet: Fleet) -> None:
    for _ in range(2):
        fleet.start()
    until(lambda: fleet.joined() == 2, "both workers joined")
    reader = until(fleet.reader_pid, "a worker reads the source")
    victim = next(p for p in fleet.processes if p.pid != reader)
    fleet.arrive()
    # Freeze the consumer while it holds a page; kill it only if the page is not committed
    # (the record: Redis lists the page as delivered to it, the checkpoint is before it).
    held: list[int] = []
    while not held:
        mine = until(
            lambda: [seq for name, seq in fleet.pending() if f":{victim.pid}:" in name], "the consumer takes a page"
        )
        victim.send_signal(signal.SIGSTOP)
        committed = fleet.committed()
        held = [seq for name, seq in fleet.pending() if f":{victim.pid}:" in name and seq > committed]
        if not held:
            victim.send_signal(signal.SIGCONT)
            assert mine and fleet.committed() < fleet.published() + 1
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    fleet.synced()  # its page was claimed by the other worker after the idle time, and committed once
    assert fleet.committed() >= max(held)
    assert fleet.stop() == [0]


@pytest.mark.slow
def test_the_reader_killed_mid_stream_is_followed_by_one_that_repeats_nothing(fleet: Fleet) -> None:
    for _ in range(2):
        fleet.start()
    until(lambda: fleet.joined() == 2, "both workers joined")
    reader = fleet.process(until(fleet.reader_pid, "a worker reads the source"))
    fleet.arrive()
    until(lambda: fleet.published() >= 3, "the reader published pages")
    reader.send_signal(signal.SIGKILL)
    reader.wait()
    published = fleet.published()  # the last page it published
    survivor = next(p for p in fleet.processes if p is not reader)
    fleet.synced()
    assert fleet.committed() > published  # the survivor read on after the dead reader
    log = fleet.log(survivor)
    resumed = re.findall(r"source firehose: (?:going on after|reading on from the checkpoint after) page (\d+)", log)
    assert resumed and int(resumed[-1]) == published, log[-2000:]
    assert fleet.stop() == [0]


class _Outage:
    """The CRM fake's app, answering every request 503 while ``down``."""

    def __init__(self, app: Any) -> None:
        self.app, self.down = app, False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.down:
            await send({"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"down for maintenance"})
            return
        await self.app(scope, receive, send)


def test_while_the_crm_is_down_the_reader_stops_at_the_fleets_outbox_high_water(
    tmp_path: Path, postgres_url: str, redis_server: RedisServer
) -> None:
    """``engine.outbox_high_water`` bounds the shared outbox for a streamed source too: with the
    CRM down, the reader publishes no page once the outbox is above the mark (what was
    published is still committed), and reads on once the CRM is back; nothing is lost.
    Before, a streamed page's commit looked at no room at all and the outbox grew as fast as
    the source was read."""
    redis.Redis.from_url(redis_server.url).flushdb()
    outage = _Outage(FakeHubSpot(with_properties=True).app)
    with FakeServer(outage) as server:
        settings = f'base_url = "{server.url}", access_token = "{FakeHubSpot.TOKEN}"'
        crm = f'[crm]\nadapter = "hubspot"\nsettings = {{ {settings} }}\n'
        fleet = Fleet(
            tmp_path, postgres_url, redis_server.url, messages=600, seed=5, crm=crm,
            engine=f"outbox_high_water = {HIGH_WATER}\npages_in_flight = 1\n",
        )  # fmt: skip
        try:
            worker = fleet.start()
            until(fleet.reading, "the worker reads the source (started, its CRM checked)")
            outage.down = True
            fleet.arrive()
            until(lambda: "reading pauses" in fleet.log(worker), "the reader paused")
            # What was published before the pause is committed; then nothing more comes.
            until(lambda: fleet.committed() == fleet.published() and fleet.pending() == [], "the stream emptied")
            store = PostgresStore(fleet.url)
            depth, published = store.outbox_depth(), fleet.published()
            pages = -(-len(fleet.lines.splitlines()) // 25)
            assert published < pages / 2, (published, pages)
            # The mark, plus the pages in the stream and in hand when it was crossed (each
            # page of 25 events makes at most 3 operations an event).
            assert HIGH_WATER < depth <= HIGH_WATER + 4 * 25 * 3, depth
            outage.down = False
            until(lambda: "reading goes on" in fleet.log(worker), "the reader went on")
            until(lambda: fleet.committed() == fleet.published() >= pages, "every page committed", within=180)
            until(lambda: store.outbox_depth() == 0, "the outbox drained", within=180)
            assert store.dead_letter_count() == 0 and store.counts()["messages"] == len(fleet.expected())
            store.close()
            assert fleet.stop() == [0]
        finally:
            for process in fleet.processes:
                if process.poll() is None:
                    process.kill()
                process.wait()
