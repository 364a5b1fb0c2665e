"""ReplayAdapter: pages, rejects, cursors, globbing and follow mode."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from scrm_replay import ReplayAdapter, ReplaySettings, dump_event
from scrm_replay.format import MAX_REASON

from scrm_core import AdapterContext, EventPage, FatalError, MessageCreated, SocialProfile

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def line(i: int) -> bytes:
    author = SocialProfile(network="t", account_id=str(i % 3 + 1), handle=f"user{i % 3}")
    msg = {
        "network": "t",
        "id": str(i),
        "author": author,
        "text": f"message {i}",
        "created_at": T0 + timedelta(minutes=i),
    }
    return dump_event(MessageCreated.model_validate({"message": msg}))


def lines(*numbers: int) -> bytes:
    return b"".join(line(i) for i in numbers)


def replay(base: Path, *paths: str, page_size: int = 500, poll_seconds: float = 1.0) -> ReplayAdapter:
    settings = ReplaySettings(paths=list(paths) or ["*.ndjson"], page_size=page_size, poll_seconds=poll_seconds)
    return ReplayAdapter(settings, AdapterContext(name="replay", base_dir=base))


def drain(adapter: ReplayAdapter, cursor: str | None = None) -> list[EventPage]:
    async def run() -> list[EventPage]:
        return [page async for page in adapter.listen(cursor, follow=False)]

    return asyncio.run(run())


def ids(pages: list[EventPage]) -> list[str]:
    return [e.message.id for p in pages for e in p.events if isinstance(e, MessageCreated)]


def test_pages_respect_page_size_and_span_files(tmp_path: Path) -> None:
    (tmp_path / "a.ndjson").write_bytes(lines(1, 2, 3, 4))
    (tmp_path / "b.ndjson").write_bytes(lines(5, 6, 7))
    pages = drain(replay(tmp_path, page_size=3))
    assert [len(p.events) for p in pages] == [3, 3, 1]
    assert ids(pages) == [str(i) for i in range(1, 8)]
    assert pages[1].cursor == f"v1:2:{len(lines(5, 6))}:b.ndjson"  # names the file read last


def test_blank_lines_are_skipped_but_counted(tmp_path: Path) -> None:
    (tmp_path / "a.ndjson").write_bytes(b"\n" + line(1) + b"  \n\r\n" + b"{oops\n")
    (page,) = drain(replay(tmp_path))
    assert ids([page]) == ["1"]
    assert page.rejects[0][0] == "a.ndjson:5"


def test_malformed_lines_become_rejects_and_the_file_goes_on(tmp_path: Path) -> None:
    broken = line(2).replace(b'"account_id":"3",', b"")
    huge = b'{"kind": "message.created", "message": ' + b"x" * 50_000 + b"\n"
    (tmp_path / "a.ndjson").write_bytes(line(1) + b'{"kind":"message.created","mess\n' + broken + huge + line(3))
    pages = drain(replay(tmp_path))
    assert ids(pages) == ["1", "3"]
    rejects = [r for p in pages for r in p.rejects]
    assert [loc for loc, _ in rejects] == ["a.ndjson:2", "a.ndjson:3", "a.ndjson:4"]
    assert "Invalid JSON" in rejects[0][1] and "column" in rejects[0][1]
    assert rejects[1][1] == "message.author.account_id: Field required"
    assert all(len(reason) <= MAX_REASON and "xxxx" not in reason for _, reason in rejects)


def test_unknown_kind_is_named(tmp_path: Path) -> None:
    (tmp_path / "a.ndjson").write_bytes(b'{"kind": "message.liked"}\n')
    (page,) = drain(replay(tmp_path))
    assert page.rejects == [("a.ndjson:1", "kind: unknown event kind 'message.liked'")]


def test_a_page_of_only_rejects_is_still_yielded(tmp_path: Path) -> None:
    (tmp_path / "a.ndjson").write_bytes(b"bad\nbad\n" + line(3))
    pages = drain(replay(tmp_path, page_size=2))
    assert pages[0].events == [] and len(pages[0].rejects) == 2
    assert drain(replay(tmp_path, page_size=2), pages[0].cursor)[0].events[0].key == "c:t:3"


def test_unterminated_last_line_is_left_for_later(tmp_path: Path) -> None:
    path = tmp_path / "a.ndjson"
    third = line(3)
    path.write_bytes(lines(1, 2) + third[:20])
    pages = drain(replay(tmp_path))
    assert ids(pages) == ["1", "2"]
    cursor = pages[-1].cursor
    assert cursor == f"v1:2:{len(lines(1, 2))}:a.ndjson"
    with path.open("ab") as f:
        f.write(third[20:] + line(4))
    assert ids(drain(replay(tmp_path), cursor)) == ["3", "4"]


def test_resume_from_the_end_yields_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.ndjson").write_bytes(lines(1, 2))
    pages = drain(replay(tmp_path))
    assert drain(replay(tmp_path), pages[-1].cursor) == []


def test_an_empty_source_yields_no_pages(tmp_path: Path) -> None:
    (tmp_path / "a.ndjson").write_bytes(b"")
    assert drain(replay(tmp_path)) == []


@pytest.mark.parametrize(
    ("cursor", "message"),
    [
        ("garbage", "is not a cursor this adapter wrote"),
        ("v2:1:10:a.ndjson", "is not a cursor this adapter wrote"),
        ("v1:x:10:a.ndjson", "non-negative integers"),
        ("v1:5:3:a.ndjson", "disagree"),
        ("v1:1:5:gone.ndjson", "'gone.ndjson', which is no longer among the files"),
        ("v1:900:999999:a.ndjson", "has only"),
        ("v1:1:5:a.ndjson", "not the start of a line"),
    ],
)
def test_bad_cursors_are_fatal(tmp_path: Path, cursor: str, message: str) -> None:
    (tmp_path / "a.ndjson").write_bytes(lines(1, 2))
    with pytest.raises(FatalError, match=message):
        drain(replay(tmp_path), cursor)


def test_pattern_matching_nothing_is_fatal_and_named(tmp_path: Path) -> None:
    (tmp_path / "a.ndjson").write_bytes(line(1))
    with pytest.raises(FatalError, match=r"no file matches 'recordings/\*\*/\*\.ndjson'"):
        drain(replay(tmp_path, "a.ndjson", "recordings/**/*.ndjson"))
    with pytest.raises(FatalError, match=r"no file matches 'missing\.ndjson'"):
        drain(replay(tmp_path, "missing.ndjson"))


def test_globs_expand_sorted_and_deduplicated(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.ndjson").write_bytes(line(2))
    (tmp_path / "a.ndjson").write_bytes(line(1))
    adapter = replay(tmp_path, "sub/*.ndjson", "**/*.ndjson", "a.ndjson")
    assert [label for label, _ in adapter.files()] == ["a.ndjson", "sub/b.ndjson"]
    assert ids(drain(adapter)) == ["1", "2"]


def test_settings_are_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="page_size"):
        ReplaySettings(paths=["x"], page_size=0)
    with pytest.raises(ValueError, match="extra"):
        ReplaySettings.model_validate({"paths": ["x"], "speed": 2})
    with pytest.raises(ValueError, match="paths"):
        ReplaySettings(paths=[])


def test_follow_reads_appended_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.ndjson"
    third = line(3)
    path.write_bytes(lines(1, 2) + third[:15])  # the writer is in the middle of line 3

    async def run() -> list[EventPage]:
        listener = replay(tmp_path, poll_seconds=0.01).listen(None, follow=True)
        try:
            first = await asyncio.wait_for(anext(listener), 5)
            with path.open("ab") as f:
                f.write(third[15:] + line(4))
            second = await asyncio.wait_for(anext(listener), 5)
            return [first, second]
        finally:
            await listener.aclose()

    first, second = asyncio.run(run())
    assert ids([first]) == ["1", "2"]
    assert ids([second]) == ["3", "4"]
    assert second.cursor == f"v1:4:{len(lines(1, 2, 3, 4))}:a.ndjson"


def test_follow_can_be_cancelled_while_waiting(tmp_path: Path) -> None:
    (tmp_path / "a.ndjson").write_bytes(line(1))

    async def run() -> int:
        got = 0
        first_page = asyncio.Event()

        async def consume() -> None:
            nonlocal got
            async for page in replay(tmp_path, poll_seconds=0.01).listen(None, follow=True):
                got += len(page.events)
                first_page.set()

        task = asyncio.create_task(consume())
        await first_page.wait()
        await asyncio.sleep(0.05)  # let it reach the poll loop's sleep
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return got

    assert asyncio.run(asyncio.wait_for(run(), 5)) == 1


def test_follow_notices_a_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "a.ndjson"
    path.write_bytes(lines(1, 2))

    async def run() -> None:
        listener = replay(tmp_path, poll_seconds=0.01).listen(None, follow=True)
        try:
            await asyncio.wait_for(anext(listener), 5)
            path.write_bytes(b"")
            await asyncio.wait_for(anext(listener), 5)
        finally:
            await listener.aclose()

    with pytest.raises(FatalError, match="truncated or replaced"):
        asyncio.run(run())


def test_settings_given_as_base_model_are_revalidated(tmp_path: Path) -> None:
    from scrm_core import AdapterSettings

    class Loose(AdapterSettings):
        paths: list[str]

    adapter = ReplayAdapter(Loose(paths=["*.ndjson"]), AdapterContext(name="r", base_dir=tmp_path))
    assert isinstance(adapter.settings, ReplaySettings) and adapter.settings.page_size == 500


def test_a_file_that_vanishes_is_fatal(tmp_path: Path) -> None:
    (tmp_path / "a.ndjson").write_bytes(line(1))
    (tmp_path / "b.ndjson").write_bytes(line(2))
    adapter = replay(tmp_path)

    async def run() -> None:
        async for _ in adapter.listen(None, follow=False):
            pass

    files = adapter.files
    adapter.files = lambda: [*files(), ("c.ndjson", tmp_path / "c.ndjson")]  # type: ignore[method-assign]
    with pytest.raises(FatalError, match=r"cannot read 'c\.ndjson'"):
        asyncio.run(run())


def test_lines_longer_than_a_read_chunk(tmp_path: Path) -> None:
    author = SocialProfile(network="t", account_id="1")
    big = MessageCreated.model_validate(
        {"message": {"network": "t", "id": "big", "author": author, "text": "k" * 2_500_000, "created_at": T0}}
    )
    (tmp_path / "a.ndjson").write_bytes(line(1) + dump_event(big) + line(2))
    pages = drain(replay(tmp_path, page_size=2))
    assert ids(pages) == ["1", "big", "2"]
    assert drain(replay(tmp_path), pages[0].cursor)[0].events[0].key == "c:t:2"


def test_follow_reads_a_new_file_that_sorts_after_the_last_one(tmp_path: Path) -> None:
    (tmp_path / "a.ndjson").write_bytes(lines(1, 2))

    async def run() -> list[list[str]]:
        listener = replay(tmp_path, poll_seconds=0.01).listen(None, follow=True)
        try:
            first = await asyncio.wait_for(anext(listener), 5)
            (tmp_path / "b.ndjson").write_bytes(lines(3))
            second = await asyncio.wait_for(anext(listener), 5)
        finally:
            await listener.aclose()
        return [[e.key for e in first.events], [e.key for e in second.events]]

    first, second = asyncio.run(run())
    assert len(first) == 2 and len(second) == 1 and second[0] not in first
