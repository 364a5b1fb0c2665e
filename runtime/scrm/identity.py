"""Identity: which profiles belong to one person, only on evidence, always undoable.

The policy (ARCHITECTURE.md section 6) is per network: ``never`` (no link is ever
proposed; some networks' terms forbid cross-network linking), ``suggest`` (matches are
recorded for an operator to accept or reject), ``verified`` (matches whose evidence is
verified are linked at once; the rest are suggested).

A scan (:func:`scan`) looks at every stored profile, gathers the *candidates* that share
an identifier with it (a profile URL it links to, an email), and asks the
``scrm_match_identity`` hook. The built-in implementation (:func:`builtin_match`) knows
three kinds of evidence:

- both profiles link to each other (each bio or URL holds the other's profile URL): an
  account link the customer made on both sides, so **verified**;
- one profile links to the other: a suggestion;
- both carry the same email: a suggestion (an email is never proof on its own).

Names, handles and avatars are never evidence. A link re-points the profile's CRM record
at the person's contact; undoing it points it back. Both are written to the audit log.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from scrm.hooks import Hooks
from scrm.store import IdentityLink, ProfileRecord, StateStore
from scrm_core import hookimpl
from scrm_core.config import Config, IdentityPolicy
from scrm_core.models import CrmObject, CrmOperation, IdentityMatch, SocialProfile, external_key

__all__ = ["ScanResult", "builtin_match", "link", "person_of", "repoint_ops", "scan", "undo"]

_URL = re.compile(r"https?://[^\s<>\"')\]]+", re.IGNORECASE)


def normalize_url(url: str) -> str:
    """Scheme, ``www.``, trailing slash and case do not make a different profile URL."""
    url = url.strip().lower()
    url = re.sub(r"^https?://(www\.)?", "", url)
    return url.rstrip("/.,;")


def linked_urls(profile: SocialProfile) -> set[str]:
    """Profile URLs this profile points at (from its bio and its own website field)."""
    found = {normalize_url(u) for u in _URL.findall(profile.bio or "")}
    return found - ({normalize_url(profile.url)} if profile.url else set())


def builtin_match(profile: SocialProfile, candidates: Sequence[SocialProfile]) -> IdentityMatch | None:
    """The evidence scrm knows without a plugin; see the module docstring."""
    mine = linked_urls(profile)
    own_url = normalize_url(profile.url) if profile.url else None
    best: IdentityMatch | None = None
    for other in candidates:
        if other.key == profile.key:
            continue
        other_url = normalize_url(other.url) if other.url else None
        i_link = other_url is not None and other_url in mine
        they_link = own_url is not None and own_url in linked_urls(other)
        if i_link and they_link:
            return IdentityMatch(
                person_key=other.key,
                evidence=f"mutual profile links: {profile.key} links {other.url} and {other.key} links {profile.url}",
                verified=True,
            )
        if best is None and (i_link or they_link):
            a, b = (profile, other) if i_link else (other, profile)
            best = IdentityMatch(person_key=other.key, evidence=f"one-way link: {a.key} links {b.url}")
        if best is None and profile.email and other.email and profile.email.lower() == other.email.lower():
            best = IdentityMatch(person_key=other.key, evidence="same email on both profiles (not confirmed)")
    return best


def repoint_ops(record: ProfileRecord, person_key: str) -> list[CrmOperation]:
    """The CRM's copy of the profile, pointed at ``person_key``'s contact.

    Only the profile: the contact of the person linked to keeps its own name and email.
    """
    return [
        CrmOperation(
            object=CrmObject.profile,
            external_key=external_key(record.profile.key),
            fields={"network": record.profile.network, "account_id": record.profile.account_id},
            refs={"contact": external_key(person_key)},
        )
    ]


@dataclass
class ScanResult:
    profiles: int = 0
    linked: list[IdentityLink] = field(default_factory=list)
    suggested: list[IdentityLink] = field(default_factory=list)


def _candidates(records: Iterable[ProfileRecord]) -> dict[str, list[SocialProfile]]:
    """For each profile key, the other profiles sharing a URL mention or an email with it."""
    by_url: dict[str, list[SocialProfile]] = defaultdict(list)
    by_email: dict[str, list[SocialProfile]] = defaultdict(list)
    links: dict[str, set[str]] = {}
    profiles: list[SocialProfile] = []
    for record in records:
        p = record.profile
        profiles.append(p)
        if p.url:
            by_url[normalize_url(p.url)].append(p)
        if p.email:
            by_email[p.email.lower()].append(p)
        links[p.key] = linked_urls(p)
    found: dict[str, dict[str, SocialProfile]] = defaultdict(dict)
    for p in profiles:
        for url in links[p.key]:
            for other in by_url.get(url, ()):
                found[p.key][other.key] = other
                found[other.key][p.key] = p
        if p.email:
            for other in by_email[p.email.lower()]:
                found[p.key][other.key] = other
    return {key: [o for k, o in others.items() if k != key] for key, others in found.items()}


async def scan(store: StateStore, hooks: Hooks, config: Config) -> ScanResult:
    """Find evidence across every stored profile; link or suggest as each network's policy says."""
    identity = config.identity
    # Every profile is held once, with its URL and email indexes: about 1 kB each.
    records: dict[str, ProfileRecord] = {}
    after = ""
    while page := store.profiles_page(after, 1000):
        records.update((r.profile.key, r) for r in page)
        after = page[-1].profile.key
    result = ScanResult(profiles=len(records))
    seen: set[frozenset[str]] = set()
    for key, candidates in sorted(_candidates(records.values()).items()):
        record = records[key]
        policy = identity.policy(record.profile.network)
        # Both networks must allow it: linking is cross-network by nature.
        allowed = [c for c in candidates if identity.policy(c.network) is not IdentityPolicy.never]
        if policy is IdentityPolicy.never or not allowed:
            continue
        match = await hooks.match_identity(record.profile, allowed)
        if not isinstance(match, IdentityMatch):
            continue
        other = records.get(match.person_key)
        person = other.person_key if other is not None else match.person_key
        pair = frozenset((key, match.person_key))
        if person == record.person_key or pair in seen:
            continue  # already one person, or the other side of a pair this scan handled
        seen.add(pair)
        if policy is IdentityPolicy.verified and match.verified:
            result.linked.append(link(store, key, person, match.evidence, verified=True))
            record.person_key = person
        else:
            suggestion = store.suggest_link(key, person, match.evidence, match.verified)
            if suggestion is not None:
                result.suggested.append(suggestion)
    return result


