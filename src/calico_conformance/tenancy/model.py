"""The tenancy layout as data: namespaces, workloads, exceptions, DNS, tiers, networks, and the requirement.

The policy set says what Calico *will* do; the layout says what the tenancy agreement *requires*: which
namespaces exist and who they belong to, the workloads the probes stand in for, the few cross-namespace
flows that must be allowed (`exceptions`), which namespaces must resolve cluster DNS, the intended tier
order and each cluster's network MTU. Everything not listed as allowed must be denied:
`TenancyLayout.requirement` says so for any flow. Reading the file is `layout.py`'s job.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from calico_conformance.oracle.errors import Location
from calico_conformance.oracle.model import IPAddress, Labels
from calico_conformance.reachability import Flow

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # the API server adds it to every namespace
# The tenant the Royal Bank's agreement protects: the isolation suite is about this namespace.
ROYAL_BANK = "royal-bank"
DEFAULT_SERVICE_ACCOUNT = "default"  # the account Kubernetes runs a pod as when its spec names none


class Role(str, enum.Enum):
    CUSTOMER = "customer"  # a tenant: isolated from every other customer
    PLATFORM = "platform"  # shared services customers may reach only through exceptions
    SYSTEM = "system"  # cluster services (kube-dns)
    OUTSIDER = "outsider"  # not a tenant: the namespace no policy restricts (`outsider` in the file)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, order=True)
class Service:
    """A port and protocol: what a workload listens on, or what a probe targets."""

    port: int
    protocol: str  # "TCP" | "UDP"
    name: str | None = field(default=None, compare=False)

    @property
    def slug(self) -> str:
        """`tcp-8080`: how test ids name the service."""
        return f"{self.protocol.lower()}-{self.port}"

    def __str__(self) -> str:
        return f"{self.port}/{self.protocol}"


@dataclass(frozen=True)
class Workload:
    """A pod the probes stand in for: its labels, the ports its server listens on, and the service
    account it runs as (with that ServiceAccount's labels, which policies read as `pcsa.<key>`)."""

    namespace: str
    name: str
    labels: Labels
    ports: tuple[Service, ...]
    location: Location | None = field(default=None, compare=False)
    # The account the workload runs as (`serviceAccount` in the layout, e.g. CoreDNS's `coredns`); the
    # labels are set only on the accounts the probe surface invents, never on one the layout names.
    service_account: str = DEFAULT_SERVICE_ACCOUNT
    service_account_labels: Labels = field(default_factory=Labels)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class LayoutNamespace:
    name: str
    role: Role
    labels: Labels  # as declared plus kubernetes.io/metadata.name
    resolves_dns: bool
    workloads: tuple[Workload, ...]  # the sentinel first, then the declared workloads
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Endpoint:
    """One side of an exception: a namespace (all its workloads), one workload, or anywhere outside."""

    namespace: str | None = None
    workload: str | None = None
    outside: bool = False  # any address outside the cluster (IP literals in flows)

    def covers(self, endpoint: str, layout: TenancyLayout) -> bool:
        if self.outside:
            return layout.is_outside(endpoint)
        namespace, _, workload = endpoint.partition("/")
        return namespace == self.namespace and (self.workload is None or workload == self.workload)

    def __str__(self) -> str:
        if self.outside:
            return "outside the cluster"
        return f"{self.namespace}/{self.workload}" if self.workload else f"namespace {self.namespace}"


@dataclass(frozen=True)
class AllowedFlow:
    """A cross-namespace exception: flows from `source` to `destination` on `services` must be allowed."""

    name: str
    source: Endpoint
    destination: Endpoint
    services: tuple[Service, ...]
    why: str
    location: Location | None = field(default=None, compare=False)

    def covers(self, flow: Flow, layout: TenancyLayout) -> bool:
        return (
            flow.port is not None
            and Service(flow.port, flow.protocol) in self.services
            and self.source.covers(flow.source, layout)
            and self.destination.covers(flow.destination, layout)
        )


@dataclass(frozen=True)
class DnsRequirement:
    server: str  # workload key of the cluster DNS server, e.g. kube-system/kube-dns
    services: tuple[Service, ...]  # 53/UDP and 53/TCP
    other_servers: tuple[IPAddress, ...]  # DNS servers nobody may reach directly
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ClusterNetwork:
    """A cluster's node network MTU and the MTU its Installation sets (None = Calico auto-detects)."""

    cluster: str
    network_mtu: int
    calico_mtu: int | None
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class TenancyLayout:
    source: str
    namespaces: tuple[LayoutNamespace, ...]
    exceptions: tuple[AllowedFlow, ...]
    dns: DnsRequirement
    tier_order: tuple[str, ...]  # intended order of the user tiers, first applied first
    canary_services: tuple[Service, ...]  # ports nothing declares: probed to show nothing else is open
    outside_addresses: tuple[IPAddress, ...]  # never contacted by the static target
    networks: Mapping[str, ClusterNetwork]
    # A namespace outside the tenancy that no policy restricts, holding only a sentinel. A namespace's
    # ingress deny is only proven against a sender whose own egress nobody limits (every tenancy
    # namespace is default-deny egress, which would hide an allow-all ingress), and its egress deny
    # against a receiver that accepts everything.
    outsider: LayoutNamespace | None = None
    # The outside addresses a policy names (`probe_surface`), also in `outside_addresses`. The layout's
    # own addresses stand for "anywhere outside", so a live stand-in may send in their place; these
    # stand for themselves (a rule matches them), so only a client with that very address could.
    policy_outside_addresses: tuple[IPAddress, ...] = ()

    @property
    def all_namespaces(self) -> tuple[LayoutNamespace, ...]:
        """The tenancy namespaces and the outsider: every namespace a cluster has probes in."""
        return self.namespaces + ((self.outsider,) if self.outsider else ())

    def namespace(self, name: str) -> LayoutNamespace:
        for namespace in self.all_namespaces:
            if namespace.name == name:
                return namespace
        raise KeyError(name)

    @property
    def workloads(self) -> tuple[Workload, ...]:
        """The tenancy's workloads (the outsider's sentinel is not one)."""
        return tuple(workload for namespace in self.namespaces for workload in namespace.workloads)

    @property
    def all_workloads(self) -> tuple[Workload, ...]:
        return tuple(workload for namespace in self.all_namespaces for workload in namespace.workloads)

    def workload(self, key: str) -> Workload:
        for workload in self.all_workloads:
            if workload.key == key:
                return workload
        raise KeyError(key)

    def customers(self) -> tuple[LayoutNamespace, ...]:
        return tuple(namespace for namespace in self.namespaces if namespace.role is Role.CUSTOMER)

    def is_outside(self, endpoint: str) -> bool:
        """An IP literal in a flow: an address outside the cluster's workloads."""
        try:
            ipaddress.ip_address(endpoint)
        except ValueError:
            return False
        return True

    def requirement(self, flow: Flow) -> tuple[bool, str]:
        """Whether the tenancy agreement requires `flow` to be allowed, and why, in words."""
        for exception in self.exceptions:
            if exception.covers(flow, self):
                return True, f"layout exception {exception.name} ({exception.why})"
        source_namespace = flow.source.partition("/")[0]
        if (
            flow.destination == self.dns.server
            and flow.port is not None
            and Service(flow.port, flow.protocol) in self.dns.services
            and not self.is_outside(flow.source)
            and self.namespace(source_namespace).resolves_dns
        ):
            return True, f"namespace {source_namespace} must resolve cluster DNS"
        return False, "not allowed by the layout: every namespace is default-deny"
