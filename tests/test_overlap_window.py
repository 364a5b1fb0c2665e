"""scrm_core.OverlapWindow: a cursor on modification times that re-reads a window and hands
out each version of a record once."""

from __future__ import annotations

from scrm_core import JsonCursor, OverlapWindow


def test_a_late_save_inside_the_window_is_handed_out_and_a_seen_one_is_not() -> None:
    start = OverlapWindow()
    assert start.since(1_000) is None  # nothing read yet: from the beginning
    after = start.advanced([("a", 10_000, "complaint"), ("b", 10_500, "praise")], overlap_ms=1_000, max_seen=10)
    assert after.high == 10_500 and after.since(1_000) == 9_500
    # the index shows a save made before b only now: it is inside the window, so it is read again
    assert after.fresh("c", 10_200, "question")
    assert not after.fresh("b", 10_500, "praise")  # handed out already
    assert after.fresh("b", 10_500, "spam")  # same time, changed value: a new version
    assert after.fresh("a", 10_001, "complaint")  # modified again


def test_the_window_stays_small_when_records_crowd_it() -> None:
    handed = [(f"r{i}", 1_000 + i, "x") for i in range(50)]
    window = OverlapWindow().advanced(handed, overlap_ms=60_000, max_seen=10, resolution_ms=1)
    assert len(window.seen) <= 10
    assert window.floor is not None and window.since(60_000) == window.floor
    # never the newest time's records: those are what the next read must not hand out again
    assert "r49" in window.seen
    assert not window.fresh("r49", 1_049, "x")


def test_whole_second_stamps_move_the_floor_by_a_whole_second() -> None:
    handed = [("a", 1_000, "x"), ("b", 2_000, "x"), ("c", 3_000, "x")]
    window = OverlapWindow().advanced(handed, overlap_ms=60_000, max_seen=1, resolution_ms=1_000)
    assert window.floor == 3_000 and set(window.seen) == {"c"}


def test_it_round_trips_inside_a_json_cursor() -> None:
    class Positions(JsonCursor):
        prefix = "t1:"
        positions: dict[str, OverlapWindow] = {}

    window = OverlapWindow().advanced([("a", 5, "x")], overlap_ms=10, max_seen=5)
    text = Positions(positions={"notes": window}).dump()
    assert Positions.parse(text).positions["notes"] == window
