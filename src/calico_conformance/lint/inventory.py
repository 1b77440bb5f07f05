"""What the inventory-based checks enumerate: the layout's pods, a few outside addresses, a set of transports.

"Matches nothing", "shadowed", "one-sided" and "DNS blocked" are statements about *all* traffic, which
cannot be enumerated. The linter approximates all traffic by a representative sample, stated here once:

* **endpoints**: every layout workload as a pod (the sentinel stands for "any pod of the namespace"),
  addressed as `workloads.layout_pods` addresses them in `POD_SUBNET`; plus outside addresses: the
  layout's canary and DNS addresses, and one address inside every IPv4 CIDR a rule or network set names
  (IPv6 CIDRs are left out: every layout pod is IPv4, and a flow never mixes the two);
* **transports**: TCP, UDP and SCTP on every port a workload declares, the canary and DNS ports and both
  ends of every port range a rule names (with that rule's protocol), and an ICMP echo request.

A finding is therefore "in the sample": a rule reported as shadowed may still decide a flow on a port
or address the sample lacks. The sample is chosen so that every port and CIDR a rule names is in it,
which makes that case rare, but the finding says "every flow it matches here", not "ever".
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from calico_conformance.oracle.endpoints import AddressView
from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.model import (
    PROTOCOL_NAMES,
    IPAddress,
    IPNetwork,
    Pod,
    PortRange,
    ResourceSet,
    Rule,
)
from calico_conformance.oracle.rules import PROBE_PROTOCOLS, Transport
from calico_conformance.tenancy.layout import Service, TenancyLayout
from calico_conformance.tenancy.workloads import layout_namespaces, layout_pods

# The pod CIDR the layout's pods are placed in: finland's (kind-configs/finland.yaml), also kind's
# default. A rule's `nets` written for another cluster's CIDR then matches no pod, as it would there.
POD_SUBNET: IPNetwork = ipaddress.ip_network("10.244.0.0/16")
PORT_PROTOCOLS = ("TCP", "UDP", "SCTP")


@dataclass(frozen=True)
class Peer:
    """One endpoint of the sample: a layout pod or an address outside the cluster."""

    view: AddressView
    pod: Pod | None

    @property
    def name(self) -> str:
        """`namespace/pod` or the IP literal, as flows name endpoints."""
        return self.pod.key if self.pod is not None else str(self.view.ip)


def listens(pod: Pod, transport: Transport) -> bool:
    """Whether the pod has a container port for this transport (a flow anywhere else reaches nobody)."""
    protocol = PROTOCOL_NAMES.get(transport.protocol)
    return any(port.port == transport.port and port.protocol == protocol for port in pod.ports)


def describe(transport: Transport) -> str:
    """`53/UDP`, or `ICMP` for the echo request."""
    protocol = PROTOCOL_NAMES.get(transport.protocol, str(transport.protocol))
    if transport.port is None:
        return "ICMP" if protocol.startswith("ICMP") else protocol
    return f"{transport.port}/{protocol}"


class Inventory:
    """The layout's endpoints as the oracle sees them, the outside addresses and the transports to try."""

    def __init__(self, layout: TenancyLayout, resources: ResourceSet, oracle: Oracle) -> None:
        self.layout = layout
        self.oracle = oracle
        pods = oracle.pods
        self.pod_index = {pod.key: index for index, pod in enumerate(pods)}
        outside = _outside_addresses(layout, resources, {pod.ip for pod in pods})
        self.peers: tuple[Peer, ...] = tuple(
            Peer(oracle.endpoints.view(pod.ip), pod) for pod in pods
        ) + tuple(Peer(oracle.endpoints.view(ip), None) for ip in outside)
        self.transports: tuple[Transport, ...] = tuple(_transports(layout, resources))

    @classmethod
    def build(
        cls, layout: TenancyLayout, resources: ResourceSet, calico_version: str
    ) -> tuple[Inventory, Oracle]:
        """The oracle over the layout's pods (non-strict: what it cannot judge lands in `problems`)."""
        oracle = Oracle(
            namespaces=layout_namespaces(layout),
            pods=layout_pods(layout, POD_SUBNET),
            resources=resources,
            calico_version=calico_version,
            strict=False,
        )
        return cls(layout, resources, oracle), oracle

    @property
    def pods(self) -> tuple[Pod, ...]:
        return tuple(peer.pod for peer in self.peers if peer.pod is not None)

    def peer_of(self, name: str) -> int:
        """The index of the peer `namespace/pod` or IP literal."""
        if name in self.pod_index:
            return self.pod_index[name]
        for index, peer in enumerate(self.peers):
            if peer.name == name:
                return index
        raise KeyError(name)

    def transport(self, service: Service) -> Transport:
        return Transport.of(service.protocol, service.port, 4)


def _rules(resources: ResourceSet) -> Iterator[Rule]:
    for policy in resources.policies:
        yield from policy.ingress
        yield from policy.egress


def _representative(net: IPNetwork) -> IPAddress:
    """An address inside `net` that is not its network address when there is a choice."""
    return net.network_address + 1 if net.num_addresses > 2 else net.network_address


def _outside_addresses(
    layout: TenancyLayout, resources: ResourceSet, pod_ips: set[IPAddress]
) -> list[IPAddress]:
    nets: list[IPNetwork] = [net for s in resources.network_sets for net in s.nets]
    for rule in _rules(resources):
        for side in (rule.source, rule.destination):
            nets += side.nets + side.not_nets
    candidates: Iterable[IPAddress] = (
        *layout.outside_addresses,
        *layout.dns.other_servers,
        *(_representative(net) for net in nets),
    )
    chosen = dict.fromkeys(ip for ip in candidates if ip.version == 4 and ip not in pod_ips)
    return list(chosen)


def _transports(layout: TenancyLayout, resources: ResourceSet) -> Iterator[Transport]:
    services: set[tuple[str, int]] = {
        (service.protocol, service.port)
        for service in (
            *(s for workload in layout.workloads for s in workload.ports),
            *layout.canary_services,
            *layout.dns.services,
        )
    }
    for rule in _rules(resources):
        protocol = PROTOCOL_NAMES.get(rule.protocol) if rule.protocol is not None else None
        protocols = (protocol,) if protocol in PORT_PROTOCOLS else PORT_PROTOCOLS
        # Source ports are matched against the ephemeral range, not the transport: only destinations.
        for listed in rule.destination.ports + rule.destination.not_ports:
            if isinstance(listed, PortRange):
                services.update((p, n) for p in protocols for n in {listed.first, listed.last})
    for protocol, number in sorted(services):
        if protocol in PROBE_PROTOCOLS:
            yield Transport.of(protocol, number, 4)
    yield Transport.of("ICMP", None, 4)
