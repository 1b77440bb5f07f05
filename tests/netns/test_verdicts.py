"""Every verdict the agent gives is the one the dataplane earned: allowed, dropped, rejected, error.

Each case sets up the cause for real (an nftables drop or reject in the nodes' forward hook, a port with
no listener, an agent that cannot start) and checks the classification and, for answers, that the
answering identity is the destination pod's as the lab defined it.
"""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from calico_conformance.probe.executor import ExecutorError
from calico_conformance.probe.jobs import RESULT_SCHEMA, connect_job, icmp_job, interface_mtu_job
from calico_conformance.probe.netns_executor import NetnsExecutor
from calico_conformance.probe.netns_lab import NetnsLab, sctp_unsupported_reason
from calico_conformance.probe.runner import plan_round, run_round
from calico_conformance.reachability import Expectation, ExpectedMatrix, Flow, ProbeVerdict
from tests.netns.lab_layout import CLOSED_PORT, PROBE_TIMEOUT_S, Policy, Probe

pytestmark = pytest.mark.netns

OLDEST_PYTHON = Path("/root/.pyenv/versions/3.8.18/bin/python3.8")  # the agent promises 3.8+


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
@pytest.mark.parametrize(
    ("source", "destination"),
    [("tenant-a/web-1", "tenant-a/web-2"), ("tenant-a/web-1", "tenant-b/api-1")],
    ids=["cross-node", "same-node"],
)
def test_allowed_probe_names_the_destination_pod(
    lab: NetnsLab, probe: Probe, source: str, destination: str, protocol: str
) -> None:
    result = probe(source, destination, 80, protocol)
    assert result["verdict"] == "allowed", result
    assert result["identity"] == lab.pods[destination].identity


def test_icmp_echo_is_allowed(lab: NetnsLab, executor: NetnsExecutor) -> None:
    job = icmp_job("ping", lab.pods["tenant-b/api-2"].ip, timeout_s=PROBE_TIMEOUT_S)
    [result] = executor.run_batch(lab.pods["tenant-a/web-1"].netns, [job], deadline_s=10)
    assert result["verdict"] == "allowed", result


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_nftables_drop_is_dropped(lab: NetnsLab, probe: Probe, policy: Policy, protocol: str) -> None:
    web_1, web_2 = lab.pods["tenant-a/web-1"], lab.pods["tenant-a/web-2"]
    policy([f"ip saddr {web_1.ip} ip daddr {web_2.ip} {protocol} dport 80 drop"])
    result = probe(web_1.key, web_2.key, 80, protocol)
    assert result["verdict"] == "dropped", result
    assert result["elapsed_ms"] >= PROBE_TIMEOUT_S * 1000 * 0.95  # it waited the timeout out
    assert probe(web_1.key, web_2.key, 81, protocol)["verdict"] == "allowed"  # only port 80 is dropped


def test_nftables_drop_of_icmp_is_dropped(lab: NetnsLab, executor: NetnsExecutor, policy: Policy) -> None:
    web_1, web_2 = lab.pods["tenant-a/web-1"], lab.pods["tenant-a/web-2"]
    policy([f"ip saddr {web_1.ip} ip daddr {web_2.ip} icmp type echo-request drop"])
    [result] = executor.run_batch(
        web_1.netns, [icmp_job("ping", web_2.ip, timeout_s=PROBE_TIMEOUT_S)], deadline_s=10
    )
    assert result["verdict"] == "dropped", result


@pytest.mark.parametrize(
    ("protocol", "action"),
    [("tcp", "reject with tcp reset"), ("udp", "reject"), ("udp", "reject with icmp type admin-prohibited")],
    ids=["tcp-reset", "udp-port-unreachable", "udp-admin-prohibited"],
)
def test_nftables_reject_is_rejected(
    lab: NetnsLab, probe: Probe, policy: Policy, protocol: str, action: str
) -> None:
    web_1, web_2 = lab.pods["tenant-a/web-1"], lab.pods["tenant-a/web-2"]
    policy([f"ip saddr {web_1.ip} ip daddr {web_2.ip} {protocol} dport 80 {action}"])
    result = probe(web_1.key, web_2.key, 80, protocol)
    assert result["verdict"] == "rejected", result
    assert result["identity"] is None


def test_nftables_reject_of_icmp_is_rejected(lab: NetnsLab, executor: NetnsExecutor, policy: Policy) -> None:
    web_1, web_2 = lab.pods["tenant-a/web-1"], lab.pods["tenant-a/web-2"]
    policy(
        [
            f"ip saddr {web_1.ip} ip daddr {web_2.ip} icmp type echo-request reject with icmp type admin-prohibited"
        ]
    )
    [result] = executor.run_batch(
        web_1.netns, [icmp_job("ping", web_2.ip, timeout_s=PROBE_TIMEOUT_S)], deadline_s=10
    )
    assert result["verdict"] == "rejected", result
    assert "type 3 code 13" in str(result["detail"])  # communication administratively prohibited


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_port_without_listener_is_rejected(probe: Probe, protocol: str) -> None:
    result = probe("tenant-a/web-1", "tenant-a/web-2", CLOSED_PORT, protocol)
    assert result["verdict"] == "rejected", result


