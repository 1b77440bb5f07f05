"""A deny counts only when its source provably sent in the same round, on real packets (issue 9, item 3).

A pod whose every packet is dropped at its own interface stands for one felix has not programmed yet
(projectcalico/calico v3.31.7 felix/rules/dispatch.go drops traffic of an unknown workload interface).
Its flows are all expected denied, the server answers another client, so the destination's positive
control is satisfied: only the source control can tell that the drops prove nothing.
"""

from __future__ import annotations

import pytest
from lab_layout import CONTROL, PROBE_TIMEOUT_S, ROUND_INTERVAL_S, Policy

from calico_conformance.probe.netns_executor import NetnsExecutor
from calico_conformance.probe.netns_lab import NetnsLab
from calico_conformance.probe.runner import run_matrix
from calico_conformance.reachability import Expectation, ExpectedMatrix, Flow, MismatchKind, ProbeVerdict

pytestmark = pytest.mark.netns

SOURCE_CONTROL = (CONTROL, 80, "TCP")


def _matrix() -> tuple[Flow, ExpectedMatrix]:
    denied = Flow("tenant-b/api-1", "tenant-a/web-2", 80, "TCP")
    allowed = Flow("tenant-a/web-1", "tenant-a/web-2", 80, "TCP")  # the destination answers someone
    return denied, ExpectedMatrix({denied: Expectation(False), allowed: Expectation(True)})


def test_a_source_whose_egress_is_all_dropped_makes_its_denies_error(
    lab: NetnsLab, executor: NetnsExecutor, policy: Policy
) -> None:
    denied, expected = _matrix()
    policy([f"ip saddr {lab.pods[denied.source].ip} drop"])  # nothing leaves api-1: not a policy of web-2
    result = run_matrix(executor, lab.endpoints(), expected, timeout_s=PROBE_TIMEOUT_S, converge_timeout_s=1.5,
                        round_interval_s=ROUND_INTERVAL_S, source_control=SOURCE_CONTROL)  # fmt: skip
    assert not result.ok
    assert result.observed[denied].verdict is ProbeVerdict.ERROR
    assert "source not proven able to send" in result.observed[denied].detail
    assert {m.flow: m.kind for m in result.comparison().mismatches}[denied] is MismatchKind.UNPROVEN


def test_the_same_deny_counts_when_the_source_reaches_the_control(
    lab: NetnsLab, executor: NetnsExecutor, policy: Policy
) -> None:
    denied, expected = _matrix()
    policy([f"ip saddr {lab.pods[denied.source].ip} ip daddr {lab.pods[denied.destination].ip} drop"])
    result = run_matrix(executor, lab.endpoints(), expected, timeout_s=PROBE_TIMEOUT_S, converge_timeout_s=5.0,
                        round_interval_s=ROUND_INTERVAL_S, source_control=SOURCE_CONTROL)  # fmt: skip
    assert result.ok, result.comparison().render()
    assert result.observed[denied].verdict is ProbeVerdict.DROPPED
    assert result.rounds[-1].sent[denied.source].answered_by == CONTROL
