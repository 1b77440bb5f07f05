"""The runner's observed matrix for a set of nftables rules equals the matrix those rules imply.

The rules below are written by hand as nftables text; the expectation is written by hand as a predicate
over the lab's layout. They are two independent statements of one policy, so a runner (or agent) that
misreads the dataplane cannot agree with both.

Policy (in both nodes' forward hook): tenants a and b may not reach each other; only tenant-a may reach
tenant-a on 81/TCP; the platform control pod reaches everything else. Every pair is probed on 80/TCP,
81/TCP, 80/UDP and ICMP, same-node and cross-node.
"""

from __future__ import annotations

import itertools

import pytest

from calico_conformance.probe.netns_executor import NetnsExecutor
from calico_conformance.probe.netns_lab import NetnsLab
from calico_conformance.probe.runner import run_matrix
from calico_conformance.reachability import Expectation, ExpectedMatrix, Flow, ProbeVerdict
from tests.netns.lab_layout import CONTROL, PROBE_TIMEOUT_S, ROUND_INTERVAL_S, Policy

pytestmark = pytest.mark.netns

TENANT_PODS = ("tenant-a/web-1", "tenant-a/web-2", "tenant-b/api-1", "tenant-b/api-2")
SERVICES = ((80, "TCP"), (81, "TCP"), (80, "UDP"), (None, "ICMP"))


def _namespace(key: str) -> str:
    return key.split("/")[0]


def _intended(flow: Flow) -> bool:
    source, destination = _namespace(flow.source), _namespace(flow.destination)
    if {source, destination} == {"tenant-a", "tenant-b"}:
        return False
    return not (destination == "tenant-a" and flow.service == "81/TCP" and source != "tenant-a")


def _rules(lab: NetnsLab, action_tcp: str, action_other: str) -> list[str]:
    def ips(namespace: str) -> str:
        return "{ " + ", ".join(pod.ip for pod in lab.pods.values() if pod.spec.namespace == namespace) + " }"

    a, b = ips("tenant-a"), ips("tenant-b")
    return [
        f"ip saddr {a} ip daddr {b} meta l4proto tcp {action_tcp}",
        f"ip saddr {b} ip daddr {a} meta l4proto tcp {action_tcp}",
        f"ip saddr {a} ip daddr {b} {action_other}",
        f"ip saddr {b} ip daddr {a} {action_other}",
        f"ip saddr != {a} ip daddr {a} tcp dport 81 {action_tcp}",
    ]


def _expected() -> ExpectedMatrix:
    flows = [
        Flow(source, destination, port, protocol)
        for source, destination in itertools.permutations((*TENANT_PODS, CONTROL), 2)
        if destination != CONTROL
        for port, protocol in SERVICES
    ]
    return ExpectedMatrix.from_function(flows, lambda flow: Expectation(_intended(flow)))


@pytest.mark.parametrize(
    ("action_tcp", "action_other", "deny_verdict"),
    [("drop", "drop", ProbeVerdict.DROPPED), ("reject with tcp reset", "reject", ProbeVerdict.REJECTED)],
    ids=["drop", "reject"],
)
def test_observed_matrix_equals_the_policy(
    lab: NetnsLab,
    executor: NetnsExecutor,
    policy: Policy,
    action_tcp: str,
    action_other: str,
    deny_verdict: ProbeVerdict,
) -> None:
    policy(_rules(lab, action_tcp, action_other))
    expected = _expected()
    result = run_matrix(
        executor,
        lab.endpoints(),
        expected,
        timeout_s=PROBE_TIMEOUT_S,
        converge_timeout_s=6.0,
        round_interval_s=ROUND_INTERVAL_S,
        deny_verdicts=frozenset({deny_verdict}),
    )
    assert result.ok, f"{result.failure}\n{result.comparison(frozenset({deny_verdict})).render()}"
    assert len(result.rounds) == 3  # no policy change during the run: three rounds, no retry
    for flow, seen in result.observed.items():
        assert seen.verdict is (ProbeVerdict.ALLOWED if expected[flow].allowed else deny_verdict), flow
        if seen.verdict is ProbeVerdict.ALLOWED and flow.protocol != "ICMP":
            assert seen.answered_by == flow.destination, flow
        assert seen.same_node is (lab.pods[flow.source].node == lab.pods[flow.destination].node)


def test_every_source_sends_one_batch_per_round(lab: NetnsLab, executor: NetnsExecutor) -> None:
    expected = ExpectedMatrix.from_function(
        _expected(), lambda _flow: Expectation(True)
    )  # no policy installed
    batches: list[str] = []

    class CountingExecutor:
        def run_batch(
            self, source: str, jobs: list[dict[str, object]], *, deadline_s: float
        ) -> list[dict[str, object]]:
            batches.append(source)
            return executor.run_batch(source, jobs, deadline_s=deadline_s)

    result = run_matrix(
        CountingExecutor(),
        lab.endpoints(),
        expected,
        timeout_s=PROBE_TIMEOUT_S,
        converge_timeout_s=2.0,
        required_matches=1,
    )
    assert result.ok, result.failure
    sources = {lab.pods[flow.source].netns for flow in expected}
    assert sorted(batches) == sorted(sources)
    assert result.rounds[0].probes == len(expected)
