"""Controls without a control tier (Calico 3.27): a server vouches for itself, and only together with proof
that its pod is on the network in the same round (issue 9, item 6).

Without tiers no pod can be exempted from the policies under test, so a service no flow may reach has no
positive control from outside. Its own pod probing its own address proves the server listens (that
traffic never leaves the pod's network namespace); its reaching the source control (the control pod in
the run's policy-free namespace) in the same round proves its interface carries traffic. A deny of that
service counts only with both.
"""

from __future__ import annotations

from typing import Any

import pytest

from calico_conformance.probe.runner import ProbeEndpoint, plan_round, run_matrix
from calico_conformance.reachability import Expectation, ExpectedMatrix, Flow, ProbeVerdict
from tests.unit.scripted_executor import Decide, Scripted

ENDPOINTS = {
    "x/a": ProbeEndpoint("x/a", "10.244.1.10", "w1"),
    "y/b": ProbeEndpoint("y/b", "10.244.2.10", "w2"),
    "cc-r1-control/control": ProbeEndpoint("cc-r1-control/control", "10.244.1.9", "w1"),
}
SOURCE_CONTROL = ("cc-r1-control/control", 9999, "TCP")
DENIED = Flow("x/a", "y/b", 8080, "TCP")
MATRIX = ExpectedMatrix({DENIED: Expectation(False)})


def _run(decide: Decide, converge_timeout_s: float) -> Any:
    return run_matrix(Scripted(ENDPOINTS, decide), ENDPOINTS, MATRIX, timeout_s=1.0, converge_timeout_s=converge_timeout_s,
                      round_interval_s=0.0, source_control=SOURCE_CONTROL, self_control=True)  # fmt: skip


def test_the_destination_probes_itself_and_the_source_control() -> None:
    plan = plan_round(ENDPOINTS, MATRIX, timeout_s=1.0, source_control=SOURCE_CONTROL, self_control=True)
    mine = [(p.job["ip"], p.job["port"], p.self_check, p.sender) for p in plan.batches["y/b"]]
    assert mine == [("10.244.2.10", 8080, True, None), ("10.244.1.9", 9999, False, "y/b")]


def test_a_deny_counts_when_the_server_answers_itself_and_its_pod_is_on_the_network() -> None:
    def policy(source: str, job: dict[str, Any]) -> str:
        if source == "x/a" and job["ip"] == ENDPOINTS["y/b"].ip:
            return "dropped"  # the policy under test
        return "allowed"

    result = _run(policy, 5.0)
    assert result.ok, result.failure
    assert result.observed[DENIED].verdict is ProbeVerdict.DROPPED


def test_a_self_answer_from_a_pod_off_the_network_vouches_for_nothing() -> None:
    def unprogrammed_destination(source: str, job: dict[str, Any]) -> str:
        if source == "y/b":
            return "allowed" if job["ip"] == ENDPOINTS["y/b"].ip else "dropped"  # only itself
        return "dropped" if job["ip"] == ENDPOINTS["y/b"].ip else "allowed"

    result = _run(unprogrammed_destination, 0.3)
    assert not result.ok
    assert result.observed[DENIED].verdict is ProbeVerdict.ERROR
    assert "server not answering" in result.observed[DENIED].detail
    control = result.rounds[0].controls[("y/b", 8080, "TCP")]
    assert control.detail == "y/b answered itself but did not reach the source control in this round"


def test_self_controls_need_a_source_control() -> None:
    with pytest.raises(ValueError, match="self controls need a source_control"):
        plan_round(ENDPOINTS, MATRIX, timeout_s=1.0, self_control=True)
