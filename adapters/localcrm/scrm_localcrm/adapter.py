"""``LocalCrm``: the embedded CRM, a SQLite file that behaves like a small real CRM.

All database work runs in ONE worker thread owned by the adapter (the connection is
created there and never leaves it), so the event loop never blocks on SQLite and no
connection is ever shared between threads.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

from pydantic import Field

from scrm_core import (
    AdapterContext,
    AdapterSettings,
    CheckProblem,
    CrmAdapter,
    CrmCapability,
    CrmLimits,
    CrmObject,
    CrmOperation,
    LabelCorrection,
    OperationResult,
    PendingReply,
)
from scrm_core.errors import FatalError

from . import db
from .schema import CURRENT_VERSION, SchemaTooNewError, migrate, read_version
from .writer import Writer

__all__ = ["LocalCrm", "check_database"]

T = TypeVar("T")

#: Replies handed to the engine per pending_replies() call; the cursor fetches the rest.
REPLY_PAGE = 1000


class LocalCrmSettings(AdapterSettings):
    path: str = Field(
        default="crm.db",
        description="The SQLite file, relative to the config file's folder. Created on first start.",
    )


class LocalCrm(CrmAdapter):
    """The embedded CRM: contacts, social profiles, cases, leads, messages and outbound replies."""

    name = "localcrm"
    Settings = LocalCrmSettings
    capabilities = frozenset(
        {
            CrmCapability.contacts,
            CrmCapability.personas,
            CrmCapability.cases,
            CrmCapability.leads,
            CrmCapability.messages,
            CrmCapability.outbound_replies,
            CrmCapability.erase,
            CrmCapability.bulk,
            CrmCapability.label_corrections,
            CrmCapability.ids_follow_keys,  # every write finds its row by external key
        }
    )
    limits = CrmLimits(max_batch=500)

    def __init__(self, settings: AdapterSettings, context: AdapterContext) -> None:
        if not isinstance(settings, LocalCrmSettings):
            raise TypeError(f"LocalCrm needs LocalCrm.Settings, got {type(settings).__name__}")
        super().__init__(settings, context)
        self.path: Path = context.resolve_path(settings.path)
        self._executor: ThreadPoolExecutor | None = None
        self._writer: Writer | None = None

    # ------------------------------------------------------------ lifecycle

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._executor is None:
            raise RuntimeError("LocalCrm is not started; await adapter.start() first")
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(fn, *args))

    def _open(self) -> Writer:
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise FatalError(
                f"cannot create the localcrm folder {folder}: {e.strerror}; run: {_mkdir_fix(folder)}",
                detail=repr(e),
            ) from e
        conn: sqlite3.Connection | None = None
        try:
            conn = db.connect(self.path, create=True)
            migrate(conn, db.utc_now())
            return Writer(conn, self.limits)
        except BaseException as e:
            if conn is not None:
                conn.close()
            if isinstance(e, SchemaTooNewError):
                raise FatalError(f"{self.path}: {e}; upgrade it with: pip install -U scrm-localcrm") from e
            if isinstance(e, sqlite3.OperationalError):  # permissions, a locked or missing file...
                raise FatalError(f"cannot open the localcrm database {self.path}: {e}", detail=repr(e)) from e
            if isinstance(e, sqlite3.DatabaseError):  # SQLITE_NOTADB and the like
                raise FatalError(
                    f"{self.path} is not a localcrm database ({e}); set [crm.settings] path to another file",
                    detail=repr(e),
                ) from e
            raise

    async def start(self) -> None:
        if self._writer is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"localcrm-{self.context.name}")
        try:
            self._writer = await self._run(self._open)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    async def close(self) -> None:
        if self._executor is None:
            return
        if self._writer is not None:
            await self._run(self._writer.close)
            self._writer = None
        self._executor.shutdown(wait=True)
        self._executor = None

    def _started(self) -> Writer:
        if self._writer is None:
            raise RuntimeError("LocalCrm is not started; await adapter.start() first")
        return self._writer

    # ------------------------------------------------------------ the CRM contract

    async def apply(self, ops: Sequence[CrmOperation]) -> list[OperationResult]:
        """Upsert one batch (one object type, <= 500 records) in one transaction.

        Raises ``ValueError`` when the batch breaks the contract (mixed types, too many
        records, an external key twice): that is a bug in the caller, not a bad record.
        """
        return await self._run(self._started().apply, list(ops))

    async def erase(self, records: Mapping[CrmObject, Sequence[str]]) -> int:
        return await self._run(self._started().erase, dict(records))

    async def pending_replies(self, cursor: str | None) -> tuple[list[PendingReply], str | None]:
        """Pending rows of ``outbound_replies`` with an id above the cursor (the last id seen)."""
        try:
            after = int(cursor) if cursor else 0
        except ValueError:
            raise ValueError(f"not a localcrm reply cursor: {cursor!r}") from None
        rows = await self._run(self._started().pending_replies, after, REPLY_PAGE)
        replies = [
            PendingReply(crm_id=str(rid), conversation_key=conv, in_reply_to=parent, text=text)
            for rid, conv, parent, text in rows
        ]
        return replies, (str(rows[-1][0]) if rows else cursor)

    async def label_corrections(self, cursor: str | None) -> tuple[list[LabelCorrection], str | None]:
        """Rows of ``label_corrections`` (written by ``scrm localcrm label``) with an id above the cursor."""
        try:
            after = int(cursor) if cursor else 0
        except ValueError:
            raise ValueError(f"not a localcrm label-correction cursor: {cursor!r}") from None
        rows = await self._run(self._started().label_corrections, after, REPLY_PAGE)
        corrections = [
            LabelCorrection(
                crm_id=record,
                message_key=message_key,
                label=label,
                text=text,
                language=language,
                corrected_at=datetime.fromisoformat(at),
            )
            for _, message_key, label, text, at, language, record in rows
        ]
        return corrections, (str(rows[-1][0]) if rows else cursor)

    async def reply_sent(self, reply: PendingReply, external_key: str, network_message_id: str) -> None:
        """Mark the ``outbound_replies`` row sent, with the network's id of the posted message.

        Idempotent (a second call writes the same values). The replies table is not the
        messages table: the sync-back that follows lands in ``messages`` as an outbound
        message under ``external_key``, beside this row, as any message scrm sends does.
        A row deleted meanwhile is only logged: the message still comes back to ``messages``.
        """
        writer = self._started()
        try:
            reply_id = int(reply.crm_id)
        except ValueError:
            raise ValueError(f"not a localcrm reply id: {reply.crm_id!r}") from None
        try:
            await self._run(partial(db.mark_reply_sent, writer.conn, reply_id, network_message_id=network_message_id))
        except LookupError:
            self.context.logger.warning(
                "localcrm: reply %s was sent as %s but its outbound_replies row is gone", reply_id, network_message_id
            )

    async def counts(self) -> dict[str, int]:
        """Rows per object table (contacts, profiles, cases, leads, messages)."""
        return await self._run(self._started().counts)

    def local_problems(self) -> list[str]:
        return [f"path: {p.problem}; fix: {p.fix}" for p in check_database(self.path)]

    async def check(self) -> list[CheckProblem]:
        if self._executor is not None:
            return await self._run(check_database, self.path)
        return await asyncio.to_thread(check_database, self.path)


# ---------------------------------------------------------------- check


def _mkdir_fix(folder: Path) -> str:
    q = shlex.quote(str(folder))
    return f'sudo mkdir -p {q} && sudo chown "$(id -un)" {q}'


def check_database(path: Path) -> list[CheckProblem]:
    """What would stop the adapter from starting, each with the exact command that fixes it."""
    problems: list[CheckProblem] = []
    folder = path.parent
    q = shlex.quote
    if folder.exists():
        if not folder.is_dir():
            problems.append(
                CheckProblem(
                    problem=f"{folder} is a file, but the localcrm database {path.name} must go inside a folder there",
                    fix=f"set [crm.settings] path to a file in another folder, or move it away: mv {q(str(folder))} "
                    f"{q(str(folder) + '.bak')}",
                )
            )
            return problems
        if not os.access(folder, os.W_OK | os.X_OK):
            # SQLite writes its -wal and -shm files beside the database, so the folder must be writable.
            problems.append(
                CheckProblem(
                    problem=f"the localcrm folder {folder} is not writable", fix=f"chmod u+wx {q(str(folder))}"
                )
            )
    else:
        ancestor = next(p for p in folder.parents if p.exists())
        if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
            problems.append(
                CheckProblem(
                    problem=f"the localcrm folder {folder} does not exist and cannot be created",
                    fix=_mkdir_fix(folder),
                )
            )
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            problems.append(
                CheckProblem(problem=f"the localcrm database {path} is not writable", fix=f"chmod u+rw {q(str(path))}")
            )
            return problems
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                version = read_version(conn)
            finally:
                conn.close()
        except sqlite3.DatabaseError as e:
            problems.append(
                CheckProblem(
                    problem=f"{path} is not a localcrm database ({e})",
                    fix=f"set [crm.settings] path to another file, or move it away: mv {q(str(path))} "
                    f"{q(str(path) + '.bak')}",
                )
            )
            return problems
        if version > CURRENT_VERSION:
            problems.append(
                CheckProblem(
                    problem=f"{path} has localcrm schema version {version}, newer than this scrm-localcrm "
                    f"(knows up to {CURRENT_VERSION})",
                    fix="pip install -U scrm-localcrm",
                )
            )
    return problems
