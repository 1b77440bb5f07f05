"""Coverage, stated: every equivalence class of (source, destination, port) under the policy set and the
layout, and which of them the run probed.

Hand-picked cases can miss a door; the argument that nothing is missed is a count. Two flows are in
the same class when nothing can tell them apart:

* ports: within a stretch of ports on which neither the policy set nor the layout changes its mind
  (`surface.port_stretches`), every port behaves alike; ICMP is one class of its own;
* ends: two pods (or two outside addresses) are alike when no selector, rule CIDR, network set or named
  port of the policy set tells them apart on that port (the oracle's own grouping, `endpoint_classes`)
  *and* the layout's requirement treats them alike (the same exceptions cover them on the same side,
  the same DNS duty).

The universe is every ordered pair of distinct ends the run knows (the layout's workloads on the
cluster, widened by the probe surface, and its outside addresses) with at least one end in a tenancy
namespace (nothing is promised between the outsider's pods and the internet), on every port of every
probed protocol. A class is probed when some flow the run asked about falls in it. The static target
asks about all of them; a live target needs one flow per class.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import product

from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.grouping import endpoint_classes
from calico_conformance.oracle.model import IPAddress, ResourceSet
from calico_conformance.oracle.rules import Transport
from calico_conformance.reachability import Flow
from calico_conformance.tenancy.model import TenancyLayout
from calico_conformance.tenancy.surface import port_stretches

ICMP = "ICMP"
PortClass = tuple[str, int]  # (protocol, first port of the stretch); ("ICMP", 0) for ICMP
ClassKey = tuple[PortClass, object, object]
EXAMPLES = 5  # unprobed classes named in the summary


@dataclass(frozen=True)
class Coverage:
    """How many classes one cluster's flows fall into, and how many of them the run probed."""

    cluster: str
    classes: int
    probed: int
    unprobed_examples: tuple[str, ...] = ()  # one flow of some unprobed classes

    @property
    def complete(self) -> bool:
        return self.probed == self.classes

    def summary(self) -> str:
        if self.complete:
            return f"{self.cluster}: {self.classes} classes, all probed"
        missing = self.classes - self.probed
        examples = "; ".join(self.unprobed_examples)
        return f"{self.cluster}: {self.classes} classes, {missing} not probed, e.g. {examples}"


