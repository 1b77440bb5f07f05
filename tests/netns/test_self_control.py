"""Controls without a control tier, on real packets (issue 9, item 6: Calico 3.27 has no tiers).

A server no flow may reach vouches for itself: its pod probes its own address, which never leaves the
pod's network namespace, so the lab's per-node policy (an nftables forward chain, the stand-in for felix)
cannot touch it; and its pod must reach the source control in the same round. A deny towards it then
counts; if the pod's interface carries nothing (its link down), the self answer alone vouches for nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from lab_layout import CONTROL, PROBE_TIMEOUT_S, ROUND_INTERVAL_S, Policy

from calico_conformance.probe.netns_executor import NetnsExecutor
from calico_conformance.probe.netns_lab import NetnsLab
from calico_conformance.probe.runner import run_matrix
from calico_conformance.reachability import Expectation, ExpectedMatrix, Flow, ProbeVerdict

pytestmark = pytest.mark.netns

SOURCE_CONTROL = (CONTROL, 80, "TCP")
SERVER = "tenant-a/web-2"


def _denied(lab: NetnsLab) -> tuple[list[Flow], ExpectedMatrix]:
    flows = [Flow(source, SERVER, 81, "TCP") for source in ("tenant-a/web-1", "tenant-b/api-1")]
    return flows, ExpectedMatrix(dict.fromkeys(flows, Expectation(False)))


def test_a_server_nobody_may_reach_vouches_for_itself_and_the_deny_counts(
    lab: NetnsLab, executor: NetnsExecutor, policy: Policy
) -> None:
    flows, expected = _denied(lab)
    policy([f"ip daddr {lab.pods[SERVER].ip} tcp dport 81 drop"])  # every client is denied, no exemption
    result = run_matrix(executor, lab.endpoints(), expected, timeout_s=PROBE_TIMEOUT_S, converge_timeout_s=8.0,
                        round_interval_s=ROUND_INTERVAL_S, source_control=SOURCE_CONTROL,
                        self_control=True)  # fmt: skip
    assert result.ok, result.comparison().render()
    assert {result.observed[flow].verdict for flow in flows} == {ProbeVerdict.DROPPED}
    assert result.rounds[-1].controls[(SERVER, 81, "TCP")].answered_by == SERVER


def test_a_server_whose_pod_is_off_the_network_vouches_for_nothing(
    lab: NetnsLab, executor: NetnsExecutor, take_offline: Callable[[str], None]
) -> None:
    flows, expected = _denied(lab)
    take_offline(SERVER)  # its server still answers itself, but nothing reaches it or leaves it
    result = run_matrix(executor, lab.endpoints(), expected, timeout_s=PROBE_TIMEOUT_S, converge_timeout_s=1.5,
                        round_interval_s=ROUND_INTERVAL_S, source_control=SOURCE_CONTROL,
                        self_control=True)  # fmt: skip
    assert not result.ok
    assert {result.observed[flow].verdict for flow in flows} == {ProbeVerdict.ERROR}
    control = result.rounds[0].controls[(SERVER, 81, "TCP")]
    assert control.detail == f"{SERVER} answered itself but did not reach the source control in this round"
