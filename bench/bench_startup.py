#!/usr/bin/env python3
"""What starting ``scrm`` costs, in CPU seconds of a fresh process, with every adapter installed.

Each command runs in its own subprocess (``python -m scrm ...``), ``--repeat`` times;
its CPU time (user + system, from ``getrusage(RUSAGE_CHILDREN)``) is reported as the
median and the minimum. Baselines in the same run: the bare interpreter
(``python -c pass``) and ``import scrm_core``. Commands:

* ``help``: ``scrm --help``;
* ``status``: ``scrm status -c scrm-demo/scrm.toml`` on a small demo deployment (made
  first, not timed): loads the plugins, validates the config, reads the state store;
* ``plugins_load``: ``PluginHost().load()`` alone (every entry point imported and
  registered), what every ``scrm`` command and every subprocess test pays.

``--baseline-tree DIR`` measures another checkout of the repository in the same run (its
``scrm_core``, ``adapters/*`` and ``plugins/*`` first on ``PYTHONPATH``, same interpreter
and installed libraries), the runs of both interleaved so that the machine's load falls on
both alike.

Prints JSON. Machines are shared and noisy: compare the figures of one run with each
other (the ratio to the bare interpreter), not with another day's; the minimum is the
steadiest figure on a busy machine.

    git worktree add /tmp/scrm-before <commit>   # optional: the baseline
    .venv/bin/python bench/bench_startup.py [--repeat 5] [--baseline-tree /tmp/scrm-before]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def tree_env(tree: Path | None) -> dict[str, str]:
    """The environment that runs ``tree``'s packages (None: the installed ones)."""
    env = {**os.environ, "COLUMNS": "120"}
    # As installed: bytecode cached (the untimed first run writes it), not compiled at every start.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if tree is not None:
        roots = [tree, *sorted(tree.glob("adapters/*")), *sorted(tree.glob("plugins/*"))]
        env["PYTHONPATH"] = os.pathsep.join(str(r) for r in roots)
    return env


def cpu_seconds(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    """CPU time (user + system) of one run of ``argv``; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def summary(runs: list[float]) -> dict[str, float]:
    return {"median_cpu_s": round(statistics.median(runs), 3), "min_cpu_s": round(min(runs), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command (default 5)")
    parser.add_argument("--baseline-tree", type=Path, help="another checkout to measure beside this one")
    args = parser.parse_args()
    py = sys.executable
    trees: dict[str, dict[str, str]] = {"this_tree": tree_env(None)}
    if args.baseline_tree is not None:
        trees["baseline_tree"] = tree_env(args.baseline_tree.resolve())
    with tempfile.TemporaryDirectory(prefix="scrm-bench-startup-") as tmp:
        cwd = Path(tmp)
        subprocess.run([py, "-m", "scrm", "demo", "--messages", "20"], cwd=cwd, check=True, capture_output=True)
        commands = {
            "python_bare": [py, "-c", "pass"],
            "import_scrm_core": [py, "-c", "import scrm_core"],
            "help": [py, "-m", "scrm", "--help"],
            "status": [py, "-m", "scrm", "status", "-c", "scrm-demo/scrm.toml"],
            "plugins_load": [py, "-c", "from scrm.plugins import PluginHost; PluginHost().load()"],
        }
        for env in trees.values():  # a first run writes the bytecode caches: not timed
            cpu_seconds(commands["status"], cwd, env)
        runs: dict[tuple[str, str], list[float]] = {(t, c): [] for t in trees for c in commands}
        for _ in range(args.repeat):  # interleaved: a burst of load elsewhere falls on every command alike
            for name, argv in commands.items():
                for tree, env in trees.items():
                    runs[tree, name].append(cpu_seconds(argv, cwd, env))
        count = "from scrm.plugins import PluginHost; print(len(PluginHost().load().plugins))"
        plugins = {
            tree: int(subprocess.run([py, "-c", count], cwd=cwd, env=env, capture_output=True, text=True).stdout)
            for tree, env in trees.items()
        }
    report: dict[str, object] = {"bench": "startup", "repeat": args.repeat, "plugins_loaded": plugins}
    for tree in trees:
        results = {name: summary(runs[tree, name]) for name in commands}
        bare = results["python_bare"]["min_cpu_s"] or 1e-9
        report[tree] = {
            "commands": results,
            "min_x_bare_interpreter": {k: round(v["min_cpu_s"] / bare, 1) for k, v in results.items()},
        }
    if "baseline_tree" in trees:
        report["min_cpu_baseline_over_this"] = {
            name: round(min(runs["baseline_tree", name]) / (min(runs["this_tree", name]) or 1e-9), 2)
            for name in commands
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
