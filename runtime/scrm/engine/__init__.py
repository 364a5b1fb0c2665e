"""The async pipeline: ingest -> understand -> decide -> outbox -> sink.

The names below are imported on first use: the built-in routing plugin
(``scrm.engine.routing``) is loaded by every command, the pipeline only by those
that run it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .ingest import IngestCounts, Ingestor
    from .runner import Engine, RunStats, build_crm, build_source, tune_gc_for_throughput
    from .sink import Sink, SinkCounts

__all__ = [
    "Engine",
    "IngestCounts",
    "Ingestor",
    "RunStats",
    "Sink",
    "SinkCounts",
    "build_crm",
    "build_source",
    "tune_gc_for_throughput",
]

_MODULE = {"IngestCounts": ".ingest", "Ingestor": ".ingest", "Sink": ".sink", "SinkCounts": ".sink"}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_MODULE.get(name, ".runner"), __name__), name)
