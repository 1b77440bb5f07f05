"""Fixtures of the real-dataplane tests: one lab of network namespaces shared by the session.

The lab stands in for a cluster: two nodes joined by VXLAN, pods in three tenants, a DNS pod running
dnsmasq, two pods whose MTU ignores the encapsulation, and a pod with no server at all. Tests change it
only through fixtures that undo their change (policies, link state, the path-MTU cache), so test order
does not matter. Without root, `ip` or `nft` every test here is skipped with that reason, never silently.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator

import pytest

from calico_conformance.probe.jobs import connect_job
from calico_conformance.probe.netns_executor import NetnsExecutor
from calico_conformance.probe.netns_lab import (
    NetnsLab,
    missing_requirements,
    netns_lab,
    sctp_unsupported_reason,
)
from tests.netns.lab_layout import (
    DNS_DOMAIN,
    DNS_RECORD,
    LAB_PODS,
    NO_AGENT,
    PROBE_TIMEOUT_S,
    SERVE_TCP,
    SERVE_UDP,
    Policy,
    Probe,
)


@pytest.fixture(scope="session")
def lab() -> Iterator[NetnsLab]:
    """The session's lab: every pod but dns and idle serves TCP/UDP 80 and 81 (and SCTP 80 if the kernel can)."""
    reason = missing_requirements()
    if reason is not None:
        pytest.skip(reason)
    with netns_lab(LAB_PODS) as built:
        sctp = () if sctp_unsupported_reason() else (80,)
        for key in built.pods:
            if key not in NO_AGENT:
                built.serve(key, tcp=SERVE_TCP, udp=SERVE_UDP, sctp=sctp)
        yield built


@pytest.fixture(scope="session")
def dns_server(lab: NetnsLab) -> str:
    """dnsmasq in kube-system/dns (tenant-a/web-1's resolver): DNS_RECORD answers, the rest of DNS_DOMAIN
    is NXDOMAIN. Returns its IP."""
    if shutil.which("dnsmasq") is None:
        pytest.skip("the DNS tests need dnsmasq (Debian: apt-get install dnsmasq-base)")
    dns = lab.pods["kube-system/dns"]
    lab.start_dnsmasq(dns.key, domain=DNS_DOMAIN, records={DNS_RECORD: lab.pods["tenant-a/web-2"].ip})
    lab.use_resolver("tenant-a/web-1", dns.ip)
    return dns.ip


@pytest.fixture(scope="session")
def executor() -> NetnsExecutor:
    """The executor every test probes through: the agent in the source pod's namespace."""
    return NetnsExecutor()


@pytest.fixture
def policy(lab: NetnsLab) -> Iterator[Policy]:
    """Install nftables rules in both nodes' forward hook for this test; removed afterwards."""
    table = "cc_test_policy"
    yield lambda rules: lab.apply_policy(table, rules)
    lab.remove_policy(table)


@pytest.fixture
def probe(lab: NetnsLab, executor: NetnsExecutor) -> Probe:
    """Run one connect job from pod `source` to pod `destination`; returns the agent's result."""

    def run(
        source: str, destination: str, port: int, protocol: str, timeout_s: float = PROBE_TIMEOUT_S
    ) -> dict[str, object]:
        job = connect_job("only", lab.pods[destination].ip, port, protocol, timeout_s=timeout_s)
        [result] = executor.run_batch(lab.pods[source].netns, [job], deadline_s=10)
        return result

    return run


@pytest.fixture
def take_offline(lab: NetnsLab) -> Iterator[Callable[[str], None]]:
    """Bring a pod's eth0 down for this test (its server is then unreachable); brought back afterwards."""
    offline: list[str] = []

    def down(key: str) -> None:
        lab.set_link(key, up=False)
        offline.append(key)

    yield down
    for key in offline:
        lab.set_link(key, up=True)


@pytest.fixture
def fresh_path_mtu(lab: NetnsLab) -> Iterator[None]:
    """The big pods forget every path MTU they learned, before and after the test."""
    big_pods = [key for key, pod in lab.pods.items() if pod.spec.namespace == "mtu"]
    for key in big_pods:
        lab.forget_path_mtu(key)
    yield
    for key in big_pods:
        lab.forget_path_mtu(key)


@pytest.fixture
def pmtu_black_hole(lab: NetnsLab, fresh_path_mtu: None) -> Iterator[str]:
    """node1 drops the ICMP "fragmentation needed" it would send: a path-MTU black hole; yields the node."""
    lab.suppress_fragmentation_needed("node1")
    yield "node1"
    lab.restore_fragmentation_needed("node1")
