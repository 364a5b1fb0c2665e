"""A real PostgreSQL server for tests: Debian's ``postgresql`` package, started in a temporary
folder on 127.0.0.1 on a free port, and removed afterwards. Never a mock.

    with PostgresServer.start(folder) as server:
        url = server.create_database("t1")   # postgresql://scrm@127.0.0.1:PORT/t1

``initdb`` refuses to run as root: when the tests run as root, the cluster is created and
run as the ``postgres`` user (``runuser``), in a folder that user owns. The server runs
with ``fsync = off``: a test cluster is thrown away, and durability is not what tests time.

:func:`find_postgres` says where the binaries are, or why there are none (the tests skip
with that reason outside CI, and fail in CI, where ``SCRM_REQUIRE_POSTGRES=1``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PostgresServer", "find_postgres", "require_postgres"]

#: What CI sets: a missing PostgreSQL is then a failure, not a skip.
REQUIRE_ENV = "SCRM_REQUIRE_POSTGRES"
_USER = "scrm"
_START_SECONDS = 60.0


def find_postgres() -> tuple[Path | None, str]:
    """(the folder of ``initdb`` and ``postgres``, "") or (None, why not)."""
    if explicit := os.environ.get("SCRM_POSTGRES_BIN"):
        candidates = [explicit]
    else:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
        if found := shutil.which("initdb"):
            candidates.append(str(Path(found).parent))
    for folder in candidates:
        if (Path(folder) / "initdb").exists() and (Path(folder) / "postgres").exists():
            return Path(folder), ""
    return None, "PostgreSQL is not installed (apt-get install postgresql); the PostgreSQL tests need it"


def _version(path: str) -> int:
    part = Path(path).parent.name
    return int(part) if part.isdigit() else 0


def require_postgres() -> Path:
    """The binaries' folder; skips the test (fails it in CI) when PostgreSQL is missing."""
    import pytest

    folder, why = find_postgres()
    if folder is None:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{why} ({REQUIRE_ENV} is set)")
        pytest.skip(why)
    return folder


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_postgres() -> dict[str, Any]:
    """Popen arguments that run a program as the ``postgres`` user when we are root."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


@dataclass
class PostgresServer:
    """One running test cluster (see the module docstring)."""

    folder: Path
    port: int
    bin: Path
    process: subprocess.Popen[bytes] | None = None
    databases: list[str] = field(default_factory=list)

    @property
    def dsn(self) -> str:
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/{database}"

    @classmethod
    @contextlib.contextmanager
    def start(cls, folder: Path | None = None, bin_folder: Path | None = None) -> Iterator[PostgresServer]:
        """A server in ``folder`` (default: a new folder under the system's temporary folder,
        which the ``postgres`` user can reach: pytest's own are private to root)."""
        if folder is None:
            folder = Path(tempfile.mkdtemp(prefix="scrm-pg-"))
        if bin_folder is None:
            bin_folder, why = find_postgres()
            if bin_folder is None:
                raise RuntimeError(why)
        server = cls(folder, _free_port(), bin_folder)
        server._launch()
        try:
            yield server
        finally:
            server.stop()

    def _launch(self) -> None:
        data = self.folder / "data"
        self.folder.mkdir(parents=True, exist_ok=True)
        as_postgres = _as_postgres()
        if as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        subprocess.run(
            [str(self.bin / "initdb"), "-D", str(data), "-U", _USER, "-A", "trust", "-E", "UTF8",
             "--no-locale", "--no-sync"],
            check=True, capture_output=True, timeout=120, **as_postgres,
        )  # fmt: skip
        log = self.folder / "postgres.log"
        with open(log, "wb") as out:
            if as_postgres:
                shutil.chown(log, "postgres", "postgres")
            self.process = subprocess.Popen(
                [str(self.bin / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(self.port),
                 "-k", str(self.folder), "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=200", "-c", "shared_buffers=64MB"],
                stdout=out, stderr=subprocess.STDOUT, **as_postgres,
            )  # fmt: skip
        deadline = time.monotonic() + _START_SECONDS
        while not self._accepts():
            if self.process.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited with {self.process.returncode}: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start within {_START_SECONDS:.0f} s: {log}")
            time.sleep(0.05)  # polling interval, not a wait for an outcome

    def _accepts(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.dsn, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def create_database(self, name: str) -> str:
        """A new, empty database (its URL); dropped when the server stops."""
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        process.send_signal(signal.SIGINT)  # "fast" shutdown: clients are cut off
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
