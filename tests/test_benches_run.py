"""The benches run end to end on a small stream: a bench that no longer matches
the engine's interfaces fails here, not on the day someone needs its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).parents[1] / "bench" / "bench_pipeline.py"


def run_bench(script: str, *args: str) -> dict[str, Any]:
    """Run ``bench/<script>`` with ``args`` in its own interpreter; its JSON report."""
    out = subprocess.run(
        [sys.executable, str(BENCH.parent / script), *args], capture_output=True, text=True, check=False, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report: dict[str, Any] = json.loads(out.stdout)
    return report


def test_the_pipeline_bench_runs_and_reports_cpu_rates_for_both_pipelines() -> None:
    report = run_bench("bench_pipeline.py", "--messages", "300", "--memory-messages", "0", "--per-message-limit", "20")
    headline = report["headline"]
    assert headline["messages"] == 300
    assert headline["messages_per_cpu_second"]["understanding_off"] > 0
    assert headline["messages_per_cpu_second"]["understanding_on"] > 0
    # both pipelines wrote the stream into the CRM; understanding adds plugins, not records
    assert report["pipeline"]["crm_records_written"] > 300
    assert {"sentiment", "language"} <= set(report["pipeline_with_understanding"]["plugins"])


def test_the_understanding_bench_runs_every_hook_of_the_installed_plugins() -> None:
    figures = run_bench("bench_understanding.py", "--messages", "200", "--rounds", "1")["us_per_message"]
    assert set(figures) == {"language", "sentiment", "listening", "intent", "influence"}
    # each hook did work on every pass (its text caches are emptied between passes)
    assert all(f["current"] > 0 for f in figures.values()), figures


def test_the_hot_path_bench_reports_each_part_for_both_plugin_sets() -> None:
    report = run_bench("bench_hot_path.py", "--messages", "300", "--repeat", "1")
    for plugins in ("understanding_off", "understanding_on"):
        parts = report[plugins]
        assert parts["messages"] == 300
        assert parts["ops"] > 300  # contacts, profiles and messages at least
        assert all(parts[p] > 0 for p in ("parse", "ingest", "store_commit", "pool", "crm_apply")), parts
        assert parts["total"] >= parts["ingest"]


def test_the_pipeline_bench_measures_a_baseline_checkout_beside_this_one() -> None:
    root = BENCH.parents[1]
    if not (root / ".venv" / "bin" / "python").exists():
        pytest.skip("needs the checkout's .venv (python3 scripts/dev.py setup): the baseline runs with its own")
    small = ["--messages", "200", "--memory-messages", "0", "--per-message-limit", "10"]
    report = run_bench("bench_pipeline.py", *small, "--baseline", str(root))
    baseline = report["baseline"]
    assert baseline["tree"] == str(root)
    assert baseline["messages_per_cpu_second"]["understanding_off"] > 0
    assert baseline["crm_records_written"]["understanding_off"] == report["pipeline"]["crm_records_written"]
    assert set(report["speedup_over_baseline_cpu"]) == {"understanding_off", "understanding_on"}


def test_the_engine_parts_bench_splits_the_cpu_by_thread_and_part() -> None:
    report = run_bench("bench_engine_parts.py", "--messages", "300")
    assert report["messages"] == 300
    parts = report["cpu_us_per_message"]
    assert parts["loop: ingest one new message"] > 0 and parts["thread: scrm-store"] > 0
    assert parts["loop thread: all of Engine.run"] >= parts["loop: ingest one new message"]


@pytest.mark.slow
def test_the_fleet_bench_runs_one_and_two_workers_beside_sqlite() -> None:
    from scrm_postgres.testing import require_postgres
    from scrm_redis.testing import require_redis

    require_postgres()  # skips saying why without the servers (fails in CI, where they must run)
    require_redis()
    report = run_bench("bench_fleet.py", "--messages", "300", "--page-size", "50")
    scenarios = report["scenarios"]
    assert set(scenarios) == {"sqlite_1_worker", "postgres_1_worker", "postgres_2_workers"}
    for scenario in scenarios.values():
        assert scenario["messages"] == report["messages"] > 0 and scenario["messages_per_second"] > 0
        assert scenario["exit_codes"] == [0] * scenario["workers"]
        assert scenario["crm_requests"] > 0 and scenario["crm_429"] >= 0
    assert set(scenarios["postgres_2_workers"]["cpu_seconds"]) >= {"worker_0", "worker_1", "postgres", "redis"}
    assert report["ratio_2_to_1"] > 0
