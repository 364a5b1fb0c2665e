"""Identity: links only on evidence, per-network policy, stored with the evidence, undoable."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from scrm.identity import builtin_match, link, scan, undo
from scrm.plugins import PluginHost
from scrm.store import LinkStatus, ProfileRecord, SqliteStore
from scrm_localcrm import LocalCrmReader

from scrm_core.config import Config, IdentityConfig, IdentityPolicy
from scrm_core.models import CrmObject, SocialProfile
from tests.e2e import write_config
from tests.test_cli import scrm

MASTO_URL = "https://mastodon.example/@ada"
SKY_URL = "https://bsky.app/profile/ada.example"


def masto(bio: str | None = None, email: str | None = None) -> SocialProfile:
    return SocialProfile(network="mastodon", account_id="1", handle="ada", url=MASTO_URL, bio=bio, email=email)


def sky(bio: str | None = None, email: str | None = None) -> SocialProfile:
    return SocialProfile(
        network="bluesky", account_id="did:plc:ada", handle="ada.example", url=SKY_URL, bio=bio, email=email
    )


def test_mutual_links_are_verified_evidence() -> None:
    match = builtin_match(masto(bio=f"also at {SKY_URL}"), [sky(bio=f"also at {MASTO_URL}/")])
    assert match is not None and match.verified and match.person_key == "bluesky:did:plc:ada"
    assert "mutual profile links" in match.evidence


def test_one_way_link_and_shared_email_are_only_suggestions() -> None:
    one_way = builtin_match(masto(bio=f"see {SKY_URL}"), [sky()])
    assert one_way is not None and not one_way.verified and "one-way link" in one_way.evidence
    email = builtin_match(masto(email="Ada@Example.org"), [sky(email="ada@example.org")])
    assert email is not None and not email.verified and "email" in email.evidence


def test_names_and_handles_are_never_evidence() -> None:
    a = SocialProfile(network="mastodon", account_id="1", handle="ada", display_name="Ada Lovelace")
    b = SocialProfile(network="bluesky", account_id="2", handle="ada", display_name="Ada Lovelace")
    assert builtin_match(a, [b]) is None


def make_store(tmp_path: Path, *profiles: SocialProfile) -> SqliteStore:
    from scrm.store import PageCommit

    store = SqliteStore(tmp_path / "state.db")
    store.migrate()
    records = [ProfileRecord(p, p.key, "fp") for p in profiles]
    store.commit_page(
        PageCommit(source="t", cursor=None, event_keys=[], profiles=records, conversations=[], messages=[], ops=[])
    )
    return store


def config(tmp_path: Path, **policies: IdentityPolicy) -> Config:
    cfg = Config.model_validate({"sources": [{"name": "s", "adapter": "replay"}]})
    cfg.identity = IdentityConfig(default=IdentityPolicy.never, networks=policies)
    return cfg


def run_scan(store: SqliteStore, cfg: Config) -> tuple[int, int]:
    import asyncio

    host = PluginHost(env={}).load(entry_points=False)
    result = asyncio.run(scan(store, host.hooks_for(cfg), cfg))
    return len(result.linked), len(result.suggested)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [(IdentityPolicy.never, (0, 0)), (IdentityPolicy.suggest, (0, 1)), (IdentityPolicy.verified, (1, 0))],
)
def test_scan_obeys_the_network_policy(tmp_path: Path, policy: IdentityPolicy, expected: tuple[int, int]) -> None:
    store = make_store(tmp_path, masto(bio=f"also {SKY_URL}"), sky(bio=f"also {MASTO_URL}"))
    cfg = config(tmp_path, mastodon=policy, bluesky=policy)
    assert run_scan(store, cfg) == expected
    assert run_scan(store, cfg) == (0, 0), "a second scan proposes nothing new"
    persons = {r.profile.key: r.person_key for r in store.profiles_page()}
    if expected == (1, 0):
        assert len(set(persons.values())) == 1, "linked: one person"
        (made,) = store.identity_links(LinkStatus.linked)
        assert made.verified and "mutual profile links" in made.evidence
    else:
        assert persons == {k: k for k in persons}, "no link without an operator"


def test_a_network_with_policy_never_is_never_linked_from_the_other_side(tmp_path: Path) -> None:
    store = make_store(tmp_path, masto(bio=f"also {SKY_URL}"), sky(bio=f"also {MASTO_URL}"))
    cfg = config(tmp_path, mastodon=IdentityPolicy.verified, bluesky=IdentityPolicy.never)
    assert run_scan(store, cfg) == (0, 0)


def test_verified_policy_still_only_suggests_unverified_evidence(tmp_path: Path) -> None:
    store = make_store(tmp_path, masto(email="ada@example.org"), sky(email="ada@example.org"))
    cfg = config(tmp_path, mastodon=IdentityPolicy.verified, bluesky=IdentityPolicy.verified)
    assert run_scan(store, cfg) == (0, 1)
    (suggestion,) = store.identity_links(LinkStatus.suggested)
    store.reject_suggestion(suggestion.id)
    assert run_scan(store, cfg) == (0, 0), "a rejected pair is not suggested again"


def test_link_then_undo_restores_the_state_before_the_link(tmp_path: Path) -> None:
    store = make_store(tmp_path, masto(), sky())
    before = {r.profile.key: r.person_key for r in store.profiles_page()}
    outbox_before = store.outbox_depth()
    made = link(store, "bluesky:did:plc:ada", "mastodon:1", "customer confirmed by DM", verified=True)
    assert store.profiles(["bluesky:did:plc:ada"])["bluesky:did:plc:ada"].person_key == "mastodon:1"
    (op,) = [i.op for i in store.outbox_take(10)][outbox_before:]
    assert op.object is CrmObject.profile and op.refs == {"contact": "scrm:mastodon:1"}
    view = store.person("mastodon:1")
    assert {p.profile.key for p in view.profiles} == {"mastodon:1", "bluesky:did:plc:ada"}

    undo(store, made.id)
    assert {r.profile.key: r.person_key for r in store.profiles_page()} == before
    last = store.outbox_take(10)[-1].op
    assert last.refs == {"contact": "scrm:bluesky:did:plc:ada"}, "the CRM copy is pointed back"
    (entry,) = [x for x in store.identity_links() if x.id == made.id]
    assert entry.status is LinkStatus.undone and entry.evidence == "customer confirmed by DM"
    actions = [a.action for _, a in store.audit_log()]
    assert actions[:2] == ["identity.unlinked", "identity.linked"]
    with pytest.raises(ValueError, match="nothing to undo"):
        undo(store, made.id)


def test_undo_refuses_when_the_profile_moved_since(tmp_path: Path) -> None:
    third = SocialProfile(network="reddit", account_id="t2_ada", handle="ada")
    store = make_store(tmp_path, masto(), sky(), third)
    first = link(store, "bluesky:did:plc:ada", "mastodon:1", "confirmed", verified=True)
    link(store, "bluesky:did:plc:ada", "reddit:t2_ada", "confirmed again", verified=True)
    with pytest.raises(ValueError, match="linked elsewhere"):
        undo(store, first.id)


@pytest.mark.slow
def test_identity_commands_and_customer_view_end_to_end(tmp_path: Path) -> None:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).isoformat()
    lines = [
        {
            "kind": "message.created",
            "message": {
                "network": "mastodon",
                "id": "m1",
                "text": "My order is late, refund?",
                "created_at": now,
                "author": masto(bio=f"me: {SKY_URL}").model_dump(),
            },
        },
        {
            "kind": "message.created",
            "message": {
                "network": "bluesky",
                "id": "b1",
                "text": "Still no parcel",
                "created_at": now,
                "author": sky(bio=f"me: {MASTO_URL}").model_dump(),
            },
        },
    ]
    data = tmp_path / "events.ndjson"
    data.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    cfg = write_config(tmp_path, [data], extra='[identity]\ndefault = "suggest"\n')
    assert scrm("run", "--once", "-c", str(cfg), cwd=tmp_path).returncode == 0

    scanned = scrm("identity", "scan", "-c", str(cfg), cwd=tmp_path)
    assert scanned.returncode == 0 and "1 new suggestion" in scanned.stdout, scanned.stdout + scanned.stderr
    listed = scrm("identity", "suggestions", "-c", str(cfg), cwd=tmp_path)
    assert "mutual profile links" in listed.stdout

    linked = scrm(
        "identity", "link", "mastodon:1", "bluesky:did:plc:ada", "--evidence", "accepted", "-c", str(cfg), cwd=tmp_path
    )
    assert linked.returncode == 0, linked.stderr
    shown = json.loads(scrm("customer", "show", "bluesky:did:plc:ada", "--json", "-c", str(cfg), cwd=tmp_path).stdout)
    assert {p["network"] for p in shown["profiles"]} == {"mastodon", "bluesky"}
    assert len(shown["conversations"]) == 2 and shown["messages"] == 2
    assert shown["cases"], "the complaint opened a case, visible in the person's view"

    # The next run sends the re-pointed profile to the CRM.
    assert scrm("run", "--once", "-c", str(cfg), cwd=tmp_path).returncode == 0
    with LocalCrmReader(tmp_path / "crm.db") as crm:
        record = crm.record(CrmObject.profile, "scrm:mastodon:1")
        assert record is not None and record["_refs"]["contact"] == "scrm:bluesky:did:plc:ada"

    link_id = next(x["id"] for x in shown["links"] if x["status"] == "linked")
    undone = scrm("identity", "unlink", str(link_id), "-c", str(cfg), cwd=tmp_path)
    assert undone.returncode == 0, undone.stderr
    assert scrm("run", "--once", "-c", str(cfg), cwd=tmp_path).returncode == 0
    with LocalCrmReader(tmp_path / "crm.db") as crm:
        record = crm.record(CrmObject.profile, "scrm:mastodon:1")
        assert record is not None and record["_refs"]["contact"] == "scrm:mastodon:1"
    missing = scrm("customer", "show", "nobody:0", "-c", str(cfg), cwd=tmp_path)
    assert missing.returncode == 1 and "no person or profile" in missing.stderr


@pytest.mark.slow
def test_erase_removes_the_person_from_the_crm_and_the_store(tmp_path: Path) -> None:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).isoformat()
    other = SocialProfile(network="mastodon", account_id="2", handle="bob")
    lines = [
        {
            "kind": "message.created",
            "message": {
                "network": "mastodon",
                "id": "m1",
                "text": "refund please, order late",
                "created_at": now,
                "author": masto().model_dump(),
            },
        },
        {
            "kind": "message.created",
            "message": {
                "network": "mastodon",
                "id": "m2",
                "text": "great product",
                "created_at": now,
                "author": other.model_dump(),
            },
        },
    ]
    data = tmp_path / "events.ndjson"
    data.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    cfg = write_config(tmp_path, [data])
    assert scrm("run", "--once", "-c", str(cfg), cwd=tmp_path).returncode == 0
    refused = scrm("erase", "mastodon:1", "-c", str(cfg), cwd=tmp_path)  # no --yes and no answer: nothing happens
    assert refused.returncode == 1
    with LocalCrmReader(tmp_path / "crm.db") as crm:
        assert crm.record(CrmObject.message, "scrm:mastodon:m1") is not None

    done = scrm("erase", "mastodon:1", "--yes", "-c", str(cfg), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with LocalCrmReader(tmp_path / "crm.db") as crm:
        for obj, key in [
            (CrmObject.message, "scrm:mastodon:m1"),
            (CrmObject.contact, "scrm:mastodon:1"),
            (CrmObject.profile, "scrm:mastodon:1"),
            (CrmObject.case, "scrm:mastodon:m1"),
        ]:
            assert crm.record(obj, key) is None, f"{obj.value} {key} survived"
        assert crm.record(CrmObject.message, "scrm:mastodon:m2") is not None, "others are untouched"
    again = scrm("erase", "mastodon:1", "--yes", "-c", str(cfg), cwd=tmp_path)
    assert again.returncode == 1 and "no person or profile" in again.stderr
    # A re-run of the source does not bring the erased messages back (their events are known).
    assert scrm("run", "--once", "-c", str(cfg), cwd=tmp_path).returncode == 0
    with LocalCrmReader(tmp_path / "crm.db") as crm:
        assert crm.record(CrmObject.message, "scrm:mastodon:m1") is None
