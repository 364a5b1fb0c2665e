"""The async pipeline: ingest -> understand -> decide -> outbox -> sink."""

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
