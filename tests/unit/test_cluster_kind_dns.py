"""kind's DNS rewrite against the reference `platform.kube-dns` egress rule (issue 9, item 11).

kubernetes-sigs/kind v0.27.0 images/base/files/usr/local/bin/entrypoint:446-476: the node's
/etc/resolv.conf names the Docker host (or the kind network's gateway) instead of Docker's embedded DNS
127.0.0.11, and iptables DNATs that address's port 53 back to 127.0.0.11 on Docker's own port — for pod
traffic too (line 464 adds the PREROUTING jump; /etc/sysctl.d/10-network-magic.conf sets route_localnet
so the loopback destination is routable). CoreDNS forwards to that resolver, and Calico's policy sees the
query after the DNAT. The oracle below judges both forms of the same query with the reference policies.
"""

from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path

import pytest

from calico_conformance.cluster.kind import first_nameserver
from calico_conformance.cluster.stand_ins import UPSTREAM_DNS, StandIns, probed_flows, upstream_resolver
from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.loader import load_manifests
from calico_conformance.probe.runner import ProbeEndpoint, plan_round
from calico_conformance.reachability import Expectation, ExpectedMatrix, Flow
from calico_conformance.tenancy.layout import TenancyLayout, load_layout
from calico_conformance.tenancy.workloads import layout_namespaces, layout_pods

REPO = Path(__file__).resolve().parents[2]
KUBE_DNS = "kube-system/kube-dns"
DOCKER_HOST = "172.18.0.1"  # the kind network's gateway, what the node's resolv.conf names after the rewrite
EMBEDDED_DNS = "127.0.0.11"  # Docker's embedded DNS, where the DNAT sends the query
EMBEDDED_PORT = 36715  # Docker picks it per container; any port but 53


@pytest.fixture(scope="module")
def layout() -> TenancyLayout:
    return load_layout(REPO / "policies" / "tenancy.yaml")


def _oracle(layout: TenancyLayout) -> Oracle:
    pods = list(layout_pods(layout, IPv4Network("10.244.0.0/16")))
    return Oracle(namespaces=list(layout_namespaces(layout)), pods=pods,
                  resources=load_manifests([REPO / "policies" / "reference"]))  # fmt: skip


def test_the_reference_rule_admits_the_query_as_coredns_sends_it_but_not_as_calico_sees_it_on_kind(
    layout: TenancyLayout,
) -> None:
    oracle = _oracle(layout)
    as_sent = Flow(KUBE_DNS, DOCKER_HOST, 53, "TCP")
    after_dnat = Flow(KUBE_DNS, EMBEDDED_DNS, EMBEDDED_PORT, "TCP")
    assert oracle.verdict_for(as_sent).allowed  # `notSelector: all()`, ports [53]
    assert not oracle.verdict_for(after_dnat).allowed  # the port is Docker's, not 53: default deny


def test_on_kind_the_dns_servers_53_to_outside_is_a_query_to_its_real_upstream(layout: TenancyLayout) -> None:
    echo = "cc-r1-control/outside-echo-1"
    echo_endpoint = ProbeEndpoint("cc-r1-control/echo-1", "172.18.0.4", "w2", "172.18.0.4")
    stand_ins = StandIns({echo: echo_endpoint, UPSTREAM_DNS: upstream_resolver(DOCKER_HOST, "finland")},
                         None, (echo,), "", upstream_dns=UPSTREAM_DNS)  # fmt: skip
    endpoints = {KUBE_DNS: ProbeEndpoint(KUBE_DNS, "10.244.1.20", "w1")}
    outside = str(layout.outside_addresses[0])
    tcp, udp, api = (Flow(KUBE_DNS, outside, 53, "TCP"), Flow(KUBE_DNS, outside, 53, "UDP"),
                     Flow(KUBE_DNS, outside, 6443, "TCP"))  # fmt: skip
    expected = ExpectedMatrix({flow: Expectation(True, "exception") for flow in (tcp, udp, api)})
    plan = probed_flows(expected, layout, stand_ins, endpoints)
    assert plan.probed_as[tcp] == Flow(KUBE_DNS, UPSTREAM_DNS, 53, "TCP")  # through kind's DNAT
    assert plan.probed_as[udp] == Flow(KUBE_DNS, UPSTREAM_DNS, 53, "UDP")
    assert plan.probed_as[api].destination == echo  # not a DNS flow: the outside echo
    every = {**endpoints, **stand_ins.endpoints}
    batch = plan_round(every, plan.expected, timeout_s=1.0).batches[KUBE_DNS]
    queries = {(p.job["transport"], p.job["server"], p.job["name"], p.expected_server) for p in batch if p.job["kind"] == "dns"}
    assert queries == {("udp", DOCKER_HOST, "finland-control-plane", None), ("tcp", DOCKER_HOST, "finland-control-plane", None)}
    without = probed_flows(expected, layout, StandIns({echo: echo_endpoint}, None, (echo,), ""), endpoints)
    assert without.probed_as[tcp].destination == echo  # kubeconfig clusters: no kind rewrite to probe


def test_the_upstream_is_the_first_nameserver_of_the_rewritten_resolv_conf() -> None:
    rewritten = "search local\nnameserver 172.18.0.1\noptions edns0 trust-ad ndots:0\n"
    assert first_nameserver(rewritten) == "172.18.0.1"
    assert first_nameserver("search local\n") is None
