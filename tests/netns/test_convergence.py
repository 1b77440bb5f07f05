"""Convergence on a real dataplane: late rules converge, removed or flapping rules fail, never retried away.

Rules change between rounds through the runner's `on_round` hook, so each scenario happens at a known
round rather than at a time that might race the probes.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from calico_conformance.probe.netns_executor import NetnsExecutor
from calico_conformance.probe.netns_lab import NetnsLab
from calico_conformance.probe.runner import RoundRecord, RunResult, run_matrix
from calico_conformance.reachability import Expectation, ExpectedMatrix, Flow, MismatchKind, ProbeVerdict
from tests.netns.lab_layout import PROBE_TIMEOUT_S, ROUND_INTERVAL_S, Policy

pytestmark = pytest.mark.netns

ALLOWED = Flow("tenant-a/web-1", "tenant-a/web-2", 80, "TCP")
DENIED = Flow("tenant-b/api-1", "tenant-a/web-2", 80, "TCP")
EXPECTED = ExpectedMatrix({ALLOWED: Expectation(True), DENIED: Expectation(False)})


def _drop(lab: NetnsLab, flow: Flow) -> list[str]:
    return [
        f"ip saddr {lab.pods[flow.source].ip} ip daddr {lab.pods[flow.destination].ip} tcp dport {flow.port} drop"
    ]


def _run(
    lab: NetnsLab,
    executor: NetnsExecutor,
    on_round: Callable[[RoundRecord], None],
    converge_timeout_s: float = 4.0,
) -> RunResult:
    return run_matrix(
        executor,
        lab.endpoints(),
        EXPECTED,
        timeout_s=PROBE_TIMEOUT_S,
        converge_timeout_s=converge_timeout_s,
        required_matches=3,
        round_interval_s=ROUND_INTERVAL_S,
        on_round=on_round,
    )


def test_rule_programmed_late_converges_and_records_when(
    lab: NetnsLab, executor: NetnsExecutor, policy: Policy
) -> None:
    def program_after_round_two(record: RoundRecord) -> None:
        if record.number == 2:
            policy(_drop(lab, DENIED))

    result = _run(lab, executor, program_after_round_two)
    assert result.ok, result.failure
    assert [record.matched for record in result.rounds] == [False, False, True, True, True]
    assert (result.observed[DENIED].attempts, result.observed[ALLOWED].attempts) == (3, 1)
    assert result.observed[DENIED].converge_s == result.rounds[2].started_s > 0
    assert result.observed[ALLOWED].converge_s == 0


def test_rule_removed_mid_run_is_caught(lab: NetnsLab, executor: NetnsExecutor, policy: Policy) -> None:
    policy(_drop(lab, DENIED))

    def remove_after_round_two(record: RoundRecord) -> None:
        if record.number == 2:  # two matching rounds: one short of passing
            lab.remove_policy("cc_test_policy")

    result = _run(lab, executor, remove_after_round_two)
    assert not result.ok
    assert len(result.rounds) == 3  # failed at once, no retry
    assert "retries never hide a leak" in (result.failure or "")
    assert [m.flow for m in result.comparison().leaks] == [DENIED]
    assert result.observed[DENIED].verdict is ProbeVerdict.ALLOWED


def test_flapping_deny_rule_fails_instead_of_being_retried_away(
    lab: NetnsLab, executor: NetnsExecutor, policy: Policy
) -> None:
    def flap(record: RoundRecord) -> None:  # absent in round 1, then on, off, on, ...
        if record.number % 2:
            policy(_drop(lab, DENIED))
        else:
            lab.remove_policy("cc_test_policy")

    result = _run(lab, executor, flap)
    seen = [record.observations[DENIED].verdict for record in result.rounds]
    # Round 1 (not yet programmed) is tolerated; the allow after the first deny is not.
    assert seen == [ProbeVerdict.ALLOWED, ProbeVerdict.DROPPED, ProbeVerdict.ALLOWED]
    assert not result.ok
    assert [m.flow for m in result.comparison().leaks] == [DENIED]


def test_flapping_allow_never_converges(lab: NetnsLab, executor: NetnsExecutor, policy: Policy) -> None:
    policy(_drop(lab, DENIED))
    flapping = _drop(lab, DENIED) + _drop(lab, ALLOWED)

    def flap(record: RoundRecord) -> None:  # ALLOWED is blocked in every other round
        policy(flapping if record.number % 2 else _drop(lab, DENIED))

    result = _run(lab, executor, flap, converge_timeout_s=3.0)
    assert not result.ok
    assert "did not converge" in (result.failure or "")
    mismatch = {m.flow: m.kind for m in result.comparison().mismatches}
    assert set(mismatch) == {ALLOWED, DENIED}  # the deny is unproven whenever its only control was blocked
    assert mismatch[ALLOWED] in (MismatchKind.UNPROVEN, MismatchKind.BLOCKED)
