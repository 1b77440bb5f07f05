"""The suites' reachability cases, built from the tenancy layout: one case = one matrix = one test id.

A case is data (STYLE.md, "Cases are data"): its id is the test id (`finland-customer-a-tcp-8443`), so
`-k` selects it and the report names it, and its flows are exactly the matrix the test asserts on. The
builders here decide *which* flows each promise is proven on: every workload of the namespaces
involved, both directions, every declared port, the canary ports, UDP and ICMP (a ping is traffic too: a
policy allowing ICMP between tenants breaks isolation without opening any port). What the flows *should* do is
the requirement (`requirement_matrix`, from the layout) or, where the agreement is absolute (royal-bank
isolation), a hand-stated deny that no exception in the layout can soften.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Protocol

from calico_conformance.reachability import Expectation, ExpectedMatrix, Flow
from calico_conformance.suite.tier_scenarios import tier_cases
from calico_conformance.tenancy.layout import (
    ROYAL_BANK,
    AllowedFlow,
    LayoutNamespace,
    Service,
    TenancyLayout,
    Workload,
)

ICMP = "ICMP"
ICMP_SLUG = "icmp"  # how test ids name the ICMP case, beside `tcp-8443`


@dataclass(frozen=True)
class ReachabilityCase:
    """One matrix to prove on one cluster."""

    id: str  # the test id, e.g. "finland-customer-a-tcp-8443"
    cluster: str
    flows: tuple[Flow, ...]
    summary: str  # what is being proven, in words, for the failure message

    def __str__(self) -> str:
        return self.id


@dataclass(frozen=True)
class ExceptionCase(ReachabilityCase):
    """A case proving one layout exception exact."""

    exception: AllowedFlow


def requirement_matrix(layout: TenancyLayout, flows: Iterable[Flow]) -> ExpectedMatrix:
    """What the layout requires of each flow: allowed only by an exception or the DNS requirement."""
    return ExpectedMatrix.from_function(flows, lambda flow: Expectation(*layout.requirement(flow)))


def denied_matrix(flows: Iterable[Flow], why: str) -> ExpectedMatrix:
    """Every flow denied, whatever the layout's exceptions say: for absolute promises."""
    return ExpectedMatrix.from_function(flows, lambda _: Expectation(False, why))


def flows_between(
    sources: Iterable[str], destinations: Iterable[str], services: Iterable[Service]
) -> tuple[Flow, ...]:
    """Every flow from each source to each other destination on each service, sorted."""
    return tuple(
        sorted(
            {
                Flow(source, destination, service.port, service.protocol)
                for source, destination, service in product(sources, destinations, services)
                if source != destination
            }
        )
    )


def icmp_flows_between(sources: Iterable[str], destinations: Iterable[str]) -> tuple[Flow, ...]:
    """An ICMP echo from each source to each other destination, sorted: ICMP has no port."""
    return tuple(
        sorted(
            {
                Flow(source, destination, None, ICMP)
                for source, destination in product(sources, destinations)
                if source != destination
            }
        )
    )


def _keys(workloads: Iterable[Workload]) -> list[str]:
    return [workload.key for workload in workloads]


def _services(layout: TenancyLayout, *workload_groups: Iterable[Workload]) -> list[Service]:
    """The declared ports of the workloads plus the canary ports, each once, sorted."""
    found = {service for group in workload_groups for workload in group for service in workload.ports}
    return sorted(found | set(layout.canary_services))


# --- royal-bank isolation ---------------------------------------------------------------------------


def isolation_cases(layout: TenancyLayout, clusters: Sequence[str]) -> list[ReachabilityCase]:
    """royal-bank against each other customer, one case per service, both directions."""
    royal = layout.namespace(ROYAL_BANK)
    cases = []
    for cluster, peer in product(clusters, layout.customers()):
        if peer.name == royal.name:
            continue
        for service in _services(layout, royal.workloads, peer.workloads):
            flows = flows_between(_keys(royal.workloads), _keys(peer.workloads), [service]) + flows_between(
                _keys(peer.workloads), _keys(royal.workloads), [service]
            )
            cases.append(
                ReachabilityCase(
                    id=f"{cluster}-{peer.name}-{service.slug}",
                    cluster=cluster,
                    flows=flows,
                    summary=f"{royal.name} and {peer.name} cannot reach each other on {service}",
                )
            )
        royal_keys, peer_keys = _keys(royal.workloads), _keys(peer.workloads)
        cases.append(
            ReachabilityCase(
                id=f"{cluster}-{peer.name}-{ICMP_SLUG}",
                cluster=cluster,
                flows=icmp_flows_between(royal_keys, peer_keys) + icmp_flows_between(peer_keys, royal_keys),
                summary=f"{royal.name} and {peer.name} cannot ping each other",
            )
        )
    return cases


