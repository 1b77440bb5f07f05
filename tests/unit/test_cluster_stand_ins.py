"""The live targets' stand-ins (rogue DNS pod, outside echo) and how flows are sent to them.

Expected values come from `policies/tenancy.yaml` as written (its ports and addresses are spelled out
here) and from the reference policy set judged by the oracle, never from the code under test. The
pods themselves run only on a cluster; their agent is proven in `tests/netns/test_dns_rogue.py`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from ipaddress import IPv4Network, ip_address
from pathlib import Path
from typing import Any

import pytest

from calico_conformance.cluster.deploy import Deployment, control_namespace
from calico_conformance.cluster.probe_pods import render_probe_pod
from calico_conformance.cluster.stand_ins import (
    NO_OUTSIDE_ECHO,
    ROGUE_DNS_ANSWER,
    StandIns,
    probe_canary,
    probed_flows,
    stand_in_detail,
    stand_in_pods,
    stand_ins_from,
)
from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.loader import load_manifests
from calico_conformance.oracle.model import Labels, Namespace, Pod
from calico_conformance.probe.runner import ProbeEndpoint
from calico_conformance.reachability import Expectation, ExpectedMatrix, Flow
from calico_conformance.tenancy.layout import Service, TenancyLayout, load_layout
from calico_conformance.tenancy.workloads import layout_namespaces, layout_pods

REPO = Path(__file__).resolve().parents[2]
RUN = "r1"
CONTROL_NS = control_namespace(RUN)
ROGUE = f"{CONTROL_NS}/rogue-dns"
ECHO_0, ECHO_1 = f"{CONTROL_NS}/outside-echo-0", f"{CONTROL_NS}/outside-echo-1"
NODES = ["finland-worker", "finland-worker2"]


@pytest.fixture(scope="module")
def layout() -> TenancyLayout:
    return load_layout(REPO / "policies" / "tenancy.yaml")


def _render(layout: TenancyLayout, *, outside_echo: bool = True) -> dict[str, dict[str, Any]]:
    pods = stand_in_pods(layout, CONTROL_NS, NODES, outside_echo=outside_echo, pod_name_prefix="cc-r1-")
    return {
        pod.workload: render_probe_pod(pod, image="netshoot", agent_source="", run_id=RUN) for pod in pods
    }


def _option(command: list[str], flag: str) -> str | None:
    return command[command.index(flag) + 1] if flag in command else None


def test_the_rogue_dns_pod_resolves_on_53_and_answers_the_canary(layout: TenancyLayout) -> None:
    rogue = _render(layout)[ROGUE]
    command = rogue["spec"]["containers"][0]["command"]
    assert (_option(command, "--dns-udp"), _option(command, "--dns-tcp")) == ("53", "53")
    assert _option(command, "--dns-answer") == ROGUE_DNS_ANSWER == "192.0.2.1"
    assert (_option(command, "--tcp"), _option(command, "--udp")) == ("9999", "9999")  # the canary
    assert json.loads(_option(command, "--identity") or "") == {
        "pod": "rogue-dns",
        "namespace": CONTROL_NS,
        "node": "finland-worker",
    }
    assert rogue["metadata"]["name"] == "cc-r1-rogue-dns"
    assert "hostNetwork" not in rogue["spec"]
    ports = {(p["containerPort"], p["protocol"]) for p in rogue["spec"]["containers"][0]["ports"]}
    assert ports == {(53, "UDP"), (53, "TCP"), (9999, "UDP"), (9999, "TCP")}


def test_no_reference_policy_lets_a_dns_client_reach_the_rogue_pod(layout: TenancyLayout) -> None:
    """The rogue pod as rendered (labels, namespace) is reached by no client of the layout: the flows the
    live DNS suite sends to it are denied by the reference set, so a leak to it is a real leak."""
    rogue = _render(layout)[ROGUE]
    labels = Labels.of(rogue["metadata"]["labels"])
    pods = [*layout_pods(layout, IPv4Network("10.244.0.0/16")), Pod("rogue-dns", CONTROL_NS, IPv4Network("10.244.0.0/16")[250], labels=labels)]  # fmt: skip
    namespaces = [*layout_namespaces(layout), Namespace(CONTROL_NS, Labels.of({"kubernetes.io/metadata.name": CONTROL_NS}))]  # fmt: skip
    oracle = Oracle(
        namespaces=namespaces, pods=pods, resources=load_manifests([REPO / "policies" / "reference"])
    )
    clients = [w.key for ns in layout.namespaces if ns.resolves_dns for w in ns.workloads]
    assert (
        len(clients) == 8
    )  # a sentinel and a workload in each of royal-bank, customer-a, customer-b, platform
    for client in clients:
        for protocol in ("UDP", "TCP"):
            verdict = oracle.verdict_for(Flow(client, ROGUE, 53, protocol))
            assert not verdict.allowed, str(verdict)
        # ... while kube-dns on the same port is allowed: the deny is about the server, not the port.
        assert oracle.verdict_for(Flow(client, "kube-system/kube-dns", 53, "UDP")).allowed


def test_an_outside_echo_on_every_node_in_the_nodes_network(layout: TenancyLayout) -> None:
    rendered = _render(layout)
    for key, node in ((ECHO_0, NODES[0]), (ECHO_1, NODES[1])):
        spec = rendered[key]["spec"]
        container = spec["containers"][0]
        assert (spec["hostNetwork"], spec["nodeName"]) == (True, node)
        assert container["env"] == [
            {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}
        ]
        assert _option(container["command"], "--bind") == "$(HOST_IP)"
        # The canary (9999) and the kube-dns-upstream exception's ports (53/UDP, 53/TCP, 6443/TCP).
        assert _option(container["command"], "--tcp") == "53,6443,9999"
        assert _option(container["command"], "--udp") == "53,9999"
        assert rendered[key]["metadata"]["labels"]["calico-conformance.io/role"] == "outside-echo"
        assert spec["readinessGates"] == [{"conditionType": "calico-conformance.io/never-ready"}]


def test_without_outside_echo_only_the_rogue_dns_pod_is_planned(layout: TenancyLayout) -> None:
    assert list(_render(layout, outside_echo=False)) == [ROGUE]


def test_every_probe_pod_also_serves_the_dns_ports(layout: TenancyLayout) -> None:
    assert set(probe_canary(layout)) == {
        Service(9999, "TCP"),
        Service(9999, "UDP"),
        Service(53, "UDP"),
        Service(53, "TCP"),
    }


# --- sending flows to the stand-ins ---------------------------------------------------------------------

ENDPOINTS = {
    "customer-a/shop": ProbeEndpoint("customer-a/shop", "10.244.1.5", NODES[0]),
    "customer-b/sentinel": ProbeEndpoint("customer-b/sentinel", "10.244.2.5", NODES[1]),
}
STAND_INS = StandIns(
    {
        ROGUE: ProbeEndpoint("cc/rogue", "10.244.1.9", NODES[0]),
        ECHO_0: ProbeEndpoint("cc/echo-0", "172.18.0.3", NODES[0], source_address="172.18.0.3"),
        ECHO_1: ProbeEndpoint("cc/echo-1", "172.18.0.4", NODES[1], source_address="172.18.0.4"),
    },
    ROGUE,
    (ECHO_0, ECHO_1),
    "",
)


def _denied(*flows: Flow) -> ExpectedMatrix:
    return ExpectedMatrix({flow: Expectation(False, "denied") for flow in flows})


def test_flows_to_other_dns_servers_go_to_the_rogue_pod(layout: TenancyLayout) -> None:
    first = Flow("customer-a/shop", "192.0.2.53", 53, "UDP")
    second = Flow("customer-a/shop", "198.51.100.53", 53, "UDP")
    plan = probed_flows(_denied(first, second), layout, STAND_INS, ENDPOINTS)
    rogue = Flow("customer-a/shop", ROGUE, 53, "UDP")
    assert plan.probed_as == {first: rogue, second: rogue}
    assert dict(plan.expected.cells) == {rogue: Expectation(False, "denied")}  # one probe for both
    assert (plan.unsupported, plan.conflicts) == ({}, {})


def test_flows_to_outside_addresses_leave_the_node(layout: TenancyLayout) -> None:
    here = Flow("customer-a/shop", "192.0.2.10", 9999, "TCP")  # shop runs on NODES[0]
    there = Flow("customer-b/sentinel", "192.0.2.10", 9999, "UDP")  # the sentinel on NODES[1]
    plan = probed_flows(_denied(here, there), layout, STAND_INS, ENDPOINTS)
    assert plan.probed_as[here].destination == ECHO_1
    assert plan.probed_as[there].destination == ECHO_0


def test_in_cluster_flows_are_probed_as_they_are(layout: TenancyLayout) -> None:
    flow = Flow("customer-a/shop", "customer-b/sentinel", 53, "TCP")
    plan = probed_flows(_denied(flow), layout, STAND_INS, ENDPOINTS)
    assert plan.probed_as == {flow: flow}


def test_without_an_outside_echo_outside_flows_are_unsupported_with_the_reason(layout: TenancyLayout) -> None:
    outside = Flow("customer-a/shop", "192.0.2.10", 9999, "TCP")
    inside = Flow("customer-a/shop", "customer-b/sentinel", 8080, "TCP")
    no_echo = StandIns({ROGUE: STAND_INS.endpoints[ROGUE]}, ROGUE, (), NO_OUTSIDE_ECHO)
    plan = probed_flows(_denied(outside, inside), layout, no_echo, ENDPOINTS)
    assert plan.unsupported == {outside: NO_OUTSIDE_ECHO}
    assert "--outside-echo" in NO_OUTSIDE_ECHO
    assert list(plan.expected) == [inside]


# --- flows from outside into the cluster: the echo is the client ------------------------------------------


def test_flows_from_outside_come_from_an_echo_on_another_node(layout: TenancyLayout) -> None:
    into_shop = Flow("192.0.2.10", "customer-a/shop", 8443, "TCP")  # shop runs on NODES[0]
    into_sentinel = Flow("192.0.2.10", "customer-b/sentinel", 8080, "TCP")  # the sentinel on NODES[1]
    plan = probed_flows(_denied(into_shop, into_sentinel), layout, STAND_INS, ENDPOINTS)
    # A host reaching a pod on its own node is always allowed (calico-semantics.md §1.1): never that pair.
    assert plan.probed_as == {
        into_shop: Flow(ECHO_1, "customer-a/shop", 8443, "TCP"),
        into_sentinel: Flow(ECHO_0, "customer-b/sentinel", 8080, "TCP"),
    }
    assert (plan.unsupported, plan.conflicts) == ({}, {})


def test_icmp_from_outside_is_unsupported_because_no_one_can_confirm_its_source(layout: TenancyLayout) -> None:
    ping = Flow("192.0.2.10", "customer-b/sentinel", None, "ICMP")
    plan = probed_flows(_denied(ping), layout, STAND_INS, ENDPOINTS)
    assert set(plan.unsupported) == {ping}
    assert "pod-pool address" in plan.unsupported[ping]


def test_an_outside_sender_whose_address_is_inside_the_pod_pool_is_never_used(layout: TenancyLayout) -> None:
    # Unbound, a node's traffic to a pod on another node leaves vxlan.calico with the node's tunnel address,
    # allocated from the pod IP pool (projectcalico/calico v3.31.7 felix/dataplane/linux/vxlan_mgr.go):
    # "outside" traffic from such an address would miss a `notNets: [<pod CIDR>]` hole and pass falsely.
    flow = Flow("192.0.2.10", "customer-a/shop", 8443, "TCP")
    plan = probed_flows(_denied(flow), layout, STAND_INS, ENDPOINTS, [IPv4Network("172.18.0.0/16")])
    assert set(plan.unsupported) == {flow}
    assert "inside the pod network (172.18.0.0/16)" in plan.unsupported[flow]
    assert len(plan.expected) == 0
    fine = probed_flows(_denied(flow), layout, STAND_INS, ENDPOINTS, [IPv4Network("10.244.0.0/16")])
    assert fine.probed_as == {flow: Flow(ECHO_1, "customer-a/shop", 8443, "TCP")}


def test_outside_echoes_send_from_their_node_address(layout: TenancyLayout) -> None:
    pods = stand_in_pods(layout, CONTROL_NS, NODES, outside_echo=True)
    started = {pod.workload: ProbeEndpoint(pod.key, f"172.18.0.{n}", pod.node) for n, pod in enumerate(pods)}
    found = stand_ins_from(pods, started, outside_echo=True)
    assert [found.endpoints[key].source_address for key in (ECHO_0, ECHO_1)] == ["172.18.0.1", "172.18.0.2"]
    assert found.endpoints[ROGUE].source_address is None


def test_flows_from_outside_with_an_echo_on_the_destination_s_node_only_are_unsupported(
    layout: TenancyLayout,
) -> None:
    into_shop = Flow("192.0.2.10", "customer-a/shop", 8443, "TCP")
    into_sentinel = Flow("192.0.2.10", "customer-b/sentinel", 8080, "TCP")
    one_node = StandIns({ECHO_0: STAND_INS.endpoints[ECHO_0]}, None, (ECHO_0,), "")
    plan = probed_flows(_denied(into_shop, into_sentinel), layout, one_node, ENDPOINTS)
    assert set(plan.unsupported) == {into_shop}
    assert "calico-semantics.md §1.1" in plan.unsupported[into_shop]
    assert plan.probed_as == {into_sentinel: Flow(ECHO_0, "customer-b/sentinel", 8080, "TCP")}


def test_flows_from_outside_without_an_echo_are_unsupported_with_the_reason(layout: TenancyLayout) -> None:
    flow = Flow("192.0.2.10", "customer-a/shop", 8443, "TCP")
    no_echo = StandIns({ROGUE: STAND_INS.endpoints[ROGUE]}, ROGUE, (), NO_OUTSIDE_ECHO)
    plan = probed_flows(_denied(flow), layout, no_echo, ENDPOINTS)
    assert plan.unsupported == {flow: NO_OUTSIDE_ECHO}
    assert len(plan.expected) == 0


def test_flows_from_an_address_a_policy_names_are_unsupported(layout: TenancyLayout) -> None:
    # A rule admitting 203.0.113.0/24 matches that address itself; the echo sends from its node's address.
    partner = ip_address("203.0.113.0")
    widened = replace(
        layout,
        outside_addresses=(*layout.outside_addresses, partner),
        policy_outside_addresses=(partner,),
    )
    named = Flow("203.0.113.0", "customer-a/shop", 8443, "TCP")
    anywhere = Flow("192.0.2.10", "customer-a/shop", 8443, "TCP")
    plan = probed_flows(_denied(named, anywhere), widened, STAND_INS, ENDPOINTS)
    assert set(plan.unsupported) == {named}
    assert "203.0.113.0 is an address a policy names" in plan.unsupported[named]
    assert plan.probed_as == {anywhere: Flow(ECHO_1, "customer-a/shop", 8443, "TCP")}


def test_a_report_says_which_end_a_stand_in_took(layout: TenancyLayout) -> None:
    inbound, outbound = Flow("192.0.2.10", "customer-a/shop", 8443, "TCP"), Flow("customer-a/shop", "192.0.2.10", 9999, "TCP")
    plan = probed_flows(_denied(inbound, outbound), layout, STAND_INS, ENDPOINTS)
    every = {**ENDPOINTS, **STAND_INS.endpoints}
    assert stand_in_detail(inbound, plan.probed_as[inbound], every) == f"sent from the stand-in {ECHO_1} (172.18.0.4)"
    assert stand_in_detail(outbound, plan.probed_as[outbound], every) == f"probed at the stand-in {ECHO_1} (172.18.0.4)"


def test_flows_that_would_share_a_probe_but_expect_differently_are_conflicts(layout: TenancyLayout) -> None:
    allowed = Flow("customer-a/shop", "192.0.2.53", 53, "UDP")
    denied = Flow("customer-a/shop", "198.51.100.53", 53, "UDP")
    expected = ExpectedMatrix({allowed: Expectation(True), denied: Expectation(False)})
    plan = probed_flows(expected, layout, STAND_INS, ENDPOINTS)
    assert set(plan.conflicts) == {allowed, denied}
    assert len(plan.expected) == 0
    assert plan.probed_as == {}


def test_stand_ins_are_split_from_the_started_pods_and_survive_the_state(layout: TenancyLayout) -> None:
    pods = stand_in_pods(layout, CONTROL_NS, NODES, outside_echo=True)
    started = {pod.workload: ProbeEndpoint(pod.key, f"10.0.0.{n}", pod.node) for n, pod in enumerate(pods)}
    found = stand_ins_from(pods, started, outside_echo=True)
    assert (found.rogue_dns, found.outside, found.no_outside_reason) == (ROGUE, (ECHO_0, ECHO_1), "")
    deployment = Deployment({}, None, stand_ins=found)
    again = Deployment.from_state(json.loads(json.dumps(deployment.to_state())))
    assert again == deployment
    assert set(again.all_endpoints) == {ROGUE, ECHO_0, ECHO_1}


def test_a_state_written_before_stand_ins_has_none() -> None:
    old = {"endpoints": {"a/b": ["a/b", "10.0.0.1", "n"]}, "control": None}
    deployment = Deployment.from_state(old)
    assert deployment.stand_ins == StandIns()
    assert deployment.stand_ins.rogue_dns is None
    assert deployment.stand_ins.no_outside_reason == NO_OUTSIDE_ECHO


def test_the_reproduce_command_of_a_stand_in_flow_names_the_stand_in_probed(layout: TenancyLayout) -> None:
    from calico_conformance.cluster.commands import KubeAccess
    from calico_conformance.cluster.stand_ins import reproduce_command

    inbound = Flow("192.0.2.10", "customer-a/shop", 8443, "TCP")
    ping = Flow("192.0.2.10", "customer-b/sentinel", None, "ICMP")
    plan = probed_flows(_denied(inbound, ping), layout, STAND_INS, ENDPOINTS)
    every = {**ENDPOINTS, **STAND_INS.endpoints}
    access = KubeAccess(Path("/run/finland.kubeconfig"), "kind-finland")
    command = reproduce_command(inbound, plan, every, access=access, agent_path="/opt/a.py", timeout_s=1.0)
    # Sent from the echo pod on the other node, bound to its node address, to the shop's pod IP:
    assert "--namespace=cc echo-1 --" in command
    assert '"ip":"10.244.1.5"' in command
    assert '"bind":"172.18.0.4"' in command
    assert command.endswith(f"# sent from the stand-in {ECHO_1} (172.18.0.4)")
    unprobed = reproduce_command(ping, plan, every, access=access, agent_path="/opt/a.py", timeout_s=1.0)
    assert unprobed.startswith(f"# {ping} was not probed: ")
