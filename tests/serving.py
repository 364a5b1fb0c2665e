"""Helpers for tests that run the real ``scrm`` command in a subprocess and look at its state."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

SCRM = str(Path(sys.executable).parent / "scrm")
ROOT = Path(__file__).resolve().parent.parent


def wait_until(condition: Callable[[], Any], *, timeout: float = 60.0, what: str = "the condition") -> Any:
    """Poll ``condition`` until it returns something truthy (no fixed sleep: a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows from an SQLite file, read in a separate connection (WAL lets it read while scrm writes)."""
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        con.close()


def scrm(*args: str, cwd: Path, env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRM, *args], cwd=cwd, env=env or dict(os.environ), capture_output=True, text=True, timeout=300, **kwargs
    )


@dataclass
class Served:
    """A running ``scrm serve``; its output goes to ``log`` (read it with :meth:`output`)."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 60.0) -> int:
        if self.alive():
            self.proc.terminate()
        return self.proc.wait(timeout=timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_serve(
    config: Path,
    *,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> Served:
    """``scrm serve -c config`` on a free port, once ``/health`` answers."""
    port = free_port()
    log = config.parent / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [SCRM, "serve", "-c", str(config), "--port", str(port), *args],
            cwd=config.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env or dict(os.environ),
            preexec_fn=preexec_fn,
        )
    served = Served(proc, f"http://127.0.0.1:{port}", log)

    def up() -> bool:
        if not served.alive():
            raise AssertionError(f"scrm serve exited with {proc.returncode}:\n{served.output()}")
        try:
            return httpx.get(f"{served.url}/health", timeout=5).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    wait_until(up, timeout=120, what="scrm serve to answer /health")
    return served


def install_plugin(site: Path, entry: str, module: str) -> dict[str, str]:
    """Make ``module`` (a module of this repository, e.g. ``tests.canary_plugin``) an installed
    plugin named ``entry`` for subprocesses: the environment to run them with."""
    site.mkdir(exist_ok=True)
    name = f"scrm_{entry}_plugin"
    (site / f"{name}.py").write_text(f"from {module} import *  # noqa: F403\n")
    info = site / f"{name}-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text(f"[scrm]\n{entry} = {name}\n")
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(site), str(ROOT), path) if p)}
