"""The embedded CRM's tables, the fields each one knows, and its schema migrations.

Every CRM table has the same frame: an INTEGER ``id`` (the CRM id scrm stores), a UNIQUE
``external_key`` (the upsert key), typed columns named after the engine's field names,
``<ref>_id`` columns resolved from ``refs``, an ``extra`` JSON object for field names the
table does not know (third-party mappings keep what they add), and ``crm_created_at`` /
``crm_updated_at`` of the row itself. The row's times are prefixed because a message has
its own ``created_at`` (when it was posted on the network).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from enum import Enum

from scrm_core import CrmObject

__all__ = [
    "CURRENT_VERSION",
    "LABEL_CORRECTIONS",
    "OUTBOUND_REPLIES",
    "SPECS",
    "SPECS_BY_TABLE",
    "Kind",
    "SchemaTooNewError",
    "TableSpec",
    "migrate",
    "read_version",
]


class Kind(Enum):
    """How a field is checked and stored."""

    text = "text"
    time = "time"  # ISO-8601 text; datetime objects are accepted and converted
    int = "int"
    real = "real"
    bool = "bool"  # INTEGER 0/1
    json = "json"  # lists (labels) as JSON text


@dataclass(frozen=True)
class TableSpec:
    """What one CRM object type looks like in the database."""

    obj: CrmObject
    table: str
    columns: dict[str, Kind]  # field name == column name
    refs: dict[str, str] = field(default_factory=dict)  # ref name -> target table; column "<ref>_id"
    required: tuple[str, ...] = ()  # needed to create a record
    max_length: dict[str, int] = field(default_factory=dict)


TXT, TIME, INT, NUM, BOOL, JSON = Kind.text, Kind.time, Kind.int, Kind.real, Kind.bool, Kind.json

SPECS: dict[CrmObject, TableSpec] = {
    CrmObject.contact: TableSpec(CrmObject.contact, "contacts", {"name": TXT, "email": TXT}, required=("name",)),
    CrmObject.profile: TableSpec(
        CrmObject.profile,
        "profiles",
        {
            "network": TXT,
            "account_id": TXT,
            "handle": TXT,
            "display_name": TXT,
            "url": TXT,
            "followers": INT,
            "verified": BOOL,
            "bio": TXT,
        },
        refs={"contact": "contacts"},
        required=("network", "account_id"),
    ),
    CrmObject.case: TableSpec(
        CrmObject.case,
        "cases",
        {"subject": TXT, "status": TXT, "priority": TXT, "network": TXT, "conversation_key": TXT, "labels": JSON},
        refs={"contact": "contacts"},
    ),
    CrmObject.lead: TableSpec(
        CrmObject.lead,
        "leads",
        {"name": TXT, "network": TXT, "status": TXT, "labels": JSON},
        refs={"contact": "contacts"},
    ),
    CrmObject.message: TableSpec(
        CrmObject.message,
        "messages",
        {
            "network": TXT,
            "message_id": TXT,
            "conversation_key": TXT,
            "parent_id": TXT,
            "text": TXT,
            "created_at": TIME,
            "edited_at": TIME,
            "deleted": BOOL,
            "deleted_at": TIME,
            "direction": TXT,
            "visibility": TXT,
            "url": TXT,
            "language": TXT,
            "sentiment_score": NUM,
            "sentiment_label": TXT,
            "labels": JSON,
            "matched_queries": JSON,
        },
        refs={"profile": "profiles", "contact": "contacts", "case": "cases"},
        required=("text", "network", "message_id", "created_at"),
        # Like a real CRM's long-text field limit; longer texts are cut (with scrm's marker).
        max_length={"text": 32_000},
    ),
}
del TXT, TIME, INT, NUM, BOOL, JSON

SPECS_BY_TABLE: dict[str, TableSpec] = {spec.table: spec for spec in SPECS.values()}
OUTBOUND_REPLIES = "outbound_replies"
LABEL_CORRECTIONS = "label_corrections"

# Version 1. Written out (not generated from SPECS) so that a migration is a visible diff;
# a test checks that SPECS and these tables agree.
_V1 = """
CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    external_key TEXT NOT NULL UNIQUE,
    name TEXT,
    email TEXT,
    extra TEXT NOT NULL DEFAULT '{}',
    crm_created_at TEXT NOT NULL,
    crm_updated_at TEXT NOT NULL
);
CREATE TABLE profiles (
    id INTEGER PRIMARY KEY,
    external_key TEXT NOT NULL UNIQUE,
    contact_id INTEGER REFERENCES contacts(id) ON DELETE SET NULL,
    network TEXT,
    account_id TEXT,
    handle TEXT,
    display_name TEXT,
    url TEXT,
    followers INTEGER,
    verified INTEGER DEFAULT 0,
    bio TEXT,
    extra TEXT NOT NULL DEFAULT '{}',
    crm_created_at TEXT NOT NULL,
    crm_updated_at TEXT NOT NULL
);
CREATE INDEX profiles_contact ON profiles(contact_id);
CREATE TABLE cases (
    id INTEGER PRIMARY KEY,
    external_key TEXT NOT NULL UNIQUE,
    contact_id INTEGER REFERENCES contacts(id) ON DELETE SET NULL,
    subject TEXT,
    status TEXT DEFAULT 'open',
    priority TEXT,
    network TEXT,
    conversation_key TEXT,
    labels TEXT DEFAULT '[]',
    extra TEXT NOT NULL DEFAULT '{}',
    crm_created_at TEXT NOT NULL,
    crm_updated_at TEXT NOT NULL
);
CREATE INDEX cases_contact ON cases(contact_id);
CREATE INDEX cases_conversation ON cases(conversation_key);
CREATE TABLE leads (
    id INTEGER PRIMARY KEY,
    external_key TEXT NOT NULL UNIQUE,
    contact_id INTEGER REFERENCES contacts(id) ON DELETE SET NULL,
    name TEXT,
    network TEXT,
    status TEXT DEFAULT 'new',
    labels TEXT DEFAULT '[]',
    extra TEXT NOT NULL DEFAULT '{}',
    crm_created_at TEXT NOT NULL,
    crm_updated_at TEXT NOT NULL
);
CREATE INDEX leads_contact ON leads(contact_id);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    external_key TEXT NOT NULL UNIQUE,
    -- The hot table keeps one index, on external_key. Refs here carry no foreign keys
    -- (which would need an index each to delete a parent without a scan per row), and
    -- there is no conversation index: authors and threads are spread all over, so each
    -- such index dirties pages all over the file on every batch, which cost a third of
    -- the insert rate. erase() clears the refs itself; `show` and `reply` scan.
    profile_id INTEGER,
    contact_id INTEGER,
    case_id INTEGER,
    network TEXT,
    message_id TEXT,
    conversation_key TEXT,
    parent_id TEXT,
    text TEXT,
    created_at TEXT,
    edited_at TEXT,
    deleted INTEGER DEFAULT 0,
    deleted_at TEXT,
    direction TEXT DEFAULT 'inbound',
    visibility TEXT DEFAULT 'public',
    url TEXT,
    language TEXT,
    sentiment_score REAL,
    sentiment_label TEXT,
    labels TEXT DEFAULT '[]',
    matched_queries TEXT DEFAULT '[]',
    extra TEXT NOT NULL DEFAULT '{}',
    crm_created_at TEXT NOT NULL,
    crm_updated_at TEXT NOT NULL
);
-- Replies agents write in the CRM. AUTOINCREMENT: ids never come back after a delete,
-- so a pending_replies cursor (the last id seen) can never skip a new reply.
CREATE TABLE outbound_replies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_key TEXT NOT NULL,
    in_reply_to TEXT NOT NULL,
    text TEXT NOT NULL,
    case_id INTEGER REFERENCES cases(id) ON DELETE SET NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    network_message_id TEXT,
    error TEXT,
    crm_created_at TEXT NOT NULL,
    crm_updated_at TEXT NOT NULL
);
CREATE INDEX outbound_replies_pending ON outbound_replies(status, id);
-- The highest id each table ever gave out: ids are never reused, so a CRM id kept
-- anywhere can never come to name another record after an erase.
CREATE TABLE localcrm_ids (tbl TEXT PRIMARY KEY, last_id INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO localcrm_ids (tbl, last_id) VALUES ('contacts', 0), ('profiles', 0), ('cases', 0), ('leads', 0),
    ('messages', 0);
"""

# Version 2: labels agents corrected (``scrm localcrm label``), read back by the adapter's
# label_corrections() with the last id as cursor (AUTOINCREMENT: ids never come back).
_V2 = """
CREATE TABLE label_corrections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    object TEXT NOT NULL CHECK (object IN ('message', 'case')),
    external_key TEXT NOT NULL,
    label TEXT NOT NULL,
    corrected_by TEXT,
    crm_created_at TEXT NOT NULL
);
CREATE INDEX label_corrections_record ON label_corrections(object, external_key);
"""

MIGRATIONS: dict[int, str] = {1: _V1, 2: _V2}
CURRENT_VERSION = max(MIGRATIONS)


class SchemaTooNewError(Exception):
    """The database was written by a newer scrm-localcrm than the one running."""

    def __init__(self, found: int) -> None:
        super().__init__(
            f"the database has localcrm schema version {found}; this scrm-localcrm knows up to {CURRENT_VERSION}"
        )
        self.found = found


def read_version(conn: sqlite3.Connection) -> int:
    """The schema version of an open database; 0 for an empty one."""
    has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'localcrm_schema'").fetchone()
    if not has_table:
        return 0
    row = conn.execute("SELECT max(version) FROM localcrm_schema").fetchone()
    return int(row[0] or 0)


def _statements(script: str) -> list[str]:
    """Split a script into statements; a ';' inside a comment or string does not split."""
    out: list[str] = []
    buf = ""
    for part in script.split(";"):
        buf += part + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n;"):
                out.append(buf)
            buf = ""
    return out


def migrate(conn: sqlite3.Connection, now: str) -> int:
    """Bring the database up to :data:`CURRENT_VERSION`, each step in its own transaction.

    The connection must be in autocommit mode (``isolation_level=None``).
    """
    version = read_version(conn)
    if version > CURRENT_VERSION:
        raise SchemaTooNewError(version)
    for target in range(version + 1, CURRENT_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated meanwhile.
            if read_version(conn) >= target:
                conn.execute("COMMIT")
                continue
            conn.execute(
                "CREATE TABLE IF NOT EXISTS localcrm_schema (version INTEGER NOT NULL, applied_at TEXT NOT NULL)"
            )
            for statement in _statements(MIGRATIONS[target]):
                conn.execute(statement)
            conn.execute("INSERT INTO localcrm_schema (version, applied_at) VALUES (?, ?)", (target, now))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return CURRENT_VERSION
