"""DNS probes against dnsmasq: an answer, NXDOMAIN, a dropped resolver and a refused port, over UDP and TCP.

dnsmasq runs in the `kube-system/dns` pod with one record (`DNS_RECORD` -> tenant-a/web-2's IP) and
authority over `DNS_DOMAIN`, so any other name there is NXDOMAIN; nothing is forwarded anywhere.

SERVFAIL is not tested here because dnsmasq 2.90 will not produce it within a probe's timeout: a zone
forwarded (`--server=/zone/IP`) to a lab address where nothing listens gets no answer at all (its upstream
sockets are unconnected, so the ICMP port unreachable never reaches it; a 25 s probe saw only silence over
UDP and a closed connection over TCP), an upstream it cannot even send to (255.255.255.255) gets REFUSED,
and forwarding to itself gets NXDOMAIN. The agent's reading of a SERVFAIL rcode is covered by the wire
tests in `tests/unit/test_probe_agent_wire.py`.
"""

from __future__ import annotations

import pytest
from lab_layout import DNS_DOMAIN, DNS_RECORD, PROBE_TIMEOUT_S, Policy

from calico_conformance.probe.jobs import dns_job
from calico_conformance.probe.netns_executor import NetnsExecutor
from calico_conformance.probe.netns_lab import NetnsLab

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("dns_server")]

TRANSPORTS = ["udp", "tcp"]


def _ask(
    lab: NetnsLab, executor: NetnsExecutor, name: str, transport: str, **options: object
) -> dict[str, object]:
    server = options.pop("server", lab.pods["kube-system/dns"].ip)
    job = dns_job("q", name, transport=transport, server=server, timeout_s=PROBE_TIMEOUT_S, **options)  # type: ignore[arg-type]
    [result] = executor.run_batch(lab.pods["tenant-a/web-1"].netns, [job], deadline_s=10)
    return result


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_known_name_is_answered_with_its_address(
    lab: NetnsLab, executor: NetnsExecutor, transport: str
) -> None:
    result = _ask(lab, executor, DNS_RECORD, transport)
    assert (result["verdict"], result["outcome"], result["rcode"]) == ("allowed", "answer", "NOERROR"), result
    assert result["addresses"] == [lab.pods["tenant-a/web-2"].ip]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unknown_name_is_nxdomain(lab: NetnsLab, executor: NetnsExecutor, transport: str) -> None:
    result = _ask(lab, executor, f"nobody.{DNS_DOMAIN}", transport)
    assert (result["verdict"], result["outcome"], result["addresses"]) == ("allowed", "nxdomain", []), result


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_dropped_resolver_is_dropped(
    lab: NetnsLab, executor: NetnsExecutor, policy: Policy, transport: str
) -> None:
    policy(
        [
            f"ip saddr {lab.pods['tenant-a/web-1'].ip} ip daddr {lab.pods['kube-system/dns'].ip} {transport} dport 53 drop"
        ]
    )
    result = _ask(lab, executor, DNS_RECORD, transport)
    assert (result["verdict"], result["outcome"], result["rcode"]) == ("dropped", "dropped", None), result
    other = "tcp" if transport == "udp" else "udp"
    assert _ask(lab, executor, DNS_RECORD, other)["outcome"] == "answer"  # only one transport was dropped


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_port_without_resolver_is_rejected(lab: NetnsLab, executor: NetnsExecutor, transport: str) -> None:
    result = _ask(lab, executor, DNS_RECORD, transport, port=5353)
    assert (result["verdict"], result["outcome"]) == ("rejected", "rejected"), result


def test_resolver_defaults_to_resolv_conf(lab: NetnsLab, executor: NetnsExecutor) -> None:
    result = _ask(lab, executor, DNS_RECORD, "udp", server=None)
    assert result["server"] == f"{lab.pods['kube-system/dns'].ip}:53"
    assert result["addresses"] == [lab.pods["tenant-a/web-2"].ip]


def test_a_flow_to_a_foreign_resolver_is_a_dns_query_that_any_answer_proves(
    lab: NetnsLab, executor: NetnsExecutor, dns_server: str, policy: Policy
) -> None:
    # Issue 9, item 11: kind's upstream resolver (Docker's embedded DNS) sends no identity; a flow to it is
    # probed with an A query, over the flow's protocol. dnsmasq stands in for it here.
    from calico_conformance.probe.runner import ProbeEndpoint, run_matrix
    from calico_conformance.reachability import Expectation, ExpectedMatrix, Flow, ProbeVerdict

    resolver = "upstream/resolver"
    endpoints = {**lab.endpoints(), resolver: ProbeEndpoint("", dns_server, None, dns_name=DNS_RECORD)}
    flows = {protocol: Flow("tenant-a/web-1", resolver, 53, protocol) for protocol in ("UDP", "TCP")}
    expected = ExpectedMatrix(dict.fromkeys(flows.values(), Expectation(True)))
    result = run_matrix(executor, endpoints, expected, timeout_s=PROBE_TIMEOUT_S, converge_timeout_s=8.0,
                        round_interval_s=0.05)  # fmt: skip
    assert result.ok, result.comparison().render()
    policy([f"ip daddr {dns_server} udp dport 53 drop"])
    blocked = run_matrix(executor, endpoints, expected, timeout_s=PROBE_TIMEOUT_S, converge_timeout_s=1.5,
                         round_interval_s=0.05)  # fmt: skip
    assert blocked.observed[flows["UDP"]].verdict is not ProbeVerdict.ALLOWED  # the query went unanswered
    assert blocked.observed[flows["TCP"]].verdict is ProbeVerdict.ALLOWED
    assert not blocked.comparison().ok
