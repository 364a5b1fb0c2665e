"""The fleet as ``scrm status`` (and ``scrm state fleet``) show it: workers, leases, how far
behind each source is, and the outbox's depth per partition, from one snapshot of a store
shared by a fleet (:meth:`FleetStore.fleet <scrm_core.store.FleetStore.fleet>`)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scrm.store import FleetView

__all__ = ["fleet_report", "print_fleet"]

_SINK_PREFIX = "outbox#"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _kind(name: str) -> str:
    if name.startswith(_SINK_PREFIX):
        return "sink"
    # A streamed source's commit turn (scrm.engine.page_stream), held for one commit.
    return "page turn" if name.endswith("#page") else "reader"


def fleet_report(view: FleetView, lease_seconds: float) -> dict[str, Any]:
    """The fleet as plain data (``--json``): every time in seconds, by the store's clock.

    A lease past its expiry is shown without a holder (anyone may take it); a dead worker
    still named as a holder is flagged, so an operator sees a lease nobody renews."""
    alive = {w.id: w.alive for w in view.workers}
    leases = []
    for lease in view.leases:
        held = lease.holder is not None and lease.expires_in > 0
        leases.append(
            {
                "name": lease.name,
                "kind": _kind(lease.name),
                "worker": lease.holder if held else None,
                "worker_alive": alive.get(lease.holder) if held and lease.holder is not None else None,
                "expires_in_seconds": _round(lease.expires_in) if held else None,
                "token": lease.token,
            }
        )
    holders = {x["name"]: x["worker"] for x in leases}
    return {
        "lease_seconds": lease_seconds,
        "workers": [
            {
                "id": w.id,
                "host": w.host,
                "pid": w.pid,
                "alive": w.alive,
                "heartbeat_seconds_ago": round(w.seen_seconds_ago, 1),
                "started_at": w.started_at.isoformat() if w.started_at else None,
                "leases": sum(1 for x in leases if x["worker"] == w.id),
            }
            for w in view.workers
        ],
        "leases": leases,
        "sources": [
            {
                "name": s.name,
                "reader": holders.get(s.name),
                "events": s.events,
                "last_commit_seconds_ago": _round(s.last_commit_seconds_ago),
                "pages_per_minute": s.pages_per_minute,
                "events_per_minute": s.events_per_minute,
                "window_seconds": s.window_seconds,
            }
            for s in view.sources
        ],
        "outbox_depth": sum(view.outbox_by_partition.values()),
        "outbox_by_partition": {str(part): n for part, n in sorted(view.outbox_by_partition.items())},
    }


def _seconds(value: float | None, suffix: str = "") -> str:
    return "-" if value is None else f"{value:.1f} s{suffix}"


def print_fleet(console: Console, report: dict[str, Any]) -> None:
    """The report as tables."""
    workers = Table(title=f"fleet workers (lease {report['lease_seconds']:g} s)")
    for column in ("worker", "host", "pid", "alive", "heartbeat", "leases"):
        workers.add_column(column)
    for w in report["workers"]:
        workers.add_row(
            escape(w["id"]),
            escape(w["host"]),
            str(w["pid"]),
            "yes" if w["alive"] else "[red]no[/]",
            _seconds(w["heartbeat_seconds_ago"], " ago"),
            str(w["leases"]),
        )
    leases = Table(title="leases")
    for column in ("lease", "kind", "held by", "expires in"):
        leases.add_column(column)
    for x in report["leases"]:
        holder = "[yellow]nobody[/]" if x["worker"] is None else escape(x["worker"])
        if x["worker_alive"] is False:
            holder += " [red](dead)[/]"
        leases.add_row(escape(x["name"]), x["kind"], holder, _seconds(x["expires_in_seconds"]))
    window = report["sources"][0]["window_seconds"] / 60 if report["sources"] else 0
    lag = Table(title=f"lag per source (rates over the last {window:g} min)")
    for column in ("source", "read by", "last commit", "pages/min", "events/min", "events"):
        lag.add_column(column)
    for s in report["sources"]:
        lag.add_row(
            escape(s["name"]),
            escape(s["reader"] or "-"),
            _seconds(s["last_commit_seconds_ago"], " ago"),
            f"{s['pages_per_minute']:g}",
            f"{s['events_per_minute']:g}",
            f"{s['events']:,}",
        )
    console.print(workers)
    console.print(leases)
    if report["sources"]:
        console.print(lag)
    parts = ", ".join(f"#{p}: {n:,}" for p, n in report["outbox_by_partition"].items()) or "empty"
    console.print(
        f"outbox across the fleet: {report['outbox_depth']:,} operation(s) waiting ({parts})", highlight=False
    )
