"""The rogue DNS server of the DNS suite: the agent's `serve --dns-udp/--dns-tcp` on a real dataplane.

On live targets the DNS suite proves "no namespace reaches any other DNS server" against a pod that
really answers DNS: the agent serving `--dns-udp 53 --dns-tcp 53 --dns-answer ROGUE_ANSWER`. Here the
same server runs in a lab pod and is queried by the agent's `dns` job (the same packet code a real
client's query goes through), over UDP and TCP; an nftables drop between client and server must turn
the answer into `dropped`. The runner probes it with connect jobs (identity, positive control), so the
same port must also answer those with the server's identity, and a dropped flow to it is believed only
because the control source got through in the same round.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from calico_conformance.cluster.probe_pods import render_probe_pod
from calico_conformance.cluster.stand_ins import stand_in_pods
from calico_conformance.config import resolve_run_config
from calico_conformance.probe.jobs import connect_job, dns_job
from calico_conformance.probe.netns_executor import AGENT_PATH, AgentServer, NetnsExecutor, start_process
from calico_conformance.probe.netns_lab import NetnsLab
from calico_conformance.probe.runner import run_matrix
from calico_conformance.reachability import Expectation, ExpectedMatrix, Flow, ProbeVerdict
from calico_conformance.run_inputs import load_run_inputs
from calico_conformance.targets.registry import TARGETS
from tests.netns.lab_layout import CONTROL, PROBE_TIMEOUT_S, ROUND_INTERVAL_S, Policy

pytestmark = pytest.mark.netns

ROGUE = "tenant-b/api-2"  # on node2; the client is on node1, so every query crosses the VXLAN
CLIENT = "tenant-a/web-1"
ROGUE_ANSWER = "192.0.2.1"  # TEST-NET-1: what every A query gets, never a real address
TRANSPORTS = ["udp", "tcp"]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rogue_dns(lab: NetnsLab) -> Iterator[str]:
    """The agent as a rogue resolver on ROGUE's 53/UDP and 53/TCP (beside its usual server); its IP."""
    pod = lab.pods[ROGUE]
    server = AgentServer.start(pod.netns, pod.identity, dns_udp=(53,), dns_tcp=(53,), dns_answer=ROGUE_ANSWER)
    assert (server.ready["dns_udp"], server.ready["dns_tcp"]) == ([53], [53]), server.ready
    yield pod.ip
    server.stop()


def _ask(lab: NetnsLab, executor: NetnsExecutor, server: str, transport: str, name: str) -> dict[str, object]:
    job = dns_job("q", name, transport=transport, server=server, timeout_s=PROBE_TIMEOUT_S)
    [result] = executor.run_batch(lab.pods[CLIENT].netns, [job], deadline_s=10)
    return result


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_rogue_server_answers_every_a_query(
    lab: NetnsLab, executor: NetnsExecutor, rogue_dns: str, transport: str
) -> None:
    for name in ("exfiltrate.example.com", "kubernetes.default.svc.cluster.local"):
        result = _ask(lab, executor, rogue_dns, transport, name)
        assert (result["verdict"], result["outcome"], result["rcode"]) == ("allowed", "answer", "NOERROR"), (
            result
        )
        assert result["addresses"] == [ROGUE_ANSWER]
        assert result["server"] == f"{rogue_dns}:53"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_dropped_rogue_server_is_dropped(
    lab: NetnsLab, executor: NetnsExecutor, policy: Policy, rogue_dns: str, transport: str
) -> None:
    policy([f"ip saddr {lab.pods[CLIENT].ip} ip daddr {rogue_dns} {transport} dport 53 drop"])
    result = _ask(lab, executor, rogue_dns, transport, "exfiltrate.example.com")
    assert (result["verdict"], result["outcome"], result["addresses"]) == ("dropped", "dropped", []), result
    other = "tcp" if transport == "udp" else "udp"
    assert _ask(lab, executor, rogue_dns, other, "exfiltrate.example.com")["outcome"] == "answer"


