"""scrm-replay: a network adapter that replays recorded events from NDJSON files.

Each line is one :data:`scrm_core.Event` as JSON, so any network's traffic can be
recorded and replayed, and :func:`generate_demo` writes a realistic demo stream.
"""

from __future__ import annotations

from .adapter import ReplayAdapter, ReplaySettings
from .cursor import Cursor
from .demo import DemoStats, expected_state, generate_demo
from .format import EVENT_ADAPTER, dump_event, parse_line

__version__ = "0.1.0"

__all__ = [
    "EVENT_ADAPTER",
    "Cursor",
    "DemoStats",
    "ReplayAdapter",
    "ReplaySettings",
    "dump_event",
    "expected_state",
    "generate_demo",
    "parse_line",
]
