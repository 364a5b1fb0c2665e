"""State-store back ends, chosen by the scheme of ``[state] url``.

A back end is a :class:`StoreBackend` registered by a plugin's ``scrm_register_stores``
hook (the runtime's embedded SQLite one too, :mod:`scrm.sqlite`), so a database driver is the
dependency of its back end's distribution, never of the core::

    @hookimpl
    def scrm_register_stores(register):
        register(PostgresBackend())  # schemes = ("postgresql", "postgres")
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from ..errors import FatalError
from .base import StateStore

__all__ = ["StoreBackend", "StoreBackends"]


class StoreBackend(ABC):
    """One kind of state store. It must pass :class:`scrm_core.testing.store.StateStoreConformance`."""

    #: Its name in messages and in ``scrm plugins``.
    name: ClassVar[str]
    #: The URL schemes it opens, lower case, without ``://``.
    schemes: ClassVar[tuple[str, ...]]

    @abstractmethod
    def open(self, url: str, base_dir: Path) -> StateStore:
        """The store at ``url``, not migrated yet; relative paths are relative to ``base_dir``
        (the config file's folder). Errors name the URL's scheme and host, never its password."""

    def local_problems(self, url: str, base_dir: Path) -> tuple[list[str], list[str]]:
        """(problems, warnings) ``scrm config check`` can find without opening the store for
        work (a folder that is not writable, little free space)."""
        return [], []

    def snapshot(self, url: str, base_dir: Path, folder: Path) -> str:
        """The URL of a private copy of the store, made in ``folder`` (``scrm run --dry-run``
        runs against it and throws it away)."""
        raise FatalError(f"the {self.name} state store cannot make a private copy, so --dry-run cannot run on it")


class StoreBackends:
    """The registered back ends, by URL scheme."""

    def __init__(self) -> None:
        self._by_scheme: dict[str, StoreBackend] = {}

    def register(self, backend: StoreBackend) -> None:
        if not isinstance(backend, StoreBackend):
            raise TypeError(f"{backend!r} is not a StoreBackend")
        schemes = getattr(backend, "schemes", ())
        if not schemes:
            raise TypeError(f"{type(backend).__name__} has no 'schemes'")
        for scheme in schemes:
            known = self._by_scheme.get(scheme.lower())
            if known is not None and type(known) is not type(backend):
                raise ValueError(f"state URL scheme {scheme!r} is already taken by {type(known).__module__}")
        for scheme in schemes:
            self._by_scheme[scheme.lower()] = backend

    @property
    def schemes(self) -> list[str]:
        return sorted(self._by_scheme)

    def backend(self, url: str) -> StoreBackend:
        """The back end for ``url``; a :class:`~scrm_core.FatalError` naming only the scheme
        (a database URL may carry a password) when none is installed for it."""
        scheme, sep, _ = url.partition("://")
        found = self._by_scheme.get(scheme.lower()) if sep else None
        if found is None:
            shown = scheme + "://" if sep else "(none)"
            installed = ", ".join(f"{s}://" for s in self.schemes) or "none"
            raise FatalError(
                f"state store URL scheme {shown!r} is not supported by any installed back end (installed: "
                f"{installed}). Use sqlite:///path/to/scrm.db, or install the distribution that provides the "
                "back end (PostgreSQL: scrm-postgres) and check `scrm plugins`"
            )
        return found

    def open(self, url: str, base_dir: Path) -> StateStore:
        return self.backend(url).open(url, base_dir)