class FlowClasses:
    """The class of any flow between the ends of one cluster's oracle, and the universe of classes."""

    def __init__(self, oracle: Oracle, layout: TenancyLayout, resources: ResourceSet) -> None:
        self.layout = layout
        self.stretches = port_stretches(resources, layout)
        self.pods = oracle.pods
        self.addresses: tuple[IPAddress, ...] = tuple(
            dict.fromkeys((*layout.outside_addresses, *layout.dns.other_servers))
        )
        self._oracle = oracle
        self._ends: dict[PortClass, dict[str, object]] = {}
        self._identity = {pod.key: self._requirement_identity(pod.key) for pod in self.pods}
        self._identity.update({str(a): self._requirement_identity(str(a)) for a in self.addresses})
        outsider = layout.outsider.name if layout.outsider else None
        self._tenancy = {pod.key for pod in self.pods if pod.namespace != outsider}

    def port_classes(self) -> list[PortClass]:
        found: list[PortClass] = [(protocol, first) for protocol, firsts in self.stretches.items() for first in firsts]
        return [*found, (ICMP, 0)]

    def port_class(self, flow: Flow) -> PortClass:
        if flow.protocol == ICMP or flow.port is None:
            return (ICMP, 0)
        firsts = self.stretches.get(flow.protocol, (1,))
        return (flow.protocol, firsts[bisect_right(firsts, flow.port) - 1])

    def key(self, flow: Flow) -> ClassKey:
        port = self.port_class(flow)
        ends = self._end_classes(port)
        return (port, ends[flow.source], ends[flow.destination])

    def in_universe(self, flow: Flow) -> bool:
        """A flow between two distinct ends, at least one of them a tenancy pod (so never two addresses)."""
        return flow.source != flow.destination and (flow.source in self._tenancy or flow.destination in self._tenancy)

    def universe(self) -> dict[ClassKey, Flow]:
        """Every class the ends and ports fall into, each with one flow of it (its first port)."""
        ends = [pod.key for pod in self.pods] + [str(address) for address in self.addresses]
        pairs = [
            (source, destination)
            for source, destination in product(ends, ends)
            if source != destination and (source in self._tenancy or destination in self._tenancy)
        ]
        found: dict[ClassKey, Flow] = {}
        for port in self.port_classes():
            classes = self._end_classes(port)
            number = None if port[0] == ICMP else port[1]
            for source, destination in pairs:
                key = (port, classes[source], classes[destination])
                if key not in found:
                    found[key] = Flow(source, destination, number, port[0])
        return found

    def _end_classes(self, port: PortClass) -> dict[str, object]:
        found = self._ends.get(port)
        if found is None:
            protocol, number = port
            transport = Transport.of(protocol, None if protocol == ICMP else number, 4)
            pod_classes, address_classes = endpoint_classes(
                self._oracle.endpoints, self._oracle.tiers, self.pods, self.addresses, transport
            )
            found = {pod.key: (cls, self._identity[pod.key]) for pod, cls in zip(self.pods, pod_classes, strict=True)}
            found.update(
                {str(a): (cls, self._identity[str(a)]) for a, cls in zip(self.addresses, address_classes, strict=True)}
            )
            self._ends[port] = found
        return found

    def _requirement_identity(self, end: str) -> tuple[object, ...]:
        """What the layout's requirement reads of one end: the exceptions covering it on either side,
        whether it is the DNS server, and whether its namespace must resolve."""
        layout = self.layout
        outside = _is_address(end)
        namespace = None if outside else end.partition("/")[0]
        resolves = bool(namespace) and any(n.name == namespace and n.resolves_dns for n in layout.all_namespaces)
        return (
            outside,
            tuple(exception.source.covers(end, layout) for exception in layout.exceptions),
            tuple(exception.destination.covers(end, layout) for exception in layout.exceptions),
            end == layout.dns.server,
            resolves,
        )


def _is_address(end: str) -> bool:
    try:
        ipaddress.ip_address(end)
    except ValueError:
        return False
    return True


def representatives(classes: FlowClasses, flows: Iterable[Flow]) -> tuple[Flow, ...]:
    """The first of `flows` in each class they fall into, in their order: what a live target must probe at
    least to keep the coverage of all of `flows` (flows of unknown ends are kept as they are)."""
    known = {pod.key for pod in classes.pods} | {str(address) for address in classes.addresses}
    seen: set[ClassKey] = set()
    chosen: list[Flow] = []
    for flow in flows:
        if flow.source in known and flow.destination in known:
            key = classes.key(flow)
            if key in seen:
                continue
            seen.add(key)
        chosen.append(flow)
    return tuple(chosen)


def coverage(cluster: str, classes: FlowClasses, probed: Iterable[Flow]) -> Coverage:
    """How many of the universe's classes the `probed` flows fall into (flows of unknown ends ignored)."""
    universe = classes.universe()
    known = {pod.key for pod in classes.pods} | {str(address) for address in classes.addresses}
    hit = {classes.key(flow) for flow in set(probed) if flow.source in known and flow.destination in known}
    missing = [flow for key, flow in universe.items() if key not in hit]
    return Coverage(
        cluster,
        len(universe),
        len(universe) - len(missing),
        tuple(str(flow) for flow in missing[:EXAMPLES]),
    )


def coverage_by_cluster(
    oracles: Mapping[str, Oracle], layout: TenancyLayout, resources: ResourceSet, probed: Iterable[tuple[str, Flow]]
) -> tuple[Coverage, ...]:
    """`coverage` of each cluster's oracle against the (cluster, flow) pairs the run probed."""
    flows: dict[str, list[Flow]] = {cluster: [] for cluster in oracles}
    for cluster, flow in probed:
        if cluster in flows:
            flows[cluster].append(flow)
    return tuple(
        coverage(cluster, FlowClasses(oracle, layout, resources), flows[cluster]) for cluster, oracle in oracles.items()
    )
