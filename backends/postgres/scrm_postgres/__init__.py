"""scrm's state store on PostgreSQL: ``[state] url = "postgresql://user@host/db"``.

:class:`PostgresStore` implements every part of :class:`scrm_core.store.StateStore` (one
module per concern, as the SQLite store) and passes the same conformance suite,
:class:`scrm_core.testing.store.StateStoreConformance`. :class:`PostgresBackend` registers
it for ``postgresql://`` and ``postgres://`` URLs through ``scrm_register_stores``; the
driver (psycopg 3) is this distribution's dependency, never the core's.

Why psycopg 3 rather than asyncpg: the store interface is synchronous and runs on its own
thread (:class:`scrm_core.store.AsyncStore`), which psycopg serves natively; its pipeline
mode sends a page's writes in one round trip; it binds Python lists to PostgreSQL arrays,
so a page's rows go in as one ``unnest`` statement per table; and it is the driver the
PostgreSQL project's documentation and most libraries use. asyncpg would need an event
loop inside the store's thread for no gain.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrm_core import hookimpl
from scrm_core.store import StateStore, StoreBackend

from .urls import safe_url

if TYPE_CHECKING:
    from .store import PostgresStore

__all__ = ["PostgresBackend", "PostgresStore", "safe_url"]


def __getattr__(name: str) -> Any:
    # psycopg and the store's modules load when a PostgreSQL state is opened, not with the plugin.
    if name == "PostgresStore":
        from .store import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class PostgresBackend(StoreBackend):
    """``postgresql://user[:password]@host[:port]/database[?options]`` (libpq's URL)."""

    name = "postgresql"
    schemes = ("postgresql", "postgres")

    def open(self, url: str, base_dir: Path) -> StateStore:
        from .store import PostgresStore

        return PostgresStore(url)

    def local_problems(self, url: str, base_dir: Path) -> tuple[list[str], list[str]]:
        parts = urlsplit(url)
        if not parts.path.strip("/"):
            return [f"state store URL {safe_url(url)} names no database (postgresql://user@host/DATABASE)"], []
        warnings = []
        if parts.password:
            warnings.append(
                "the state store URL holds a password: keep it out of the config file (libpq reads PGPASSWORD "
                "or ~/.pgpass)"
            )
        return [], warnings


@hookimpl
def scrm_register_stores(register: Callable[[StoreBackend], None]) -> None:
    register(PostgresBackend())


@hookimpl
def scrm_register_commands(cli: Any) -> None:
    # Imported here: typer and rich are only needed when the command line runs.
    from .cli import build_app

    cli.add_typer(build_app(), name="state")
