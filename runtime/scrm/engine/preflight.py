"""Before the first write: every adapter's ``check()``, and a refusal to start when the set-up is wrong.

``scrm run`` and ``scrm check`` both use :func:`run_checks`. A run whose CRM lacks a field
or a permission would only send doomed writes (each refused, batch after batch), so it
stops before sending anything and prints what to fix; warnings (scrm copes, e.g. by
leaving a value out) are logged and the run goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from scrm_core.adapters import CheckProblem, CrmAdapter, NetworkAdapter
from scrm_core.errors import FatalError, ScrmError
from scrm_core.retry import retrying

__all__ = ["AdapterProblems", "SetupProblems", "check_adapters", "raise_if_blocking"]

log = logging.getLogger("scrm.check")
CHECK_ATTEMPTS = 6  # a check that keeps failing for a passing reason is reported as a problem


@dataclass
class AdapterProblems:
    adapter: str  # "crm (salesforce)" or "source mastodon (mastodon)"
    problems: list[CheckProblem]


class SetupProblems(FatalError):
    """The set-up is not ready: every problem, each with its fix."""

    def __init__(self, found: list[AdapterProblems]) -> None:
        lines = [
            f"  {entry.adapter}: {p.problem}\n      fix: {p.fix}"
            for entry in found
            for p in entry.problems
            if p.blocking
        ]
        count = len(lines)
        super().__init__(
            f"the set-up is not ready ({count} problem(s)); nothing was sent. Fix these, then run again "
            "(`scrm check` lists them again):\n" + "\n".join(lines)
        )
        self.found = found


async def check_adapters(crm: CrmAdapter, sources: dict[str, NetworkAdapter]) -> list[AdapterProblems]:
    """Every adapter's problems (a check that itself fails is a problem too)."""
    found: list[AdapterProblems] = []
    named: Sequence[tuple[str, CrmAdapter | NetworkAdapter]] = [
        (f"crm ({crm.name})", crm),
        *((f"source {name} ({adapter.name})", adapter) for name, adapter in sources.items()),
    ]
    for label, adapter in named:
        try:
            problems = await _patiently(adapter)
        except ScrmError as exc:
            problems = [CheckProblem(problem=exc.operator_message, fix="see the message; then run `scrm check`")]
        if problems:
            found.append(AdapterProblems(label, problems))
    return found


async def _patiently(adapter: CrmAdapter | NetworkAdapter) -> list[CheckProblem]:
    """``adapter.check()``, tried again after a rate limit, a 5xx or a timeout (as the sink would)."""
    async for attempt in retrying(attempts=CHECK_ATTEMPTS, cap=60.0, on_retry=_waiting):
        with attempt:
            return await adapter.check()
    raise AssertionError("unreachable: tenacity re-raises the last error")


def _waiting(exc: BaseException | None, seconds: float) -> None:
    log.warning("check: %s; trying again in %.1fs", exc, seconds)


def raise_if_blocking(found: list[AdapterProblems]) -> None:
    for entry in found:
        for problem in entry.problems:
            if not problem.blocking:
                log.warning("%s: %s (%s)", entry.adapter, problem.problem, problem.fix)
    if any(p.blocking for entry in found for p in entry.problems):
        raise SetupProblems(found)