def person_of(store: StateStore, key: str) -> str:
    """A person key, given a person key or any of the person's profile keys."""
    record = store.profiles([key]).get(key)
    return record.person_key if record is not None else key


def link(store: StateStore, profile_key: str, person_key: str, evidence: str, *, verified: bool) -> IdentityLink:
    """Link a profile to a person (accepting a suggestion if there is one) and re-point the CRM copy."""
    found = store.profiles([profile_key]).get(profile_key)
    if found is None:
        raise KeyError(f"no profile {profile_key!r} in the state store")
    return store.link_identity(profile_key, person_key, evidence, verified, repoint_ops(found, person_key))


def undo(store: StateStore, link_id: int) -> IdentityLink:
    """Undo a link: the profile's person and its CRM copy are as they were before it."""
    target = store.identity_link(link_id)
    record = store.profiles([target.profile_key]).get(target.profile_key)
    if record is None or target.previous_person_key is None:
        raise ValueError(f"link #{link_id} cannot be undone: its profile is gone or it was never in force")
    return store.undo_link(link_id, repoint_ops(record, target.previous_person_key))


@hookimpl
def scrm_match_identity(profile: SocialProfile, candidates: list[SocialProfile]) -> IdentityMatch | None:
    return builtin_match(profile, candidates)
