"""The SQLite store's schema: its migrations, applied in order by
:meth:`SqliteStore.migrate <scrm.sqlite.SqliteStore.migrate>`."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

__all__ = ["MIGRATIONS", "statements"]

# Schema migrations, in order: MIGRATIONS[i] takes the schema from version i to i + 1.
# Never edit one that has shipped; append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE checkpoints (
        source TEXT PRIMARY KEY,
        cursor TEXT,
        updated_at TEXT NOT NULL,
        events INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE seen_events (key TEXT PRIMARY KEY) WITHOUT ROWID;
    CREATE TABLE profiles (
        key TEXT PRIMARY KEY,
        person_key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX profiles_person_key ON profiles (person_key);
    -- started_by is copied out of the JSON so erase can find a person's threads by index.
    CREATE TABLE conversations (
        key TEXT PRIMARY KEY,
        started_by TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX conversations_started_by ON conversations (started_by);
    -- No foreign key to conversations: an edit or deletion can index a message whose
    -- thread the store never saw, and erase removes threads but not others' replies.
    -- No index on author_key: it would cost ~20% of commit_page on the hot path, for
    -- erase_person alone, which is rare and can afford a scan.
    CREATE TABLE messages (
        key TEXT PRIMARY KEY,
        conversation_key TEXT NOT NULL,
        author_key TEXT NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        in_crm INTEGER NOT NULL DEFAULT 1
    ) WITHOUT ROWID;
    -- AUTOINCREMENT: seqs are never reused, even after the outbox empties, so a sink's
    -- "after_seq" watermark can never skip a new row.
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        object TEXT NOT NULL,
        external_key TEXT NOT NULL,
        fields TEXT NOT NULL,
        refs TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE TABLE crm_ids (
        object TEXT NOT NULL,
        external_key TEXT NOT NULL,
        crm_id TEXT NOT NULL,
        PRIMARY KEY (object, external_key)
    ) WITHOUT ROWID;
    CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT NOT NULL,
        reason TEXT NOT NULL,
        locator TEXT NOT NULL DEFAULT '',
        op TEXT,
        payload TEXT NOT NULL DEFAULT '',
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL
    );
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        action TEXT NOT NULL,
        subject TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE identity_links (
        id INTEGER PRIMARY KEY,
        profile_key TEXT NOT NULL REFERENCES profiles (key) ON DELETE CASCADE,
        person_key TEXT NOT NULL,
        evidence TEXT NOT NULL,
        verified INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        undone_at TEXT
    );
    CREATE INDEX identity_links_profile_key ON identity_links (profile_key);
    CREATE INDEX identity_links_person_key ON identity_links (person_key);
    """,
    # 2: identity links become suggestions an operator accepts or rejects, and remember
    # the person they replaced so an undo restores it.
    """
    ALTER TABLE identity_links ADD COLUMN status TEXT NOT NULL DEFAULT 'linked';
    ALTER TABLE identity_links ADD COLUMN previous_person_key TEXT;
    """,
    # 3: webhook payloads kept before the receiver answers 2xx, and the replies going out.
    """
    CREATE TABLE webhook_inbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT NOT NULL,
        digest TEXT NOT NULL,
        headers TEXT NOT NULL,
        body BLOB NOT NULL,
        received_at TEXT NOT NULL,
        UNIQUE (source, digest)
    );
    CREATE INDEX webhook_inbox_source ON webhook_inbox (source, id);
    CREATE TABLE replies (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        idempotency_key TEXT NOT NULL UNIQUE,
        origin TEXT NOT NULL,
        crm_id TEXT,
        conversation_key TEXT NOT NULL,
        in_reply_to TEXT NOT NULL,
        text TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'held', 'sending', 'sent', 'refused', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        approved INTEGER NOT NULL DEFAULT 0,
        claimed_at TEXT,
        network_message_id TEXT,
        error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX replies_status ON replies (status, id);
    """,
    # 4: agents' label corrections kept as labelled examples, and the models trained on them.
    """
    CREATE TABLE label_examples (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        message_key TEXT NOT NULL,
        namespace TEXT NOT NULL,
        label TEXT NOT NULL,
        text TEXT NOT NULL,
        language TEXT,
        source TEXT NOT NULL,
        crm_id TEXT,
        corrected_at TEXT,
        stored_at TEXT NOT NULL,
        UNIQUE (message_key, namespace)
    );
    CREATE TABLE classifier_models (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        data BLOB NOT NULL,
        report TEXT NOT NULL,
        trained_until INTEGER NOT NULL,
        active INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL
    );
    CREATE INDEX classifier_models_name ON classifier_models (name, active, id);
    """,
    # 5: the dead-letter queue says whether a retry can work (the CRM's code, the fix);
    # references left out because their target was refused wait in pending_links; each
    # adapter has a small durable key-value area; a message remembers its version so an
    # older edit delivered late is not applied over a newer one.
    """
    ALTER TABLE dead_letters ADD COLUMN code TEXT;
    ALTER TABLE dead_letters ADD COLUMN retryable INTEGER;
    ALTER TABLE dead_letters ADD COLUMN fix TEXT NOT NULL DEFAULT '';
    CREATE TABLE pending_links (
        child_object TEXT NOT NULL,
        child_key TEXT NOT NULL,
        ref TEXT NOT NULL,
        parent_object TEXT NOT NULL,
        parent_key TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (child_object, child_key, ref)
    );
    CREATE INDEX pending_links_parent ON pending_links (parent_object, parent_key);
    CREATE TABLE adapter_state (
        adapter TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (adapter, key)
    ) WITHOUT ROWID;
    ALTER TABLE messages ADD COLUMN version TEXT;
    """,
    # 6: a message's creation is remembered in its index row (``created``) instead of a
    # seen-event key ``c:<message key>`` beside it: one row per new message where there
    # were two, in a seen_events table that keeps only edits, deletions, profile updates
    # and the creations that have no index row (failed, erased). Keys already stored move.
    """
    ALTER TABLE messages ADD COLUMN created INTEGER NOT NULL DEFAULT 0;
    UPDATE messages SET created = 1
        WHERE EXISTS (SELECT 1 FROM seen_events AS s WHERE s.key = 'c:' || messages.key);
    DELETE FROM seen_events WHERE key IN (SELECT 'c:' || key FROM messages WHERE created = 1);
    """,
    # 7: the outbox settles by sequence range. The sink settles one object type's batch at a
    # time, so the seqs of a flush are scattered (~1.2 per run): deleting them row by row
    # rewrote every page of the outbox once per batch. Settled seqs are noted here (small
    # rows, appended); their rows leave the outbox together, in seq order: with the settled
    # prefix, or all at once when enough of them wait (sqlite/outbox.py).
    """
    CREATE TABLE outbox_done (seq INTEGER PRIMARY KEY);
    """,
]


def statements(script: str) -> Iterator[str]:
    """Split a migration script into statements (``execute`` runs one at a time, and
    ``executescript`` would commit the migration's transaction early)."""
    stmt = ""
    for part in script.split(";"):
        stmt += part + ";"
        if sqlite3.complete_statement(stmt):  # False while inside a string or a trigger body
            if stmt.strip(" \t\n;"):
                yield stmt
            stmt = ""
