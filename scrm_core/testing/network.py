"""The conformance suite for network adapters: subclass it in a test module, implement two methods.

::

    from scrm_core.testing.network import NetworkAdapterConformance

    class TestMyNetwork(NetworkAdapterConformance):
        def make_fake(self, scenario):           # once per test: a network holding the scenario
            return MyFake(scenario)              # anything with an ASGI ``app`` (and ``faults``)

        def make_adapter(self, scenario, tmp_path):
            return MyAdapter({"base_url": self.fake_url, "token": "t", "page_size": 3})

The suite serves the fake on 127.0.0.1 for the test (``self.fake``, ``self.fake_url``) and
stops it when the test ends. Every ``test_*`` method below then runs against your adapter.
The suite does not need pytest-asyncio: each test drives the adapter with
:func:`asyncio.run`. It checks the promises the engine relies on (docs/writing-adapters.md,
"The contract"): a drain with ``follow=False`` ends; resuming from any page's cursor yields
exactly what came after it, also when pages were read ahead and never committed; cursors
are plain strings; keys are stable; edits and deletions come after what they target;
replies point at messages that exist and keep the declared reply guarantee; settings
forbid unknown keys and keep secrets in ``SecretStr``.

The default scenario (:func:`default_scenario`) is 16 events in this order: alice's
profile; 101 alice's root post; 102 bob's reply to it; 103 the brand's answer to 102
(outbound); 104 alice's reply to 103; an edit of 102; 105 carol's question (a root);
106 dave's spam and its deletion; alice's handle change (a second profile event); 107
carol's direct message; 108 the brand's answer to 105; 109 alice's post mentioning the
brand; 110 bob's reply to 109; an edit of 101; 111 dave's post with a hashtag. Accounts
are 1000 (alice) to 1004 (brand), message ids are the numbers above, one minute apart
from 2024-05-01 09:00 UTC. A fake loads it by walking the events in order.

Adapt the suite with class attributes and methods rather than by skipping tests:
``network`` names the network in the default scenario, :meth:`scenario` replaces it,
:meth:`expected_keys` says which events your network can express, ``exactly_once = False``
accepts re-delivery after a resume (the engine drops duplicates, but says so).

A few promises need a hand from your fake. With :meth:`make_fake` and a fake that has a
``faults`` :class:`~scrm_core.testing.FaultInjector` (taking armed faults at the right
requests), the first two work as they are; otherwise implement them on the test class
(the instance is new for every test, so keep your fake on ``self`` in :meth:`make_adapter`):

* :meth:`rate_limit_next_request`: the network refuses the next request with its
  rate-limit answer; the drain must still yield everything, once.
* :meth:`lose_next_response`: the network applies the next write but the answer is lost;
  what must happen then depends on the adapter's declared
  :class:`~scrm_core.ReplyGuarantee`.
* :meth:`webhook_requests`: signed requests as the network delivers them (webhook
  networks): they must verify and parse, and any changed byte must be refused.

A hook you do not implement skips its test, saying which hook is missing.

An adapter with ``destructive_reads = True`` needs :meth:`make_fake` (or
:meth:`fresh_network`): each drain starts from a fresh network, since the last drain
consumed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import TypeAdapter, ValidationError

from ..adapters import AdapterSettings, NetworkAdapter, NetworkCapability, ReplyGuarantee, SentReply
from ..errors import FatalError, RetryableError, SkippableError
from ..models import (
    Direction,
    Event,
    EventPage,
    Message,
    MessageCreated,
    MessageDeleted,
    MessageEdited,
    ProfileUpdated,
    SocialProfile,
    Visibility,
)
from ..webhooks import WebhookAnswer, WebhookRejected, WebhookRequest
from .fakes import FakeServer, Fault
from .settings import secrets_not_secretstr

__all__ = ["NetworkAdapterConformance", "default_scenario", "drain", "drain_retrying"]

_EVENT: TypeAdapter[Event] = TypeAdapter(Event)


async def drain(adapter: NetworkAdapter, cursor: str | None = None, *, commit: bool = True) -> list[EventPage]:
    """Every page ``adapter.listen(cursor, follow=False)`` yields, with ``start``/``close`` around it.

    Like the engine, it calls ``adapter.committed(page.cursor)`` after each page (``commit=False``:
    never, as if nothing were ever stored)."""
    await adapter.start()
    pages: list[EventPage] = []
    try:
        async for page in adapter.listen(cursor, follow=False):
            pages.append(page)
            if commit and page.cursor is not None:
                await adapter.committed(page.cursor)
        return pages
    finally:
        await adapter.close()


async def drain_retrying(
    adapter: NetworkAdapter, cursor: str | None = None, *, max_retries: int = 5, before: Any = None
) -> tuple[list[EventPage], int]:
    """Drain as the engine does: on :class:`RetryableError`, wait what the network asked
    (at most 1 s here) and resume from the last page's cursor. Returns the pages and how
    many retries it took. ``before`` (a callable) runs after ``start``, before the first page."""
    await adapter.start()
    pages: list[EventPage] = []
    retries = 0
    try:
        if before is not None:
            before()
        while True:
            try:
                async for page in adapter.listen(cursor, follow=False):
                    pages.append(page)
                    cursor = page.cursor
                    if cursor is not None:
                        await adapter.committed(cursor)
                return pages, retries
            except RetryableError as exc:
                retries += 1
                if retries > max_retries:
                    raise
                await asyncio.sleep(min(exc.retry_after or 0.0, 1.0))
    finally:
        await adapter.close()


def default_scenario(network: str = "conformance") -> list[Event]:
    """A small conversation history: threads, replies to replies, the brand answering, an edit,
    a deletion, a direct message and a handle change. Ids are numeric strings."""
    t0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    people = {
        name: SocialProfile(network=network, account_id=str(1000 + i), handle=name, display_name=name.title())
        for i, name in enumerate(("alice", "bob", "carol", "dave", "brand"))
    }
    events: list[Event] = []
    messages: dict[str, Message] = {}

    def at(minutes: int) -> datetime:
        return t0 + timedelta(minutes=minutes)

    def post(minutes: int, mid: str, who: str, text: str, parent: str | None = None, **extra: Any) -> None:
        root = None
        if parent is not None:
            root = messages[parent].thread_root_id or parent
        direction = Direction.outbound if who == "brand" else Direction.inbound
        msg = Message(
            network=network,
            id=mid,
            author=people[who],
            text=text,
            created_at=at(minutes),
            thread_root_id=root,
            parent_id=parent,
            direction=direction,
            **extra,
        )
        messages[mid] = msg
        events.append(MessageCreated(message=msg))

    events.append(ProfileUpdated(profile=people["alice"], version=at(0).isoformat()))
    post(1, "101", "alice", "my kettle stopped working after two weeks")
    post(2, "102", "bob", "same here, mine died too", parent="101")
    post(3, "103", "brand", "sorry to hear that! please DM us your order number", parent="102")
    post(4, "104", "alice", "done, thanks", parent="103")
    edited = messages["102"].model_copy(update={"text": "same here, mine died after a month", "edited_at": at(5)})
    events.append(MessageEdited(message=edited))
    post(6, "105", "carol", "does the X200 work with 110V outlets?")
    post(7, "106", "dave", "crypto giveaway!!! click https://spam.example")
    events.append(MessageDeleted(network=network, message_id="106", deleted_at=at(8)))
    people["alice"] = people["alice"].model_copy(update={"handle": "alice_new"})
    events.append(ProfileUpdated(profile=people["alice"], version=at(9).isoformat()))
    post(10, "107", "carol", "hi, where is my order #123?", visibility=Visibility.direct)
    post(11, "108", "brand", "yes, the X200 works from 110 to 240V", parent="105")
    post(12, "109", "alice", "love the replacement kettle", mentions=["brand"])
    post(13, "110", "bob", "agreed", parent="109")
    edited = messages["101"].model_copy(update={"text": "my kettle stopped working (fixed now)", "edited_at": at(14)})
    events.append(MessageEdited(message=edited))
    post(15, "111", "dave", "where can I buy the X200?", hashtags=["kettles"])
    return events


class NetworkAdapterConformance:
    """Base class of a network adapter's conformance tests. Implement :meth:`make_adapter`
    (and, for a fake the suite should serve, :meth:`make_fake`)."""

    #: Network name used by the default scenario's events.
    network: ClassVar[str] = "conformance"
    #: False if resuming may re-deliver events (at-least-once); they must still not be lost.
    exactly_once: ClassVar[bool] = True
    #: A drain must take at least this many pages, so resuming is really exercised:
    #: configure a small page size in :meth:`make_adapter`.
    min_pages: ClassVar[int] = 2
    #: A cursor the adapter cannot have produced; ``listen`` must refuse it with FatalError.
    garbage_cursor: ClassVar[str] = "\x00 not a cursor \x00"
    #: Seconds one drain may take before the test fails (a drain with follow=False must end).
    timeout: ClassVar[float] = 30.0
    #: Pages the engine may read beyond the last commit (``[engine] pages_in_flight``).
    read_ahead: ClassVar[int] = 4

    _fake: Any = None
    _fake_url: str = ""
    _servers: list[FakeServer]

    @pytest.fixture(autouse=True)
    def _scrm_fake_network(self) -> Iterator[None]:
        """Stops what :attr:`fake` started when the test ends."""
        self._servers = []
        self._fake = None
        try:
            yield
        finally:
            for server in self._servers:
                server.stop()

    # ------------------------------------------------------------ to implement / adapt

    def make_fake(self, scenario: list[Event]) -> Any:
        """Optional: a fake network holding ``scenario``, an object with an ASGI ``app``.

        Called once per test (again after :meth:`fresh_network`); the suite serves ``app``
        on 127.0.0.1 and stops it when the test ends. Use :attr:`fake_url` in
        :meth:`make_adapter`. A ``faults`` attribute (a :class:`~scrm_core.testing.FaultInjector`
        whose armed faults the fake takes) gives the rate-limit and lost-answer hooks for free.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement make_fake(scenario)")

    @property
    def fake(self) -> Any:
        """The fake from :meth:`make_fake`, made and served on first use."""
        if self._fake is None:
            try:
                fake = self.make_fake(self.scenario())
            except NotImplementedError as exc:
                raise AttributeError(str(exc)) from None  # so hasattr(self, "fake") is False
            server = FakeServer(fake.app)
            self._servers.append(server)
            self._fake, self._fake_url = fake, server.url
        return self._fake

    @fake.setter
    def fake(self, value: Any) -> None:
        """A test class that serves its fake itself may keep it here too."""
        self._fake = value

    @property
    def fake_url(self) -> str:
        """Where :attr:`fake` is served (``http://127.0.0.1:<port>``)."""
        _ = self.fake
        return self._fake_url

    def fresh_network(self) -> None:
        """Make the next :meth:`make_adapter` see a network holding the whole scenario again.

        The suite calls it before each drain of a ``destructive_reads`` adapter (a drain
        consumes such a network). The default drops :attr:`fake`, so the next use makes a
        new one; override it if your network is not made by :meth:`make_fake`."""
        if self._fake is not None:
            self._servers.pop().stop()
            self._fake = None

    def make_adapter(self, scenario: list[Event], tmp_path: Path) -> NetworkAdapter:
        """An adapter instance whose network holds exactly ``scenario`` (in that order).

        May be called more than once in a test with the same arguments (a restart); each call
        must give an adapter over the same data. Not started: the suite calls ``start``.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement make_adapter(scenario, tmp_path)")

    def scenario(self) -> list[Event]:
        """The events loaded into the network. Override when its ids must look different."""
        return default_scenario(self.network)

    def expected_keys(self, scenario: list[Event]) -> list[str]:
        """Keys of the events a full drain must yield. Override if your network cannot express
        some of them (e.g. no profile events)."""
        return [event.key for event in scenario]

    # ------------------------------------------------------------ helpers

    def run_drain(self, adapter: NetworkAdapter, cursor: str | None = None) -> list[EventPage]:
        return asyncio.run(asyncio.wait_for(drain(adapter, cursor), self.timeout))

    def _destructive(self, adapter: NetworkAdapter) -> bool:
        return bool(type(adapter).destructive_reads)

    def _drain_fresh(self, tmp_path: Path) -> tuple[list[Event], list[EventPage]]:
        scenario = self.scenario()
        adapter = self.make_adapter(scenario, tmp_path)
        if self._destructive(adapter):
            self.fresh_network()
            adapter = self.make_adapter(scenario, tmp_path)
        return scenario, self.run_drain(adapter)

    def _crash_after(self, scenario: list[Event], tmp_path: Path, commit_upto: int) -> list[EventPage]:
        """Read up to ``read_ahead`` pages beyond page ``commit_upto``, committing only up to
        it, then stop without committing the rest (the process died): the pages read."""

        async def run() -> list[EventPage]:
            adapter = self.make_adapter(scenario, tmp_path)
            await adapter.start()
            pages: list[EventPage] = []
            stream = adapter.listen(None, follow=False)
            # A destructive source may stop reading ahead until a commit: then the reading is over.
            blocked: asyncio.Event | None = getattr(adapter, "waiting_for_commit", None)
            try:
                while len(pages) <= commit_upto + self.read_ahead:
                    step = asyncio.ensure_future(anext(stream))
                    stop = asyncio.ensure_future(blocked.wait()) if blocked is not None else None
                    await asyncio.wait({step} | ({stop} if stop else set()), return_when=asyncio.FIRST_COMPLETED)
                    if stop is not None:
                        stop.cancel()
                    if not step.done():
                        step.cancel()
                        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                            await step
                        break
                    try:
                        page = step.result()
                    except StopAsyncIteration:
                        break
                    pages.append(page)
                    if len(pages) - 1 <= commit_upto and page.cursor is not None:
                        await adapter.committed(page.cursor)
            finally:
                close = getattr(stream, "aclose", None)
                if close is not None:
                    await close()
                await adapter.close()
            return pages

        return asyncio.run(asyncio.wait_for(run(), self.timeout))

    @staticmethod
    def _keys(pages: Sequence[EventPage]) -> list[str]:
        return [event.key for page in pages for event in page.events]

    # ------------------------------------------------------------ class-level contract

    def test_name_and_capabilities(self, tmp_path: Path) -> None:
        adapter = self.make_adapter(self.scenario(), tmp_path)
        cls = type(adapter)
        assert isinstance(cls.name, str) and re.fullmatch(r"[a-z][a-z0-9_-]*", cls.name), (
            f"{cls.__name__}.name must be a short lower-case identifier, got {getattr(cls, 'name', None)!r}"
        )
        caps = cls.capabilities
        assert isinstance(caps, frozenset) and caps, f"{cls.__name__}.capabilities must be a non-empty frozenset"
        assert all(isinstance(c, NetworkCapability) for c in caps), "capabilities must be NetworkCapability members"
        receive = {NetworkCapability.poll, NetworkCapability.stream, NetworkCapability.webhook}
        assert caps & receive, "capabilities must include at least one of poll, stream, webhook"

    def test_settings_forbid_unknown_keys(self, tmp_path: Path) -> None:
        adapter = self.make_adapter(self.scenario(), tmp_path)
        settings_cls = type(adapter).Settings
        assert issubclass(settings_cls, AdapterSettings), "Settings must subclass scrm_core.AdapterSettings"
        assert settings_cls.model_config.get("extra") == "forbid", "Settings must keep extra='forbid'"
        assert isinstance(adapter.settings, settings_cls), "the adapter's settings must be its Settings model"
        data = adapter.settings.model_dump()
        try:
            settings_cls.model_validate({**data, "surely_not_a_setting": 1})
        except ValidationError as exc:
            assert any(e["type"] == "extra_forbidden" for e in exc.errors()), exc
        else:
            raise AssertionError("Settings accepted an unknown key")

    def test_secrets_are_secretstr(self, tmp_path: Path) -> None:
        adapter = self.make_adapter(self.scenario(), tmp_path)
        problems = secrets_not_secretstr(type(adapter).Settings)
        assert not problems, "; ".join(problems)

    # ------------------------------------------------------------ draining

    def test_drain_yields_the_scenario(self, tmp_path: Path) -> None:
        scenario, pages = self._drain_fresh(tmp_path)
        assert all(isinstance(page, EventPage) for page in pages), "listen() must yield EventPage objects"
        got = self._keys(pages)
        expected = self.expected_keys(scenario)
        if self.exactly_once:
            assert Counter(got) == Counter(expected), _diff(expected, got)
        else:
            assert set(got) == set(expected), _diff(expected, got)
        assert not [r for page in pages for r in page.rejects], "a clean scenario must not produce rejects"

    def test_drain_takes_several_pages(self, tmp_path: Path) -> None:
        _, pages = self._drain_fresh(tmp_path)
        assert len(pages) >= self.min_pages, (
            f"the scenario came in {len(pages)} page(s); configure a small page size in make_adapter "
            f"so that resuming from a cursor is tested (or lower min_pages)"
        )

    def test_cursors_are_strings_that_round_trip(self, tmp_path: Path) -> None:
        _, pages = self._drain_fresh(tmp_path)
        for page in pages:
            cursor = page.cursor
            assert isinstance(cursor, str) and cursor, f"every page needs a non-empty str cursor, got {cursor!r}"
            assert json.loads(json.dumps(cursor)) == cursor
            cursor.encode("utf-8")  # storable as TEXT anywhere

    def test_resume_from_every_cursor(self, tmp_path: Path) -> None:
        scenario, pages = self._drain_fresh(tmp_path)
        adapter = self.make_adapter(scenario, tmp_path)
        if self._destructive(adapter):
            for i in range(len(pages)):
                self._check_resume_after_crash(scenario, pages, tmp_path, commit_upto=i)
            return
        all_keys = self._keys(pages)
        consumed = 0
        for i, page in enumerate(pages):
            consumed += len(page.events)
            assert page.cursor is not None
            rest = self._keys(self.run_drain(adapter, page.cursor))
            remaining = all_keys[consumed:]
            if self.exactly_once:
                assert rest == remaining, f"resuming after page {i}: " + _diff(remaining, rest)
            else:
                assert set(remaining) <= set(rest), f"resuming after page {i} lost events: " + _diff(remaining, rest)
                assert set(rest) <= set(all_keys), f"resuming after page {i} invented events"

    def test_pages_read_ahead_and_not_committed_are_not_lost(self, tmp_path: Path) -> None:
        """The engine reads up to ``read_ahead`` pages beyond its last commit; if it dies then,
        resuming from the committed cursor must yield everything after it (destructive
        sources: acknowledge in ``committed`` only)."""
        scenario, pages = self._drain_fresh(tmp_path)
        self._check_resume_after_crash(scenario, pages, tmp_path, commit_upto=0)

    def _check_resume_after_crash(
        self, scenario: list[Event], pages: list[EventPage], tmp_path: Path, *, commit_upto: int
    ) -> None:
        if self._destructive(self.make_adapter(scenario, tmp_path)):
            self.fresh_network()
        read = self._crash_after(scenario, tmp_path, commit_upto)
        assert len(read) > commit_upto, f"a drain from the start gave {len(read)} page(s), expected {len(pages)}"
        committed = read[commit_upto]
        assert committed.cursor is not None
        restarted = self.make_adapter(scenario, tmp_path)  # a new process, from the saved cursor
        rest = self._keys(self.run_drain(restarted, committed.cursor))
        consumed = sum(len(p.events) for p in read[: commit_upto + 1])
        remaining = self._keys(pages)[consumed:]
        where = f"after committing page {commit_upto} and reading {len(read) - commit_upto - 1} more"
        if self.exactly_once:
            assert rest == remaining, f"{where}, then a crash: " + _diff(remaining, rest)
        else:
            assert set(remaining) <= set(rest), f"{where}, then a crash, events were lost: " + _diff(remaining, rest)

    def test_resume_after_restart(self, tmp_path: Path) -> None:
        scenario, pages = self._drain_fresh(tmp_path)
        if self._destructive(self.make_adapter(scenario, tmp_path)):
            self._check_resume_after_crash(scenario, pages, tmp_path, commit_upto=len(pages) // 2)
            return
        middle = pages[len(pages) // 2]
        consumed = sum(len(p.events) for p in pages[: len(pages) // 2 + 1])
        fresh = self.make_adapter(scenario, tmp_path)  # a new process, same saved cursor
        rest = self._keys(self.run_drain(fresh, middle.cursor))
        remaining = self._keys(pages)[consumed:]
        if self.exactly_once:
            assert rest == remaining, _diff(remaining, rest)
        else:
            assert set(remaining) <= set(rest), _diff(remaining, rest)

    def test_garbage_cursor_is_fatal(self, tmp_path: Path) -> None:
        adapter = self.make_adapter(self.scenario(), tmp_path)
        try:
            self.run_drain(adapter, self.garbage_cursor)
        except FatalError as exc:
            assert exc.operator_message, "the FatalError must say what is wrong"
        else:
            raise AssertionError(f"listen({self.garbage_cursor!r}) must raise FatalError")

    # ------------------------------------------------------------ what the events say

    def test_keys_are_stable(self, tmp_path: Path) -> None:
        _, first = self._drain_fresh(tmp_path)
        _, second = self._drain_fresh(tmp_path)
        assert sorted(self._keys(first)) == sorted(self._keys(second)), "two drains gave different keys"
        for page in first:
            for event in page.events:
                again = _EVENT.validate_json(_EVENT.dump_json(event))
                assert again.key == event.key, f"{event.key} changed after a JSON round trip"
                if isinstance(event, MessageCreated | MessageEdited):
                    assert event.message.network and event.message.id, "messages need network and id"
                    assert event.message.author.account_id, "authors need their stable account_id"

    def test_edits_and_deletions_follow_their_message(self, tmp_path: Path) -> None:
        _, pages = self._drain_fresh(tmp_path)
        created: dict[str, Message] = {}
        for event in (e for page in pages for e in page.events):
            if isinstance(event, MessageCreated):
                created.setdefault(event.message.key, event.message)
            elif isinstance(event, MessageEdited):
                original = created.get(event.message.key)
                assert original is not None, f"edit {event.key} came before (or without) its message"
                edited_at = event.message.edited_at
                assert edited_at is not None or event.version, f"edit {event.key} has neither a version nor edited_at"
                assert edited_at is None or edited_at >= original.created_at, f"edit {event.key} predates its message"
            elif isinstance(event, MessageDeleted):
                assert event.message_key in created, f"deletion {event.key} came before (or without) its message"

    def test_replies_point_at_known_messages(self, tmp_path: Path) -> None:
        _, pages = self._drain_fresh(tmp_path)
        messages = [e.message for page in pages for e in page.events if isinstance(e, MessageCreated)]
        ids = {(m.network, m.id) for m in messages}
        for m in messages:
            if m.thread_root_id is None:
                assert m.parent_id is None, f"{m.key} has a parent but no thread_root_id"
                continue
            assert m.thread_root_id != m.id, f"{m.key}: a root's thread_root_id must be None"
            assert (m.network, m.thread_root_id) in ids, f"{m.key}: root {m.thread_root_id} is not in the stream"
            if m.parent_id is not None:
                assert (m.network, m.parent_id) in ids, f"{m.key}: parent {m.parent_id} is not in the stream"

    # ------------------------------------------------------------ hooks into your fake (optional)

    def _faults(self) -> Any:
        faults = getattr(self.fake, "faults", None) if hasattr(self, "fake") else None
        if faults is None:
            raise NotImplementedError
        return faults

    def rate_limit_next_request(self) -> Callable[[], int]:
        """Make the network answer the adapter's next request with its rate-limit refusal
        (429 and the network's own headers). Return a function that tells how many such
        refusals the network has given so far (the test checks one really happened).

        Default: arm ``Fault.rate_limited`` on ``self.fake.faults``."""
        faults = self._faults()
        faults.arm(Fault.rate_limited)
        return lambda: int(faults.taken[Fault.rate_limited])

    def lose_next_response(self) -> None:
        """Make the network apply the adapter's next write, then lose the answer (a proxy's
        502 or a dropped connection). Default: arm ``Fault.lost_response`` on ``self.fake.faults``."""
        self._faults().arm(Fault.lost_response)

    def webhook_requests(self, scenario: list[Event]) -> list[WebhookRequest]:
        """Signed requests carrying ``scenario`` as the network would deliver it (webhook
        networks only). Built with the secret the adapter from :meth:`make_adapter` holds."""
        raise NotImplementedError

    def webhook_expected_keys(self, scenario: list[Event]) -> list[str]:
        """Keys of the events the webhook requests carry (default: :meth:`expected_keys`)."""
        return self.expected_keys(scenario)

    def reply_target(self, messages: list[Message]) -> Message:
        """The message the reply tests answer (default: the first inbound public root message)."""
        for m in messages:
            if m.direction is Direction.inbound and m.visibility is Visibility.public and m.thread_root_id is None:
                return m
        raise AssertionError("the drain has no inbound public root message to reply to; override reply_target")

    def network_replies(self, adapter: NetworkAdapter, target: Message) -> list[Message]:
        """The replies to ``target`` that are on the network now (default: through ``fetch_thread``)."""

        async def fetch() -> list[Message]:
            await adapter.start()
            try:
                return await adapter.fetch_thread(target.thread_root_id or target.id)
            finally:
                await adapter.close()

        thread = asyncio.run(asyncio.wait_for(fetch(), self.timeout))
        return [m for m in thread if m.parent_id == target.id and m.direction is Direction.outbound]

    # ------------------------------------------------------------ rate limits

    def test_survives_a_rate_limit(self, tmp_path: Path) -> None:
        scenario, clean = self._drain_fresh(tmp_path)
        adapter = self.make_adapter(scenario, tmp_path)
        if self._destructive(adapter):
            self.fresh_network()
            adapter = self.make_adapter(scenario, tmp_path)
        refusals: list[Callable[[], int]] = []

        def arm() -> None:
            try:
                refusals.append(self.rate_limit_next_request())
            except NotImplementedError:
                pytest.skip(f"{type(self).__name__} does not implement rate_limit_next_request()")

        pages, _ = asyncio.run(asyncio.wait_for(drain_retrying(adapter, before=arm), self.timeout))
        assert refusals[0]() >= 1, "the network never refused a request: rate_limit_next_request() had no effect"
        expected, got = self._keys(clean), self._keys(pages)
        if self.exactly_once:
            assert got == expected, "after a rate limit: " + _diff(expected, got)
        else:
            assert set(got) == set(expected), "after a rate limit: " + _diff(expected, got)

    # ------------------------------------------------------------ replies

    def _reply_setup(self, tmp_path: Path) -> tuple[NetworkAdapter, Message]:
        scenario, pages = self._drain_fresh(tmp_path)
        adapter = self.make_adapter(scenario, tmp_path)
        if NetworkCapability.reply not in type(adapter).capabilities:
            pytest.skip(f"{type(adapter).__name__} does not declare the reply capability")
        messages = [e.message for page in pages for e in page.events if isinstance(e, MessageCreated)]
        return adapter, self.reply_target(messages)

    def _send(self, adapter: NetworkAdapter, target: Message, text: str, key: str, before: Any = None) -> SentReply:
        async def send() -> SentReply:
            await adapter.start()
            try:
                if before is not None:
                    before()
                return await adapter.send_reply(target.id, text, key)
            finally:
                await adapter.close()

        return asyncio.run(asyncio.wait_for(send(), self.timeout))

    def _check_sent(self, sent: SentReply, target: Message, text: str) -> None:
        m = sent.message
        assert m.direction is Direction.outbound, "a sent reply must be direction=outbound"
        assert m.parent_id == target.id, f"the sent reply's parent_id is {m.parent_id!r}, not {target.id!r}"
        assert m.thread_root_id == (target.thread_root_id or target.id), "the sent reply must be in the target's thread"
        assert text in m.text, f"the sent reply's text {m.text!r} does not carry {text!r}"
        assert m.network == target.network and m.id, "the sent reply needs the network's id"

    def test_reply_guarantee_is_declared(self, tmp_path: Path) -> None:
        cls = type(self.make_adapter(self.scenario(), tmp_path))
        if NetworkCapability.reply not in cls.capabilities:
            pytest.skip(f"{cls.__name__} does not declare the reply capability")
        assert isinstance(cls.reply_guarantee, ReplyGuarantee), (
            f"{cls.__name__} can reply but declares no reply_guarantee: set it to ReplyGuarantee.idempotency_key, "
            "look_before_post or at_most_once (what sending the same reply twice does on this network)"
        )

    def _guarantee(self, adapter: NetworkAdapter) -> ReplyGuarantee:
        guarantee = type(adapter).reply_guarantee
        assert isinstance(guarantee, ReplyGuarantee), f"{type(adapter).__name__} declares no reply_guarantee"
        return guarantee

    def test_reply_is_sent_once(self, tmp_path: Path) -> None:
        adapter, target = self._reply_setup(tmp_path)
        text, key = "Thanks for telling us, we are on it.", "reply-test-1"
        first = self._send(adapter, target, text, key)
        self._check_sent(first, target, text)
        if self._guarantee(adapter) is not ReplyGuarantee.at_most_once:  # the engine never sends those twice
            again = self._send(adapter, target, text, key)
            assert again.message.id == first.message.id, "the same idempotency key posted a second reply"
        other = self._send(adapter, target, "A second, different answer.", "reply-test-2")
        assert other.message.id != first.message.id, "a new idempotency key must post a new reply"
        on_network = [m for m in self.network_replies(adapter, target) if text in m.text]
        assert len(on_network) == 1, f"the network holds {len(on_network)} copies of the reply"

    def test_reply_survives_a_lost_response(self, tmp_path: Path) -> None:
        adapter, target = self._reply_setup(tmp_path)
        text, key = "We have sent a replacement.", "reply-lost-1"

        def arm() -> None:
            try:
                self.lose_next_response()
            except NotImplementedError:
                pytest.skip(f"{type(self).__name__} does not implement lose_next_response()")

        if self._guarantee(adapter) is ReplyGuarantee.at_most_once:
            try:
                self._send(adapter, target, text, key, before=arm)
            except SkippableError as exc:
                assert exc.operator_message, "the reason shown to the agent must not be empty"
            except RetryableError:
                raise AssertionError(
                    "an at_most_once adapter raised RetryableError for a lost answer: the engine would post the "
                    "reply again; raise SkippableError saying it may or may not have been posted"
                ) from None
            else:
                raise AssertionError("the answer was lost, yet send_reply reported success")
            on_network = [m for m in self.network_replies(adapter, target) if text in m.text]
            assert len(on_network) <= 1, f"after a lost answer the network holds {len(on_network)} copies"
            return
        try:
            self._send(adapter, target, text, key, before=arm)
        except RetryableError:
            pass  # what the engine expects of a lost answer; it tries again with the same key
        else:
            raise AssertionError("the answer was lost, yet send_reply reported success without raising RetryableError")
        sent = self._send(adapter, target, text, key)
        self._check_sent(sent, target, text)
        on_network = [m for m in self.network_replies(adapter, target) if text in m.text]
        assert len(on_network) == 1, f"after a lost answer and a retry the network holds {len(on_network)} copies"

    # ------------------------------------------------------------ webhooks

    def _webhook_setup(self, tmp_path: Path) -> tuple[NetworkAdapter, list[Event], list[WebhookRequest]]:
        scenario = self.scenario()
        adapter = self.make_adapter(scenario, tmp_path)
        if NetworkCapability.webhook not in type(adapter).capabilities:
            pytest.skip(f"{type(adapter).__name__} does not declare the webhook capability")
        try:
            requests = self.webhook_requests(scenario)
        except NotImplementedError:
            pytest.skip(f"{type(self).__name__} does not implement webhook_requests()")
        assert requests, "webhook_requests() returned no requests"
        return adapter, scenario, requests

    def test_webhooks_verify_and_parse(self, tmp_path: Path) -> None:
        adapter, scenario, requests = self._webhook_setup(tmp_path)
        keep = {h.lower() for h in type(adapter).webhook_headers}

        async def parse_all() -> list[str]:
            await adapter.start()
            try:
                keys: list[str] = []
                for request in requests:
                    answer = adapter.verify_webhook(request)
                    assert answer is None or isinstance(answer, WebhookAnswer)
                    if answer is None:
                        stored = {k: v for k, v in request.headers.items() if k in keep}
                        keys += [e.key for e in await adapter.parse_webhook(request.body, stored)]
                return keys
            finally:
                await adapter.close()

        got = asyncio.run(asyncio.wait_for(parse_all(), self.timeout))
        expected = self.webhook_expected_keys(scenario)
        assert set(got) == set(expected), _diff(expected, got)

    def test_webhooks_refuse_forgeries(self, tmp_path: Path) -> None:
        adapter, _, requests = self._webhook_setup(tmp_path)
        posts = [r for r in requests if r.body]
        assert posts, "webhook_requests() has no request with a body"
        request = posts[0]
        body = bytearray(request.body)
        body[len(body) // 2] ^= 0x01
        forged = [
            WebhookRequest(request.method, request.headers, request.query, bytes(body)),
            WebhookRequest(request.method, {}, request.query, request.body),
            WebhookRequest(request.method, request.headers, request.query, request.body + b" "),
        ]
        for i, bad in enumerate(forged):
            try:
                adapter.verify_webhook(bad)
            except WebhookRejected as exc:
                assert 400 <= exc.status < 500 and exc.reason
            else:
                raise AssertionError(f"forged webhook request #{i} (changed body or no signature) was accepted")


def _diff(expected: Sequence[str], got: Sequence[str]) -> str:
    missing = Counter(expected) - Counter(got)
    extra = Counter(got) - Counter(expected)
    parts = []
    if missing:
        parts.append(f"missing {sorted(missing.elements())[:10]}")
    if extra:
        parts.append(f"unexpected or duplicated {sorted(extra.elements())[:10]}")
    if not parts:
        parts.append(f"same events, different order: expected {list(expected)[:10]}..., got {list(got)[:10]}...")
    return "; ".join(parts)