def royal_bank_exception_cases(layout: TenancyLayout, clusters: Sequence[str]) -> list[ReachabilityCase]:
    """The exceptions royal-bank's agreement grants (their source is royal-bank)."""
    return [case for case in exception_cases(layout, clusters) if case.exception.source.namespace == ROYAL_BANK]


def other_exception_cases(layout: TenancyLayout, clusters: Sequence[str]) -> list[ReachabilityCase]:
    """Every other exception: the remaining doors in the other namespaces' default deny."""
    return [case for case in exception_cases(layout, clusters) if case.exception.source.namespace != ROYAL_BANK]


def exception_cases(layout: TenancyLayout, clusters: Sequence[str]) -> list[ExceptionCase]:
    """Each exception's sources against everything near its destination, on its ports and the rest.

    For an in-cluster destination: every workload of the destination namespace, on every port they
    declare. For `outside`: the outside addresses, and the outsider's sentinel (an in-cluster receiver
    that accepts everything), which an exception to the outside must not open.
    """
    cases: list[ExceptionCase] = []
    for cluster, exception in product(clusters, layout.exceptions):
        sources = [w.key for w in layout.all_workloads if exception.source.covers(w.key, layout)]
        destination = _destination_namespace(layout, exception)
        if destination is not None:
            destinations = _keys(destination.workloads)
            services = sorted(set(_services(layout, destination.workloads)) | set(exception.services))
            rest = f"nothing else in {destination.name}"
        else:
            receivers = layout.outsider.workloads if layout.outsider else ()
            destinations = [str(address) for address in layout.outside_addresses] + _keys(receivers)
            services = sorted(set(exception.services) | set(layout.canary_services))
            rest = "no other port, and no pod"
        cases.append(
            ExceptionCase(
                id=f"{cluster}-{exception.name}",
                cluster=cluster,
                flows=flows_between(sources, destinations, services),
                summary=(
                    f"exception {exception.name} opens {exception.destination} on "
                    f"{', '.join(map(str, exception.services))} and {rest}"
                ),
                exception=exception,
            )
        )
    return cases


def _destination_namespace(layout: TenancyLayout, exception: AllowedFlow) -> LayoutNamespace | None:
    if exception.destination.outside or exception.destination.namespace is None:
        return None
    return layout.namespace(exception.destination.namespace)


# --- default deny -----------------------------------------------------------------------------------


def default_deny_cases(layout: TenancyLayout, clusters: Sequence[str]) -> list[ReachabilityCase]:
    """Every workload of each namespace (not only its sentinel): nothing reaches it, and it reaches
    nothing outside the tenancy.

    A policy may open one workload rather than every pod of a namespace: to the outsider's pods, to an
    outside network, to a platform namespace. So each workload is the destination of every source class
    (every other pod, every outside address) on its own ports and the canary ports (which the probe
    surface widens to every port where the policy set or the layout changes its mind), and the source
    towards the outsider's pods and the outside addresses. Its flows to the other tenancy namespaces are
    those namespaces' inbound flows, in their own case: a flow is one flow whichever case probes it. The
    internet is no exception: a rule admitting some outside network is a hole in the namespace's ingress
    deny."""
    cases = []
    outside_addresses = [str(address) for address in layout.outside_addresses]
    receivers = layout.outsider.workloads if layout.outsider else ()
    for cluster, namespace in product(clusters, layout.namespaces):
        local = _keys(namespace.workloads)
        flows: set[Flow] = set()
        for workload in namespace.workloads:
            senders = [w.key for w in layout.all_workloads if w.key != workload.key] + outside_addresses
            flows.update(flows_between(senders, [workload.key], _services(layout, [workload])))
            for receiver in receivers:
                flows.update(flows_between([workload.key], [receiver.key], _services(layout, [receiver])))
            flows.update(flows_between([workload.key], outside_addresses, layout.canary_services))
        everyone = [w.key for w in layout.all_workloads] + outside_addresses
        outwards = _keys(receivers) + outside_addresses
        pings = icmp_flows_between(everyone, local) + icmp_flows_between(local, outwards)
        cases.append(
            ReachabilityCase(
                id=f"{cluster}-{namespace.name}",
                cluster=cluster,
                flows=tuple(sorted(flows | set(pings))),
                summary=f"no workload of {namespace.name} can be reached, nor reach outside the tenancy, "
                "apart from the layout's exceptions",
            )
        )
    return cases


# --- DNS --------------------------------------------------------------------------------------------


def _dns_clients(layout: TenancyLayout, namespace: LayoutNamespace) -> list[str]:
    """The namespace's workloads, less the DNS server itself (it forwards upstream by design)."""
    return [w.key for w in namespace.workloads if w.key != layout.dns.server]


