"""A deny counts only when its source provably sent in the same round (issue 9, item 3).

An interface felix has not programmed yet drops every packet (projectcalico/calico v3.31.7
felix/rules/dispatch.go: the workload dispatch chains end in a drop for an unknown interface), which
looks exactly like a policy deny; the positive control proves only the destination. The case is a
source whose every flow is expected-deny: kube-system's kube-dns in the reference layout, whose
pod-to-pod flows the reference policy set denies (checked here with the oracle, not assumed).
"""

from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest

from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.loader import load_manifests
from calico_conformance.oracle.model import Labels, Namespace, Pod
from calico_conformance.probe.convergence import apply_source_control
from calico_conformance.probe.runner import ProbeEndpoint, plan_round, run_matrix
from calico_conformance.reachability import ExpectedMatrix, Flow, Observation, ProbeVerdict
from calico_conformance.tenancy.layout import TenancyLayout, load_layout
from calico_conformance.tenancy.workloads import layout_namespaces, layout_pods
from tests.unit.scripted_executor import Scripted

REPO = Path(__file__).resolve().parents[2]
KUBE_DNS = "kube-system/kube-dns"
CONTROL = "cc-r1-control/control"
CANARY = (CONTROL, 9999, "TCP")


@pytest.fixture(scope="module")
def layout() -> TenancyLayout:
    return load_layout(REPO / "policies" / "tenancy.yaml")


def kube_dns_matrix(layout: TenancyLayout) -> tuple[ExpectedMatrix, dict[str, ProbeEndpoint]]:
    """kube-dns -> every other layout workload on each of its ports, as the reference policy set says."""
    pool = IPv4Network("10.244.0.0/16")
    pods = list(layout_pods(layout, pool))
    control = Pod("control", "cc-r1-control", pool[250], labels=Labels.of({"app": "control"}))
    namespaces = [*layout_namespaces(layout), Namespace("cc-r1-control", Labels.of({}))]
    oracle = Oracle(namespaces=namespaces, pods=[*pods, control],
                    resources=load_manifests([REPO / "policies" / "reference"]))  # fmt: skip
    flows = [
        Flow(KUBE_DNS, pod.key, service.port, service.protocol)
        for pod in pods
        if pod.key != KUBE_DNS
        for service in layout.workload(pod.key).ports
    ]
    endpoints = {
        pod.key: ProbeEndpoint(pod.key, str(pod.ip), "w1" if i % 2 else "w2") for i, pod in enumerate(pods)
    }
    endpoints[CONTROL] = ProbeEndpoint(CONTROL, str(pool[250]), "w1")
    return oracle.expected_matrix(flows), endpoints




def test_every_flow_of_kube_dns_is_expected_denied_by_the_reference_policies(layout: TenancyLayout) -> None:
    expected, _ = kube_dns_matrix(layout)
    assert len(expected) > 10
    assert not any(expected[flow].allowed for flow in expected)


def test_a_source_that_cannot_send_makes_its_denies_error_never_a_pass(layout: TenancyLayout) -> None:
    expected, endpoints = kube_dns_matrix(layout)

    def unprogrammed_kube_dns(source: str, job: dict[str, Any]) -> str:
        return "dropped" if source == KUBE_DNS else "allowed"  # the control pod reaches every server

    result = run_matrix(Scripted(endpoints, unprogrammed_kube_dns), endpoints, expected, timeout_s=1.0,
                        converge_timeout_s=0.5, round_interval_s=0.0, control_source=CONTROL,
                        source_control=CANARY)  # fmt: skip

    assert not result.ok
    verdicts = {result.observed[flow].verdict for flow in expected}
    assert verdicts == {ProbeVerdict.ERROR}
    detail = result.observed[next(iter(expected))].detail
    assert detail.startswith(
        "source not proven able to send in this round: its source-control probe was `dropped`"
    )
    assert not result.comparison().ok


def test_the_same_drops_count_once_the_source_reaches_the_control(layout: TenancyLayout) -> None:
    expected, endpoints = kube_dns_matrix(layout)
    control_ip = endpoints[CONTROL].ip

    def policy_denies(source: str, job: dict[str, Any]) -> str:
        if source == KUBE_DNS:
            return "allowed" if job["ip"] == control_ip else "dropped"
        return "allowed"

    result = run_matrix(Scripted(endpoints, policy_denies), endpoints, expected, timeout_s=1.0,
                        converge_timeout_s=5.0, round_interval_s=0.0, control_source=CONTROL,
                        source_control=CANARY)  # fmt: skip

    assert result.ok, result.failure
    assert result.comparison().ok
    assert result.rounds[0].sent[KUBE_DNS].verdict is ProbeVerdict.ALLOWED


def test_every_source_gets_one_source_control_job_per_round(layout: TenancyLayout) -> None:
    expected, endpoints = kube_dns_matrix(layout)
    plan = plan_round(endpoints, expected, timeout_s=1.0, control_source=CONTROL, source_control=CANARY)
    checks = [probe for batch in plan.batches.values() for probe in batch if probe.sender is not None]
    assert [(probe.sender, probe.job["ip"], probe.job["port"]) for probe in checks] == [
        (KUBE_DNS, endpoints[CONTROL].ip, 9999)
    ]
    assert checks[0].expected_server == CONTROL  # answered by another pod at that IP proves nothing


def test_an_answered_flow_also_proves_its_source() -> None:
    allowed = Flow("x/a", "y/b", 80, "TCP")
    denied = Flow("x/a", "y/c", 80, "TCP")
    unproven = Flow("x/z", "y/c", 80, "TCP")
    checked = apply_source_control(
        {allowed: Observation(ProbeVerdict.ALLOWED), denied: Observation(ProbeVerdict.DROPPED),
         unproven: Observation(ProbeVerdict.REJECTED)},
        {},
    )  # fmt: skip
    assert checked[denied].verdict is ProbeVerdict.DROPPED
    assert checked[unproven].verdict is ProbeVerdict.ERROR
    assert "none of its flows was answered" in checked[unproven].detail
