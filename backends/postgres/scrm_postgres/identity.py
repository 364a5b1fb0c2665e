"""Identity links on PostgreSQL: which person each profile belongs to, on what evidence."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scrm_core.models import CrmObject, CrmOperation, external_key
from scrm_core.store import AuditEntry, IdentityLink, LinkStatus, PersonView, ProfileRecord
from scrm_core.store.base import IdentityStore

from .db import PgBase, decode, esc, unesc, utcnow, validate_conversation, validate_profile

__all__ = ["PgIdentity"]

_LINK_COLUMNS = "id, profile_key, person_key, evidence, verified, status, created_at, previous_person_key, undone_at"


class PgIdentity(PgBase, IdentityStore):
    def profiles_page(self, after: str = "", limit: int = 1000) -> list[ProfileRecord]:
        # "C" collation: byte order, so pages follow the order SQLite's keys have.
        rows = self._rows(
            'SELECT key, person_key, fingerprint, data FROM profiles WHERE key COLLATE "C" > %s'
            ' ORDER BY key COLLATE "C" LIMIT %s',
            (esc(after), limit),
        )
        return [
            ProfileRecord(decode("profiles", key, validate_profile, data), unesc(pk), fp) for key, pk, fp, data in rows
        ]

    def _links(self, where: str, args: Sequence[Any]) -> list[IdentityLink]:
        rows = self._rows(f"SELECT {_LINK_COLUMNS} FROM identity_links {where} ORDER BY id", args)
        return [
            IdentityLink(
                id_,
                unesc(profile),
                unesc(person),
                evidence,
                verified,
                LinkStatus(status),
                created,
                None if previous is None else unesc(previous),
                undone,
            )
            for id_, profile, person, evidence, verified, status, created, previous, undone in rows
        ]

    def identity_link(self, link_id: int) -> IdentityLink:
        found = self._links("WHERE id = %s", (link_id,))
        if not found:
            raise KeyError(f"no identity link #{link_id}")
        return found[0]

    def identity_links(self, status: LinkStatus | None = None) -> list[IdentityLink]:
        return self._links("WHERE status = %s", (status.value,)) if status else self._links("", ())

    def suggest_link(self, profile_key: str, person_key: str, evidence: str, verified: bool) -> IdentityLink | None:
        with self._tx() as cur:
            # The profile's row is locked: two workers suggesting the same link make one.
            cur.execute("SELECT person_key FROM profiles WHERE key = %s FOR UPDATE", (esc(profile_key),))
            current = cur.fetchone()
            cur.execute(
                "SELECT 1 FROM identity_links WHERE profile_key = %s AND person_key = %s AND status != 'undone'",
                (esc(profile_key), esc(person_key)),
            )
            known = cur.fetchone()
            if known or current is None or unesc(current[0]) == person_key:
                return None
            cur.execute(
                "INSERT INTO identity_links (profile_key, person_key, evidence, verified, created_at, status)"
                " VALUES (%s, %s, %s, %s, %s, 'suggested') RETURNING id",
                (esc(profile_key), esc(person_key), evidence, verified, utcnow()),
            )
            link_id = int(self._returned(cur))
        return self.identity_link(link_id)

    def link_identity(
        self, profile_key: str, person_key: str, evidence: str, verified: bool, ops: Sequence[CrmOperation]
    ) -> IdentityLink:
        at = utcnow()
        pk, person = esc(profile_key), esc(person_key)
        with self._tx() as cur:
            cur.execute("SELECT person_key FROM profiles WHERE key = %s FOR UPDATE", (pk,))
            row = cur.fetchone()
            if row is None:
                raise KeyError(f"no profile {profile_key!r} in the state store")
            previous = row[0]
            cur.execute(
                "SELECT id FROM identity_links WHERE profile_key = %s AND person_key = %s AND status = 'suggested'",
                (pk, person),
            )
            open_ = cur.fetchone()
            if open_:
                link_id = int(open_[0])
                cur.execute(
                    "UPDATE identity_links SET status = 'linked', previous_person_key = %s, evidence = %s,"
                    " verified = %s WHERE id = %s",
                    (previous, evidence, verified, link_id),
                )
            else:
                cur.execute(
                    "INSERT INTO identity_links (profile_key, person_key, evidence, verified, created_at, status,"
                    " previous_person_key) VALUES (%s, %s, %s, %s, %s, 'linked', %s) RETURNING id",
                    (pk, person, evidence, verified, at, previous),
                )
                link_id = int(self._returned(cur))
            cur.execute("UPDATE profiles SET person_key = %s WHERE key = %s", (person, pk))
            self._queue(cur, ops, at)
            detail = f"link #{link_id}: {unesc(previous)} -> {person_key}; evidence: {evidence}"
            self._insert_audit(cur, [AuditEntry("identity.linked", profile_key, detail)], at)
        return self.identity_link(link_id)

    def reject_suggestion(self, link_id: int) -> IdentityLink:
        with self._tx() as cur:
            cur.execute("SELECT id FROM identity_links WHERE id = %s FOR UPDATE", (link_id,))
            link = self.identity_link(link_id)
            if link.status is not LinkStatus.suggested:
                raise ValueError(f"link #{link_id} is {link.status.value}, not a suggestion")
            cur.execute("UPDATE identity_links SET status = 'rejected' WHERE id = %s", (link_id,))
            self._insert_audit(cur, [AuditEntry("identity.rejected", link.profile_key, f"link #{link_id}")], utcnow())
        return self.identity_link(link_id)

    def undo_link(self, link_id: int, ops: Sequence[CrmOperation]) -> IdentityLink:
        at = utcnow()
        with self._tx() as cur:
            cur.execute("SELECT id FROM identity_links WHERE id = %s FOR UPDATE", (link_id,))
            link = self.identity_link(link_id)
            if link.status is not LinkStatus.linked or link.previous_person_key is None:
                raise ValueError(f"link #{link_id} is {link.status.value}: there is nothing to undo")
            cur.execute("SELECT person_key FROM profiles WHERE key = %s FOR UPDATE", (esc(link.profile_key),))
            row = cur.fetchone()
            if row is None or unesc(row[0]) != link.person_key:
                raise ValueError(
                    f"profile {link.profile_key} has been linked elsewhere since link #{link_id}: undo that link first"
                )
            cur.execute(
                "UPDATE profiles SET person_key = %s WHERE key = %s",
                (esc(link.previous_person_key), esc(link.profile_key)),
            )
            cur.execute("UPDATE identity_links SET status = 'undone', undone_at = %s WHERE id = %s", (at, link_id))
            self._queue(cur, ops, at)
            detail = f"link #{link_id} undone: {link.person_key} -> {link.previous_person_key}"
            self._insert_audit(cur, [AuditEntry("identity.unlinked", link.profile_key, detail)], at)
        return self.identity_link(link_id)

    def person(self, person_key: str) -> PersonView:
        person = esc(person_key)
        profiles = [
            ProfileRecord(decode("profiles", key, validate_profile, data), unesc(pk), fp)
            for key, pk, fp, data in self._rows(
                "SELECT key, person_key, fingerprint, data FROM profiles WHERE person_key = %s"
                ' ORDER BY key COLLATE "C"',
                (person,),
            )
        ]
        keys = [p.profile.key for p in profiles]
        stored = [esc(k) for k in keys]
        conversations = [
            decode("conversations", key, validate_conversation, data)
            for key, data in self._rows(
                'SELECT key, data FROM conversations WHERE started_by = ANY(%b::text[]) ORDER BY key COLLATE "C"',
                (stored,),
            )
        ]
        (messages,) = self._one("SELECT COUNT(*) FROM messages WHERE author_key = ANY(%b::text[])", (stored,))
        links = self._links(
            "WHERE person_key = %s OR profile_key IN (SELECT key FROM profiles WHERE person_key = %s)",
            (person, person),
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
        return PersonView(person_key, profiles, conversations, int(messages), links, ids)