def dns_reach_cases(layout: TenancyLayout, clusters: Sequence[str]) -> list[ReachabilityCase]:
    """Every workload of each namespace that must resolve, to the DNS server on each DNS port."""
    return [
        ReachabilityCase(
            id=f"{cluster}-{namespace.name}",
            cluster=cluster,
            flows=flows_between(_dns_clients(layout, namespace), [layout.dns.server], layout.dns.services),
            summary=f"{namespace.name} resolves names through {layout.dns.server} on "
            + " and ".join(map(str, layout.dns.services)),
        )
        for cluster, namespace in product(clusters, layout.namespaces)
        if namespace.resolves_dns
    ]


def other_dns_cases(layout: TenancyLayout, clusters: Sequence[str]) -> list[ReachabilityCase]:
    """Each namespace to every other DNS server: the listed ones, any outside address and every other workload."""
    cases = []
    for cluster, namespace in product(clusters, layout.namespaces):
        clients = _dns_clients(layout, namespace)
        if not clients:
            continue
        # The listed rogue servers, every outside address (a resolver on the internet is another DNS
        # server too) and every pod.
        others = [str(address) for address in (*layout.dns.other_servers, *layout.outside_addresses)]
        others += [w.key for w in layout.all_workloads if w.key != layout.dns.server]
        cases.append(
            ReachabilityCase(
                id=f"{cluster}-{namespace.name}",
                cluster=cluster,
                flows=flows_between(clients, others, layout.dns.services),
                summary=f"{namespace.name} reaches no DNS server but {layout.dns.server}",
            )
        )
    return cases


def non_dns_cases(layout: TenancyLayout, clusters: Sequence[str]) -> list[ReachabilityCase]:
    """Each namespace to the DNS server on its other ports, and out on the canary ports."""
    server = layout.workload(layout.dns.server)
    cases = []
    for cluster, namespace in product(clusters, layout.namespaces):
        clients = _dns_clients(layout, namespace)
        if not clients:
            continue
        # A namespace that need not resolve may not reach the DNS ports either.
        server_services = _services(layout, [server])
        if namespace.resolves_dns:
            server_services = [s for s in server_services if s not in layout.dns.services]
        outside = [str(address) for address in layout.outside_addresses]
        cases.append(
            ReachabilityCase(
                id=f"{cluster}-{namespace.name}",
                cluster=cluster,
                flows=flows_between(clients, [server.key], server_services)
                + flows_between(clients, outside, layout.canary_services),
                summary=f"{namespace.name} has no egress beyond DNS: not to {server.key}'s other ports, "
                "not outside",
            )
        )
    return cases


# --- guardrails ---------------------------------------------------------------------------------------


def guardrail_cases(layout: TenancyLayout, clusters: Sequence[str]) -> list[ReachabilityCase]:
    """Each pair of customer namespaces: every workload of one to every workload of the other, both
    ways, on every port either listens on or the canaries probe, and ICMP. Judged on the oracle's
    explanation (`guardrails.py`), not on probes."""
    cases = []
    customers = layout.customers()
    for cluster in clusters:
        for index, first in enumerate(customers):
            for second in customers[index + 1 :]:
                one, other = _keys(first.workloads), _keys(second.workloads)
                services = _services(layout, first.workloads, second.workloads)
                flows = flows_between(one, other, services) + flows_between(other, one, services)
                flows += icmp_flows_between(one, other) + icmp_flows_between(other, one)
                cases.append(
                    ReachabilityCase(
                        id=f"{cluster}-{first.name}-{second.name}",
                        cluster=cluster,
                        flows=flows,
                        summary=f"{first.name} and {second.name} are kept apart by the first tier",
                    )
                )
    return cases


# --- the registry the `cases` marker names ------------------------------------------------------------


class Case(Protocol):
    """What the plugin needs of a case to parametrise a test with it."""

    @property
    def id(self) -> str: ...

    @property
    def cluster(self) -> str: ...


CaseBuilder = Callable[[TenancyLayout, Sequence[str]], Sequence[Case]]

# `@pytest.mark.cases("royal-bank-isolation")` parametrises a test's `cluster` and `case` arguments with
# the cases of this builder, ids included.
CASE_BUILDERS: Mapping[str, CaseBuilder] = {
    "royal-bank-isolation": isolation_cases,
    "royal-bank-exceptions": royal_bank_exception_cases,
    "customer-guardrails": guardrail_cases,
    "other-exceptions": other_exception_cases,
    "default-deny": default_deny_cases,
    "dns-reach": dns_reach_cases,
    "dns-other-servers": other_dns_cases,
    "dns-non-dns-egress": non_dns_cases,
    "tier-scenarios": lambda _layout, clusters: tier_cases(clusters),
}