@pytest.mark.parametrize("protocol", ["udp", "tcp"])
def test_rogue_port_answers_connect_probes_with_its_identity(
    lab: NetnsLab, executor: NetnsExecutor, rogue_dns: str, protocol: str
) -> None:
    job = connect_job("c", rogue_dns, 53, protocol, timeout_s=PROBE_TIMEOUT_S)
    [result] = executor.run_batch(lab.pods[CLIENT].netns, [job], deadline_s=10)
    assert result["verdict"] == "allowed", result
    assert result["identity"] == lab.pods[ROGUE].identity


def test_runner_believes_a_drop_to_the_rogue_server_through_the_control_source(
    lab: NetnsLab, executor: NetnsExecutor, policy: Policy, rogue_dns: str
) -> None:
    """The live DNS suite's flows: the client expected denied on 53 UDP+TCP, nobody expected allowed."""
    flows = [Flow(CLIENT, ROGUE, 53, protocol) for protocol in ("TCP", "UDP")]
    expected = ExpectedMatrix({flow: Expectation(False, "only kube-dns answers DNS") for flow in flows})
    policy(
        [f"ip saddr {lab.pods[CLIENT].ip} ip daddr {rogue_dns} meta l4proto {{ tcp, udp }} th dport 53 drop"]
    )
    result = run_matrix(
        executor,
        lab.endpoints(),
        expected,
        timeout_s=PROBE_TIMEOUT_S,
        converge_timeout_s=3.0,
        round_interval_s=ROUND_INTERVAL_S,
        control_source=CONTROL,
    )
    assert result.ok, result.comparison().render()
    assert {result.observed[flow].verdict for flow in flows} == {ProbeVerdict.DROPPED}
    assert all(
        control.answered_by == ROGUE for record in result.rounds for control in record.controls.values()
    )


def test_the_live_rogue_dns_pods_command_starts_with_the_widened_reference_layout() -> None:
    """The rogue DNS pod as the live targets render it from the reference set (whose layout edges add
    52-54 to the canary ports) binds every port once: its container command, run as it is in a fresh
    network namespace, prints the agent's ready line. A port listed both as a canary and as DNS could
    not bind, and the pod crashed on every cluster (found by the cluster stand-in)."""
    run = resolve_run_config({"target": "static"}, base_dir=REPO, target_names=tuple(TARGETS))
    widened = load_run_inputs(run).layout  # the defaults, as every run reads them
    [rogue] = stand_in_pods(widened, "cc-r1-control", ["node1"], outside_echo=False)
    assert {(s.port, s.protocol) for s in rogue.services} >= {(53, "TCP"), (53, "UDP")}, "the edge case"
    command = render_probe_pod(rogue, image="netshoot", agent_source="", run_id="r1")["spec"]["containers"][0]
    argv = [sys.executable if a == "python3" else str(AGENT_PATH) if a.endswith("/agent.py") else a
            for a in command["command"]]  # fmt: skip
    netns = f"cc-rogue-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        process = start_process(["ip", "netns", "exec", netns, *argv])
        try:
            assert process.stdout is not None
            assert process.stderr is not None
            readable, _, _ = select.select([process.stdout], [], [], 10)
            line = process.stdout.readline() if readable else ""
            why = process.stderr.read() if process.poll() is not None else "no ready line in 10 s"
            assert line, f"the rogue DNS pod's agent did not start: {why}"
            ready = json.loads(line)
        finally:
            process.kill()
            process.wait()
    finally:
        subprocess.run(["ip", "netns", "delete", netns], check=False)
    assert (ready["dns_udp"], ready["dns_tcp"]) == ([53], [53])
    assert 53 not in ready["tcp"]
    assert 53 not in ready["udp"]
    assert {52, 54, 9999} <= set(ready["tcp"])
    assert {52, 54, 9999} <= set(ready["udp"])
