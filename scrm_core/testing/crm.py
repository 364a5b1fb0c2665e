"""Conformance suite for CRM adapters: what every CrmAdapter must do, in one subclass.

Subclass :class:`CrmAdapterConformance` in a test module (its name must start with
``Test``) and implement two hooks::

    from scrm_core.testing.crm import CrmAdapterConformance

    class TestMyCrm(CrmAdapterConformance):
        def make_adapter(self, tmp_path):
            return MyCrm(MyCrm.Settings(base_url=fake.url), AdapterContext(name="crm", base_dir=tmp_path))

        def read_back(self, adapter, obj, external_key):
            return fake.record(obj, external_key)  # the record's fields, or None

The tests are plain pytest methods that drive the adapter with ``asyncio.run`` (no
pytest-asyncio needed). They send the fields the engine's default mapping sends, one
object type per ``apply`` call, in the sink's order (contact, profile, case, lead,
message), and skip what the adapter's ``capabilities`` say it does not do.

Optional hooks make the suite stricter: :meth:`~CrmAdapterConformance.count` (records of
a type, to prove that retries create no duplicates),
:meth:`~CrmAdapterConformance.write_reply` (write a reply as an agent would, to test
``pending_replies``) and :meth:`~CrmAdapterConformance.correct_label` (set a label as an
agent would, to test ``label_corrections``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from ..adapters import AdapterSettings, CheckProblem, CrmAdapter, CrmCapability, CrmLimits, WriteBatch
from ..fitting import is_cut
from ..learning import LabelCorrection, normalise_label
from ..models import CrmObject, CrmOperation, OperationResult, external_key
from .settings import secrets_not_secretstr

__all__ = [
    "CREATED_AT",
    "CrmAdapterConformance",
    "case_op",
    "contact_op",
    "lead_op",
    "message_op",
    "profile_op",
]

NETWORK = "conformance"
CREATED_AT = "2024-05-01T12:00:00+00:00"
EDITED_AT = "2024-05-01T12:30:00+00:00"

# ---------------------------------------------------------------- operations, as the engine sends them
#
# Keys follow the default mapping: a person's contact, profile and lead all have the key
# of the profile (``scrm:<network>:<account id>``) until identity links them elsewhere,
# and a case has its conversation's key. External keys are unique per object type only.


def contact_op(n: int, *, name: str | None = None, email: str | None = None) -> CrmOperation:
    return CrmOperation(
        object=CrmObject.contact,
        external_key=external_key(f"{NETWORK}:acct{n}"),
        fields={"name": name or f"Conformance Person {n}", "email": email},
    )


def profile_op(n: int, *, contact: str | None = None) -> CrmOperation:
    return CrmOperation(
        object=CrmObject.profile,
        external_key=external_key(f"{NETWORK}:acct{n}"),
        fields={
            "network": NETWORK,
            "account_id": f"acct{n}",
            "handle": f"person{n}",
            "display_name": f"Person {n}",
            "url": f"https://conformance.example/@person{n}",
            "followers": 10 * n,
            "verified": False,
            "bio": "Here to test CRM adapters.",
        },
        refs={"contact": contact} if contact else {},
    )


def case_op(n: int, *, contact: str | None = None, subject: str | None = None) -> CrmOperation:
    return CrmOperation(
        object=CrmObject.case,
        external_key=external_key(f"{NETWORK}:root{n}"),
        fields={
            "subject": subject or f"Conformance case {n}",
            "status": "open",
            "priority": None,
            "network": NETWORK,
            "conversation_key": f"{NETWORK}:root{n}",
            "labels": ["intent:complaint"],
        },
        refs={"contact": contact} if contact else {},
    )


def lead_op(n: int, *, contact: str | None = None) -> CrmOperation:
    return CrmOperation(
        object=CrmObject.lead,
        external_key=external_key(f"{NETWORK}:acct{n}"),
        fields={"name": f"Conformance lead {n}", "network": NETWORK, "status": "new", "labels": ["intent:purchase"]},
        refs={"contact": contact} if contact else {},
    )


def message_op(
    n: int,
    *,
    refs: dict[str, str] | None = None,
    text: str | None = None,
    conversation: int = 0,
    **fields: Any,
) -> CrmOperation:
    """A new inbound message, every default-mapping field set; ``fields`` override or add."""
    base: dict[str, Any] = {
        "network": NETWORK,
        "message_id": f"m{n}",
        "conversation_key": f"{NETWORK}:root{conversation}",
        "parent_id": None,
        "text": f"Message {n}: my order has not arrived" if text is None else text,
        "created_at": CREATED_AT,
        "edited_at": None,
        "deleted": False,
        "deleted_at": None,
        "direction": "inbound",
        "visibility": "public",
        "url": f"https://conformance.example/m/{n}",
        "language": "en",
        "sentiment_score": -0.4,
        "sentiment_label": "negative",
        "labels": ["intent:complaint"],
        "matched_queries": ["brand"],
    }
    return CrmOperation(
        object=CrmObject.message,
        external_key=external_key(f"{NETWORK}:m{n}"),
        fields={**base, **fields},
        refs=refs or {},
    )


# ---------------------------------------------------------------- the suite


class CrmAdapterConformance:
    """Tests every CRM adapter must pass. Subclass it and implement the two hooks."""

    # ------------------------------------------------------------ hooks

    def make_adapter(self, tmp_path: Path) -> CrmAdapter:
        """A new, not yet started adapter on a fresh, empty CRM."""
        raise NotImplementedError("implement make_adapter(tmp_path) in your test class")

    def read_back(self, adapter: CrmAdapter, obj: CrmObject, external_key: str) -> dict[str, Any] | None:
        """The record's fields as the CRM holds them (engine field names), or None if absent.

        Called between awaits, on the event loop's thread. Optionally include ``"_refs"``:
        ref name -> external key of the record it points to; the suite then checks them.
        """
        raise NotImplementedError("implement read_back(adapter, obj, external_key) in your test class")

    def count(self, adapter: CrmAdapter, obj: CrmObject) -> int | None:
        """How many records of ``obj`` the CRM holds; None (the default) skips count checks."""
        return None

    def write_reply(self, adapter: CrmAdapter, conversation_key: str, in_reply_to: str, text: str) -> bool:
        """Write a reply in the CRM as an agent would; return False (the default) if you cannot."""
        return False

    def correct_label(self, adapter: CrmAdapter, obj: CrmObject, external_key: str, label: str) -> bool:
        """Set the label of the ``obj`` record with ``external_key`` as an agent would in the
        CRM (``label`` is e.g. ``"complaint"`` or ``"none"``: the value an agent picks);
        return False (the default) if you cannot."""
        return False

    # ------------------------------------------------------------ helpers

    def run(self, tmp_path: Path, scenario: Callable[[CrmAdapter], Awaitable[None]]) -> None:
        """Start a fresh adapter, run ``scenario`` with it, close it."""

        async def main() -> None:
            adapter = self.make_adapter(tmp_path)
            await adapter.start()
            try:
                await scenario(adapter)
            finally:
                await adapter.close()

        asyncio.run(main())

    @staticmethod
    def require(adapter: CrmAdapter, *capabilities: CrmCapability) -> None:
        missing = [c.value for c in capabilities if c not in adapter.capabilities]
        if missing:
            pytest.skip(f"{adapter.name} does not declare {', '.join(missing)}")

    async def apply(self, adapter: CrmAdapter, ops: Sequence[CrmOperation]) -> list[OperationResult]:
        """``adapter.apply`` plus the result contract: one result per op, in order, keys echoed."""
        results = await adapter.apply(list(ops))
        assert isinstance(results, list), f"apply() returned {type(results).__name__}, not a list"
        assert len(results) == len(ops), f"apply() returned {len(results)} results for {len(ops)} operations"
        for op, result in zip(ops, results, strict=True):
            assert isinstance(result, OperationResult)
            assert result.external_key == op.external_key, (
                f"results out of order: {result.external_key!r} where {op.external_key!r} was expected"
            )
        return results

    async def apply_ok(self, adapter: CrmAdapter, ops: Sequence[CrmOperation]) -> list[str]:
        """Apply ops that must all succeed; returns their CRM ids."""
        results = await self.apply(adapter, ops)
        failed = [f"{r.external_key}: {r.error}" for r in results if not r.ok]
        assert not failed, "records failed:\n" + "\n".join(failed)
        ids = [r.crm_id for r in results]
        assert all(ids), "a successful result must carry the CRM id"
        return [str(i) for i in ids]

    def must_read(self, adapter: CrmAdapter, obj: CrmObject, key: str) -> dict[str, Any]:
        record = self.read_back(adapter, obj, key)
        assert record is not None, f"{obj.value} {key} is not in the CRM"
        return record

    def check_count(self, adapter: CrmAdapter, obj: CrmObject, expected: int) -> None:
        found = self.count(adapter, obj)
        if found is not None:
            assert found == expected, f"expected {expected} {obj.value} record(s), the CRM holds {found}"

    async def seed(self, adapter: CrmAdapter, n: int = 1) -> dict[str, str]:
        """Contact n, its profile and case (as the CRM supports them); returns a message's refs."""
        refs: dict[str, str] = {}
        if CrmCapability.contacts in adapter.capabilities:
            contact = contact_op(n)
            await self.apply_ok(adapter, [contact])
            refs["contact"] = contact.external_key
        if CrmCapability.personas in adapter.capabilities:
            profile = profile_op(n, contact=refs.get("contact"))
            await self.apply_ok(adapter, [profile])
            refs["profile"] = profile.external_key
        if CrmCapability.cases in adapter.capabilities:
            case = case_op(n, contact=refs.get("contact"))
            await self.apply_ok(adapter, [case])
            refs["case"] = case.external_key
        return refs

    # ------------------------------------------------------------ declarations

    def test_declares_name_settings_capabilities_and_limits(self, tmp_path: Path) -> None:
        adapter = self.make_adapter(tmp_path)
        cls = type(adapter)
        assert isinstance(adapter, CrmAdapter)
        assert isinstance(cls.name, str) and re.fullmatch(r"[a-z][a-z0-9_-]*", cls.name), (
            f"name must be a short lowercase identifier, got {getattr(cls, 'name', None)!r}"
        )
        assert issubclass(cls.Settings, AdapterSettings)
        assert cls.Settings.model_config.get("extra") == "forbid", "Settings must forbid unknown keys"
        problems = secrets_not_secretstr(cls.Settings)
        assert not problems, "; ".join(problems)
        caps = cls.capabilities
        assert isinstance(caps, frozenset) and caps, "declare capabilities"
        assert all(isinstance(c, CrmCapability) for c in caps)
        limits = cls.limits
        assert isinstance(limits, CrmLimits)
        assert 1 <= limits.max_batch <= 10_000, f"max_batch {limits.max_batch} is not a sane batch size"
        for obj, size in limits.max_batch_per_object.items():
            assert 1 <= size <= 10_000, f"batch size for {obj.value} is {size}"
        if limits.requests_per_second is not None:
            assert 0 < limits.requests_per_second <= 100_000
        assert limits.burst >= 1

    def test_check_returns_a_list_of_problems(self, tmp_path: Path) -> None:
        async def scenario(adapter: CrmAdapter) -> None:
            problems = await adapter.check()
            assert isinstance(problems, list)
            for p in problems:
                assert isinstance(p, CheckProblem) and p.problem and p.fix

        self.run(tmp_path, scenario)

    def test_empty_batch(self, tmp_path: Path) -> None:
        async def scenario(adapter: CrmAdapter) -> None:
            assert await adapter.apply([]) == []

        self.run(tmp_path, scenario)

    # ------------------------------------------------------------ upserts

    def test_upsert_creates_then_updates_by_external_key(self, tmp_path: Path) -> None:
        async def scenario(adapter: CrmAdapter) -> None:
            self.require(adapter, CrmCapability.contacts)
            (first,) = await self.apply_ok(adapter, [contact_op(1, name="Ada Lovelace", email="ada@example.org")])
            (second,) = await self.apply_ok(adapter, [contact_op(1, name="Ada King", email="ada@example.org")])
            assert first == second, "an upsert by the same external key must keep the CRM id"
            assert self.must_read(adapter, CrmObject.contact, contact_op(1).external_key)["name"] == "Ada King"
            self.check_count(adapter, CrmObject.contact, 1)

        self.run(tmp_path, scenario)

    def test_partial_update_keeps_untouched_fields(self, tmp_path: Path) -> None:
        async def scenario(adapter: CrmAdapter) -> None:
            self.require(adapter, CrmCapability.contacts)
            key = contact_op(1).external_key
            await self.apply_ok(adapter, [contact_op(1, name="Grace Hopper", email="grace@example.org")])
            update = CrmOperation(object=CrmObject.contact, external_key=key, fields={"email": "g@example.org"})
            await self.apply_ok(adapter, [update])
            record = self.must_read(adapter, CrmObject.contact, key)
            assert record["name"] == "Grace Hopper", "a partial update must keep the fields it does not carry"
            assert record["email"] == "g@example.org"

            if CrmCapability.messages in adapter.capabilities:
                refs = await self.seed(adapter, 2)
                await self.apply_ok(adapter, [message_op(1, refs=refs, text="first words", conversation=2)])
                edit = CrmOperation(
                    object=CrmObject.message,
                    external_key=message_op(1).external_key,
                    fields={"text": "edited words", "edited_at": EDITED_AT},
                )
                await self.apply_ok(adapter, [edit])
                msg = self.must_read(adapter, CrmObject.message, edit.external_key)
                assert msg["text"] == "edited words"
                assert msg["message_id"] == "m1" and msg["conversation_key"] == f"{NETWORK}:root2"

        self.run(tmp_path, scenario)

    def test_retried_batch_creates_no_duplicates(self, tmp_path: Path) -> None:
        async def scenario(adapter: CrmAdapter) -> None:
            self.require(adapter, CrmCapability.contacts)
            batch = [contact_op(n) for n in range(1, 4)]
            first = await self.apply_ok(adapter, batch)
            # The sink retries a batch whose call timed out, though the CRM may have applied it.
            second = await self.apply_ok(adapter, batch)
            assert first == second, "a retried batch must map to the same records"
            assert len(set(first)) == 3
            self.check_count(adapter, CrmObject.contact, 3)

        self.run(tmp_path, scenario)

    def test_full_batch_of_limits_batch_size(self, tmp_path: Path) -> None:
        async def scenario(adapter: CrmAdapter) -> None:
            self.require(adapter, CrmCapability.contacts)
            size = adapter.limits.batch_size(CrmObject.contact)
            ids = await self.apply_ok(adapter, [contact_op(n) for n in range(size)])
            assert len(set(ids)) == size
            self.check_count(adapter, CrmObject.contact, size)
            if CrmCapability.messages in adapter.capabilities:
                refs = await self.seed(adapter, size + 1)
                size = adapter.limits.batch_size(CrmObject.message)
                ids = await self.apply_ok(adapter, [message_op(n, refs=refs) for n in range(size)])
                assert len(set(ids)) == size
                self.check_count(adapter, CrmObject.message, size)

        self.run(tmp_path, scenario)

    def test_a_write_sent_again_after_a_lost_answer_updates_the_record(self, tmp_path: Path) -> None:
        """The sink sends a batch again when its answer was lost (the CRM may have applied it):
        marked ``uncertain`` in the :class:`WriteBatch`, or not marked at all (a restart that knows
        nothing). Each must succeed, keep the CRM id and create nothing, even for a CRM whose
        objects have create-only fields."""

        async def scenario(adapter: CrmAdapter) -> None:
            self.require(adapter, CrmCapability.messages)
            refs = await self.seed(adapter)
            batch = [message_op(n, refs=refs) for n in (1, 2)]
            first = await self.apply_ok(adapter, batch)
            uncertain = WriteBatch(batch, uncertain=[(op.object, op.external_key) for op in batch])
            assert await self.apply_ok(adapter, uncertain) == first
            assert await self.apply_ok(adapter, batch) == first
            known = WriteBatch(
                batch, known={(op.object, op.external_key): i for op, i in zip(batch, first, strict=True)}
            )
            assert await self.apply_ok(adapter, known) == first
            self.check_count(adapter, CrmObject.message, 2)

        self.run(tmp_path, scenario)

    def test_values_too_long_for_the_crm_are_fitted_not_refused(self, tmp_path: Path) -> None:
        """A 300-character display name and a 66,000-character post are stored, not refused:
        cut to the field with scrm's marker stating the full length where the CRM needs it."""
        long_name = 'Ζωή O\'Brien "the" 🙂 ' * 16
        text = ("A long post ✓ 🙂 " * 5_000)[:66_000]

        async def scenario(adapter: CrmAdapter) -> None:
            self.require(adapter, CrmCapability.contacts)
            contact = contact_op(1, name=long_name)
            await self.apply_ok(adapter, [contact])
            if CrmCapability.personas in adapter.capabilities:
                profile = profile_op(1, contact=contact.external_key)
                profile.fields["display_name"] = long_name
                await self.apply_ok(adapter, [profile])
            if CrmCapability.messages in adapter.capabilities:
                refs = {"contact": contact.external_key}
                if CrmCapability.personas in adapter.capabilities:
                    refs["profile"] = profile_op(1).external_key
                message = message_op(1, refs=refs, text=text)
                await self.apply_ok(adapter, [message])
                stored = str(self.must_read(adapter, CrmObject.message, message.external_key).get("text") or "")
                full = is_cut(stored)
                assert stored == text or (full == len(text) and text.startswith(stored[: stored.index("…[scrm")])), (
                    "a long text must be stored whole, or cut with scrm's marker giving its full length"
                )

        self.run(tmp_path, scenario)

    def test_one_bad_record_fails_alone(self, tmp_path: Path) -> None:
        async def scenario(adapter: CrmAdapter) -> None:
            self.require(adapter, CrmCapability.messages)
            refs = await self.seed(adapter)
            good1, good2 = message_op(1, refs=refs), message_op(3, refs=refs)
            bad = message_op(2, refs=refs)
            bad = CrmOperation(  # a new message without its text and time: the CRM must refuse it
                object=CrmObject.message,
                external_key=bad.external_key,
                fields={k: v for k, v in bad.fields.items() if k not in ("text", "created_at")},
                refs=refs,
            )
            results = await self.apply(adapter, [good1, bad, good2])
            assert results[0].ok and results[2].ok, [r.error for r in results]
            assert not results[1].ok and results[1].error, "the refused record needs the CRM's reason"
            assert not results[1].retryable, "a record missing required fields will never succeed"
            assert self.read_back(adapter, CrmObject.message, bad.external_key) is None
            assert self.read_back(adapter, CrmObject.message, good2.external_key) is not None

        self.run(tmp_path, scenario)

    def test_external_keys_are_unique_per_object_type_only(self, tmp_path: Path) -> None:
        async def scenario(adapter: CrmAdapter) -> None:
            self.require(adapter, CrmCapability.contacts)
            contact = contact_op(1, name="Contact record")
            await self.apply_ok(adapter, [contact])
            others: list[CrmOperation] = []
            if CrmCapability.personas in adapter.capabilities:
                others.append(profile_op(1, contact=contact.external_key))
            if CrmCapability.leads in adapter.capabilities:
                others.append(lead_op(1, contact=contact.external_key))
            if not others:
                pytest.skip("no other object type shares the contact's key")
            for op in others:
                assert op.external_key == contact.external_key  # as the default mapping does
                await self.apply_ok(adapter, [op])
            assert self.must_read(adapter, CrmObject.contact, contact.external_key)["name"] == "Contact record"
            for op in others:
                assert self.read_back(adapter, op.object, op.external_key) is not None
            self.check_count(adapter, CrmObject.contact, 1)

        self.run(tmp_path, scenario)

    def test_results_follow_the_batch_order(self, tmp_path: Path) -> None:
        async def scenario(adapter: CrmAdapter) -> None:
            self.require(adapter, CrmCapability.contacts)
            await self.apply_ok(adapter, [contact_op(2), contact_op(4)])
            # New and existing records interleaved, keys not sorted: results follow the ops.
            results = await self.apply(adapter, [contact_op(n) for n in (5, 2, 1, 4, 3)])
            assert all(r.ok for r in results)
            again = await self.apply(adapter, [contact_op(n) for n in (3, 5, 4, 1, 2)])
            by_key = {r.external_key: r.crm_id for r in results}
            assert all(by_key[r.external_key] == r.crm_id for r in again)

        self.run(tmp_path, scenario)

    # ------------------------------------------------------------ references

    def test_references_resolve_in_sink_order(self, tmp_path: Path) -> None:
        async def scenario(adapter: CrmAdapter) -> None:
            self.require(adapter, CrmCapability.contacts, CrmCapability.messages)
            contact = contact_op(7)
            await self.apply_ok(adapter, [contact])
            refs = {"contact": contact.external_key}
            if CrmCapability.personas in adapter.capabilities:
                profile = profile_op(7, contact=contact.external_key)
                await self.apply_ok(adapter, [profile])
                refs["profile"] = profile.external_key
            if CrmCapability.cases in adapter.capabilities:
                case = case_op(7, contact=contact.external_key)
                await self.apply_ok(adapter, [case])
                refs["case"] = case.external_key
            if CrmCapability.leads in adapter.capabilities:
                await self.apply_ok(adapter, [lead_op(7, contact=contact.external_key)])
            message = message_op(70, refs=refs, conversation=7)
            await self.apply_ok(adapter, [message])
            record = self.must_read(adapter, CrmObject.message, message.external_key)
            if "_refs" in record:
                assert record["_refs"] == refs, "the message must point at its profile, contact and case"
            if "profile" in refs:
                profile_record = self.must_read(adapter, CrmObject.profile, refs["profile"])
                if "_refs" in profile_record:
                    assert profile_record["_refs"].get("contact") == contact.external_key

        self.run(tmp_path, scenario)

    def test_reference_to_a_missing_record_is_a_retryable_record_error(self, tmp_path: Path) -> None:
        async def scenario(adapter: CrmAdapter) -> None:
            self.require(adapter, CrmCapability.messages, CrmCapability.contacts)
            refs = await self.seed(adapter)
            ghost = {**refs, "contact": contact_op(999).external_key}
            results = await self.apply(adapter, [message_op(1, refs=refs), message_op(2, refs=ghost)])
            assert results[0].ok
            assert not results[1].ok and results[1].retryable, "the referenced record may still arrive: retry"

        self.run(tmp_path, scenario)

    # ------------------------------------------------------------ deletions

    def test_redaction_keeps_the_record_and_removes_the_text(self, tmp_path: Path) -> None:
        async def scenario(adapter: CrmAdapter) -> None:
            self.require(adapter, CrmCapability.messages)
            refs = await self.seed(adapter)
            message = message_op(1, refs=refs, text="my card number is 4111 1111 1111 1111")
            (crm_id,) = await self.apply_ok(adapter, [message])
            redaction = CrmOperation(
                object=CrmObject.message,
                external_key=message.external_key,
                fields={"text": "", "deleted": True, "deleted_at": EDITED_AT},
            )
            assert await self.apply_ok(adapter, [redaction]) == [crm_id]
            record = self.must_read(adapter, CrmObject.message, message.external_key)
            assert not record.get("text"), "a redacted message keeps no text"
            assert "4111" not in repr(record), "the deleted text must not survive anywhere in the record"
            if "deleted" in record:
                assert record["deleted"] in (True, 1, "true", "True")
            self.check_count(adapter, CrmObject.message, 1)

        self.run(tmp_path, scenario)

    def test_erase_removes_the_records(self, tmp_path: Path) -> None:
        async def scenario(adapter: CrmAdapter) -> None:
            self.require(adapter, CrmCapability.erase, CrmCapability.contacts)
            keep = contact_op(2)
            await self.apply_ok(adapter, [keep])
            refs = await self.seed(adapter, 1)
            records: dict[CrmObject, list[str]] = {CrmObject.contact: [refs["contact"]]}
            if "profile" in refs:
                records[CrmObject.profile] = [refs["profile"]]
            if "case" in refs:
                records[CrmObject.case] = [refs["case"]]
            if CrmCapability.messages in adapter.capabilities:
                messages = [message_op(n, refs=refs) for n in (1, 2)]
                await self.apply_ok(adapter, messages)
                records[CrmObject.message] = [m.external_key for m in messages]
            expected = sum(len(keys) for keys in records.values())
            assert await adapter.erase(records) == expected
            for obj, keys in records.items():
                for key in keys:
                    assert self.read_back(adapter, obj, key) is None, f"{obj.value} {key} survived the erase"
            assert self.read_back(adapter, CrmObject.contact, keep.external_key) is not None
            # Erasing again (a retried request) finds nothing and is not an error.
            assert await adapter.erase(records) == 0

        self.run(tmp_path, scenario)

    # ------------------------------------------------------------ replies

    def test_pending_replies_follow_the_cursor(self, tmp_path: Path) -> None:
        async def scenario(adapter: CrmAdapter) -> None:
            self.require(adapter, CrmCapability.outbound_replies)
            if CrmCapability.messages in adapter.capabilities:
                refs = await self.seed(adapter)
                await self.apply_ok(adapter, [message_op(1, refs=refs, conversation=1)])
            if not self.write_reply(adapter, f"{NETWORK}:root1", "m1", "Sorry about that, we are on it."):
                pytest.skip("write_reply() is not implemented for this CRM")
            replies, cursor = await adapter.pending_replies(None)
            assert [(r.conversation_key, r.in_reply_to, r.text) for r in replies] == [
                (f"{NETWORK}:root1", "m1", "Sorry about that, we are on it.")
            ]
            assert replies[0].crm_id
            again, cursor2 = await adapter.pending_replies(cursor)
            assert again == [], "a reply before the cursor must not come back"
            assert self.write_reply(adapter, f"{NETWORK}:root1", "m1", "Fixed now.")
            more, _ = await adapter.pending_replies(cursor2)
            assert [r.text for r in more] == ["Fixed now."]

        self.run(tmp_path, scenario)

    # ------------------------------------------------------------ label corrections

    def test_label_corrections_follow_the_cursor(self, tmp_path: Path) -> None:
        async def scenario(adapter: CrmAdapter) -> None:
            self.require(adapter, CrmCapability.label_corrections, CrmCapability.messages)
            refs = await self.seed(adapter)
            first = message_op(1, refs=refs, conversation=1, text="Charged twice for one order, order 5521")
            second = message_op(2, refs=refs, conversation=1, text="Where do I find the invoice?")
            await self.apply_ok(adapter, [first, second])
            if not self.correct_label(adapter, CrmObject.message, first.external_key, "complaint"):
                pytest.skip("correct_label() is not implemented for this CRM")
            found, cursor = await adapter.label_corrections(None)
            assert [(c.message_key, normalise_label(c.label), c.text) for c in found] == [
                (f"{NETWORK}:m1", "intent:complaint", "Charged twice for one order, order 5521")
            ], "a correction names its message, the label the agent set and the message's text"
            assert all(isinstance(c, LabelCorrection) and c.crm_id for c in found)
            again, cursor2 = await adapter.label_corrections(cursor)
            assert again == [], "a correction before the cursor must not come back"
            # An agent changes their mind, and corrects another message: both come back, in order.
            assert self.correct_label(adapter, CrmObject.message, first.external_key, "none")
            assert self.correct_label(adapter, CrmObject.message, second.external_key, "question")
            more, cursor3 = await adapter.label_corrections(cursor2)
            got = sorted((c.message_key, normalise_label(c.label)) for c in more)
            assert got == [(f"{NETWORK}:m1", "intent:none"), (f"{NETWORK}:m2", "intent:question")]
            assert (await adapter.label_corrections(cursor3))[0] == []
            if CrmCapability.cases in adapter.capabilities and "case" in refs:
                assert self.correct_label(adapter, CrmObject.case, refs["case"], "purchase")
                (case_correction,), _ = await adapter.label_corrections(cursor3)
                # A case's correction is about its conversation, keyed like its first message.
                assert case_correction.message_key == f"{NETWORK}:root1"
                assert normalise_label(case_correction.label) == "intent:purchase"
                assert case_correction.text, "a case's correction carries its first message's text or its subject"

        self.run(tmp_path, scenario)