def test_agent_that_cannot_run_raises_executor_error(lab: NetnsLab) -> None:
    job = connect_job("x", lab.pods["tenant-a/web-2"].ip, 80, "tcp")
    with pytest.raises(ExecutorError, match="could not run"):
        NetnsExecutor().run_batch(f"{lab.prefix}-no-such-pod", [job], deadline_s=10)
    with pytest.raises(ExecutorError, match="could not run"):
        NetnsExecutor(python="/nonexistent/python3").run_batch(
            lab.pods["tenant-a/web-1"].netns, [job], deadline_s=10
        )


def test_agent_that_cannot_run_makes_every_flow_an_error(lab: NetnsLab) -> None:
    endpoints = lab.endpoints()
    flows = [
        Flow("tenant-a/web-1", "tenant-a/web-2", 80, "TCP"),
        Flow("tenant-a/web-1", "tenant-b/api-2", 80, "TCP"),
    ]
    expected = ExpectedMatrix({flows[0]: Expectation(True), flows[1]: Expectation(False)})
    plan = plan_round(endpoints, expected, timeout_s=PROBE_TIMEOUT_S, control_source="platform/control")
    observed, _ = run_round(NetnsExecutor(python="/nonexistent/python3"), plan, deadline_s=10)
    assert {flow: seen.verdict for flow, seen in observed.items()} == dict.fromkeys(flows, ProbeVerdict.ERROR)
    assert all("could not run" in seen.detail for seen in observed.values())


def test_malformed_job_is_an_error_for_that_job_only(lab: NetnsLab, executor: NetnsExecutor) -> None:
    good = connect_job("good", lab.pods["tenant-a/web-2"].ip, 80, "tcp", timeout_s=PROBE_TIMEOUT_S)
    bad = {"id": "bad", "kind": "connect", "protocol": "tcp", "ip": "not-an-ip", "port": 80}
    results = executor.run_batch(lab.pods["tenant-a/web-1"].netns, [good, bad], deadline_s=10)
    assert [result["verdict"] for result in results] == ["allowed", "error"]
    assert "ip must be an IPv4 address" in results[1]["detail"]


def test_every_result_line_matches_the_documented_schema(lab: NetnsLab, executor: NetnsExecutor) -> None:
    web_2 = lab.pods["tenant-a/web-2"].ip
    jobs = [
        connect_job("tcp", web_2, 80, "tcp", timeout_s=PROBE_TIMEOUT_S),
        connect_job("udp", web_2, 80, "udp", timeout_s=PROBE_TIMEOUT_S),
        connect_job("closed", web_2, CLOSED_PORT, "tcp", timeout_s=PROBE_TIMEOUT_S),
        icmp_job("icmp", web_2, timeout_s=PROBE_TIMEOUT_S),
        interface_mtu_job("mtu"),
    ]
    for result in executor.run_batch(lab.pods["tenant-a/web-1"].netns, jobs, deadline_s=10):
        jsonschema.validate(result, RESULT_SCHEMA)


@pytest.mark.skipif(
    sctp_unsupported_reason() is None, reason="this kernel has SCTP; the SCTP probe test covers it"
)
def test_sctp_without_kernel_support_is_an_error_not_a_deny(probe: Probe) -> None:
    result = probe("tenant-a/web-1", "tenant-a/web-2", 80, "sctp")
    assert result["verdict"] == "error", result
    assert "does not support the protocol" in str(result["detail"])


@pytest.mark.skipif(sctp_unsupported_reason() is not None, reason=sctp_unsupported_reason() or "")
def test_sctp_probe_names_the_destination_pod(lab: NetnsLab, probe: Probe) -> None:
    result = probe("tenant-a/web-1", "tenant-a/web-2", 80, "sctp")
    assert result["verdict"] == "allowed", result
    assert result["identity"] == lab.pods["tenant-a/web-2"].identity


@pytest.mark.skipif(not OLDEST_PYTHON.exists(), reason=f"{OLDEST_PYTHON} is not installed")
def test_agent_probes_and_serves_under_python_3_8(lab: NetnsLab) -> None:
    server = lab.serve("tenant-c/idle", tcp=[8080], udp=[8080], python=str(OLDEST_PYTHON))
    try:
        idle = lab.pods["tenant-c/idle"]
        jobs = [
            connect_job(protocol, idle.ip, 8080, protocol, timeout_s=PROBE_TIMEOUT_S)
            for protocol in ("tcp", "udp")
        ]
        results = NetnsExecutor(python=str(OLDEST_PYTHON)).run_batch(
            lab.pods["tenant-a/web-1"].netns, jobs, deadline_s=10
        )
    finally:
        server.stop()
        lab.servers.remove(server)
    assert [(result["verdict"], result["identity"]) for result in results] == [("allowed", idle.identity)] * 2
