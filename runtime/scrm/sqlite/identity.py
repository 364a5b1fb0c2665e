"""Identity links on SQLite: which person each profile belongs to, on what evidence."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from scrm_core.models import CrmObject, CrmOperation, external_key
from scrm_core.store.base import IdentityStore
from scrm_core.store.records import AuditEntry, IdentityLink, LinkStatus, PersonView, ProfileRecord

from .db import SqliteBase, decode, now, validate_conversation, validate_profile

__all__ = ["SqliteIdentity"]


class SqliteIdentity(SqliteBase, IdentityStore):
    def profiles_page(self, after: str = "", limit: int = 1000) -> list[ProfileRecord]:
        rows = self._conn.execute(
            "SELECT key, person_key, fingerprint, data FROM profiles WHERE key > ? ORDER BY key LIMIT ?",
            (after, limit),
        )
        return [ProfileRecord(decode("profiles", key, validate_profile, data), pk, fp) for key, pk, fp, data in rows]

    def _links(self, where: str, args: Sequence[Any]) -> list[IdentityLink]:
        rows = self._conn.execute(
            "SELECT id, profile_key, person_key, evidence, verified, status, created_at, previous_person_key, "
            f"undone_at FROM identity_links {where} ORDER BY id",
            args,
        )
        return [
            IdentityLink(
                id_,
                profile,
                person,
                evidence,
                bool(verified),
                LinkStatus(status),
                datetime.fromisoformat(created),
                previous,
                datetime.fromisoformat(undone) if undone else None,
            )
            for id_, profile, person, evidence, verified, status, created, previous, undone in rows
        ]

    def identity_link(self, link_id: int) -> IdentityLink:
        found = self._links("WHERE id = ?", (link_id,))
        if not found:
            raise KeyError(f"no identity link #{link_id}")
        return found[0]

    def identity_links(self, status: LinkStatus | None = None) -> list[IdentityLink]:
        return self._links("WHERE status = ?", (status.value,)) if status else self._links("", ())

    def suggest_link(self, profile_key: str, person_key: str, evidence: str, verified: bool) -> IdentityLink | None:
        with self._tx() as c:
            known = c.execute(
                "SELECT 1 FROM identity_links WHERE profile_key = ? AND person_key = ? AND status != 'undone'",
                (profile_key, person_key),
            ).fetchone()
            current = c.execute("SELECT person_key FROM profiles WHERE key = ?", (profile_key,)).fetchone()
            if known or current is None or current[0] == person_key:
                return None
            cur = c.execute(
                "INSERT INTO identity_links (profile_key, person_key, evidence, verified, created_at, status) "
                "VALUES (?, ?, ?, ?, ?, 'suggested')",
                (profile_key, person_key, evidence, int(verified), now()),
            )
            link_id = cur.lastrowid
        assert link_id is not None
        return self.identity_link(link_id)

    def link_identity(
        self, profile_key: str, person_key: str, evidence: str, verified: bool, ops: Sequence[CrmOperation]
    ) -> IdentityLink:
        at = now()
        with self._tx() as c:
            row = c.execute("SELECT person_key FROM profiles WHERE key = ?", (profile_key,)).fetchone()
            if row is None:
                raise KeyError(f"no profile {profile_key!r} in the state store")
            previous = row[0]
            open_ = c.execute(
                "SELECT id FROM identity_links WHERE profile_key = ? AND person_key = ? AND status = 'suggested'",
                (profile_key, person_key),
            ).fetchone()
            if open_:
                link_id = open_[0]
                c.execute(
                    "UPDATE identity_links SET status = 'linked', previous_person_key = ?, evidence = ?, "
                    "verified = ? WHERE id = ?",
                    (previous, evidence, int(verified), link_id),
                )
            else:
                link_id = c.execute(
                    "INSERT INTO identity_links (profile_key, person_key, evidence, verified, created_at, status, "
                    "previous_person_key) VALUES (?, ?, ?, ?, ?, 'linked', ?)",
                    (profile_key, person_key, evidence, int(verified), at, previous),
                ).lastrowid
            c.execute("UPDATE profiles SET person_key = ? WHERE key = ?", (person_key, profile_key))
            self._queue(ops, at)
            detail = f"link #{link_id}: {previous} -> {person_key}; evidence: {evidence}"
            self._insert_audit([AuditEntry("identity.linked", profile_key, detail)], at)
        assert link_id is not None
        return self.identity_link(link_id)

    def reject_suggestion(self, link_id: int) -> IdentityLink:
        with self._tx() as c:
            link = self.identity_link(link_id)
            if link.status is not LinkStatus.suggested:
                raise ValueError(f"link #{link_id} is {link.status.value}, not a suggestion")
            c.execute("UPDATE identity_links SET status = 'rejected' WHERE id = ?", (link_id,))
            self._insert_audit([AuditEntry("identity.rejected", link.profile_key, f"link #{link_id}")], now())
        return self.identity_link(link_id)

    def undo_link(self, link_id: int, ops: Sequence[CrmOperation]) -> IdentityLink:
        at = now()
        with self._tx() as c:
            link = self.identity_link(link_id)
            if link.status is not LinkStatus.linked or link.previous_person_key is None:
                raise ValueError(f"link #{link_id} is {link.status.value}: there is nothing to undo")
            row = c.execute("SELECT person_key FROM profiles WHERE key = ?", (link.profile_key,)).fetchone()
            if row is None or row[0] != link.person_key:
                raise ValueError(
                    f"profile {link.profile_key} has been linked elsewhere since link #{link_id}: undo that link first"
                )
            c.execute("UPDATE profiles SET person_key = ? WHERE key = ?", (link.previous_person_key, link.profile_key))
            c.execute("UPDATE identity_links SET status = 'undone', undone_at = ? WHERE id = ?", (at, link_id))
            self._queue(ops, at)
            detail = f"link #{link_id} undone: {link.person_key} -> {link.previous_person_key}"
            self._insert_audit([AuditEntry("identity.unlinked", link.profile_key, detail)], at)
        return self.identity_link(link_id)

    def person(self, person_key: str) -> PersonView:
        profiles = [
            ProfileRecord(decode("profiles", key, validate_profile, data), pk, fp)
            for key, pk, fp, data in self._conn.execute(
                "SELECT key, person_key, fingerprint, data FROM profiles WHERE person_key = ? ORDER BY key",
                (person_key,),
            )
        ]
        keys = [p.profile.key for p in profiles]
        # In key order on both back ends (a table's own order changes as rows are rewritten).
        conversations = sorted(
            (
                decode("conversations", key, validate_conversation, data)
                for key, data in self._select_in(
                    "SELECT key, data FROM conversations WHERE started_by IN ({marks})", keys
                )
            ),
            key=lambda cv: cv.key,
        )
        messages = sum(
            n for (n,) in self._select_in("SELECT COUNT(*) FROM messages WHERE author_key IN ({marks})", keys)
        )
        links = self._links(
            "WHERE person_key = ? OR profile_key IN (SELECT key FROM profiles WHERE person_key = ?)",
            (person_key, person_key),
        )
        profile_keys = [external_key(k) for k in keys]
        wanted = {
            CrmObject.contact: [external_key(person_key)],
            CrmObject.profile: profile_keys,
            CrmObject.lead: profile_keys,
            CrmObject.case: [external_key(cv.key) for cv in conversations],
        }
        ids = {
            f"{obj.value}:{key}": crm_id
            for obj, obj_keys in wanted.items()
            for key, crm_id in self._crm_ids(obj, obj_keys).items()
        }
        return PersonView(person_key, profiles, conversations, messages, links, ids)
