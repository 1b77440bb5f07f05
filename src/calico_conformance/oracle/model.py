"""The oracle's resource model: what the loader produces and the evaluator, linter and suites consume.

Every policy kind is normalised here into one Calico-shaped `Policy`: a Kubernetes NetworkPolicy arrives
already converted the way Calico converts it (`K8sNetworkPolicyToCalico`, calico-semantics.md §1.5: tier
`default`, order 1000, every rule `Allow`), so the evaluator knows only Calico semantics. Selectors are
kept as written (unprefixed, unscoped); the evaluator applies the scoping rules of §2.2.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from calico_conformance.oracle.errors import Location
from calico_conformance.oracle.selector import Selector

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_CALICO_VERSION = "3.31"
DEFAULT_TIER = "default"
KNP_ORDER = 1000.0  # Calico places every Kubernetes NetworkPolicy at order 1000 in tier default

# IANA protocol numbers of the names Calico accepts (validator regex in calico-semantics.md §2.1).
PROTOCOL_NUMBERS: Mapping[str, int] = {
    "ICMP": 1,
    "TCP": 6,
    "UDP": 17,
    "ICMPv6": 58,
    "SCTP": 132,
    "UDPLite": 136,
}
PROTOCOL_NAMES: Mapping[int, str] = {number: name for name, number in PROTOCOL_NUMBERS.items()}


class Direction(str, enum.Enum):
    INGRESS = "Ingress"
    EGRESS = "Egress"

    def __str__(self) -> str:
        return self.value


Action = Literal["Allow", "Deny", "Pass", "Log"]
TierDefaultAction = Literal["Deny", "Pass"]
PolicyKind = Literal["KubernetesNetworkPolicy", "NetworkPolicy", "GlobalNetworkPolicy"]


@dataclass(frozen=True)
class Labels(Mapping[str, str]):
    """An immutable, hashable label map."""

    items_: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, labels: Mapping[str, str] | None = None) -> Labels:
        return cls(tuple(sorted((labels or {}).items())))

    def __getitem__(self, key: str) -> str:
        for k, v in self.items_:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self.items_)

    def __len__(self) -> int:
        return len(self.items_)

    def as_dict(self) -> dict[str, str]:
        return dict(self.items_)


# --- endpoints --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Namespace:
    name: str
    labels: Labels = field(default_factory=Labels)  # includes kubernetes.io/metadata.name=<name>
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ServiceAccount:
    name: str
    namespace: str
    labels: Labels = field(default_factory=Labels)
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ContainerPort:
    port: int
    protocol: str = "TCP"  # "TCP" | "UDP" | "SCTP"
    name: str | None = None


@dataclass(frozen=True)
class Pod:
    """A workload endpoint: a pod on the pod network."""

    name: str
    namespace: str
    ip: IPAddress
    labels: Labels = field(default_factory=Labels)
    service_account: str = "default"
    node: str | None = None
    ports: tuple[ContainerPort, ...] = ()
    location: Location | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        """`namespace/name`: the workload key used in flows and reports."""
        return f"{self.namespace}/{self.name}"


# --- policy -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortRange:
    first: int
    last: int  # inclusive; == first for a single port

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.first <= port <= self.last

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}:{self.last}"


@dataclass(frozen=True)
class NamedPort:
    name: str  # matches endpoints in the rule's selector scope exposing a containerPort of this name

    def __str__(self) -> str:
        return self.name


Port = PortRange | NamedPort


@dataclass(frozen=True)
class ServiceAccountMatch:
    names: tuple[str, ...] = ()
    selector: Selector | None = None


@dataclass(frozen=True)
class ServiceMatch:
    name: str
    namespace: str | None = None


@dataclass(frozen=True)
class EntityRule:
    """The source or destination part of a rule, as written (selectors unprefixed and unscoped)."""

    nets: tuple[IPNetwork, ...] = ()
    not_nets: tuple[IPNetwork, ...] = ()
    selector: Selector | None = None
    not_selector: Selector | None = None
    namespace_selector: Selector | None = None
    service_accounts: ServiceAccountMatch | None = None
    services: ServiceMatch | None = None
    ports: tuple[Port, ...] = ()
    not_ports: tuple[Port, ...] = ()

    @property
    def is_empty(self) -> bool:
        return self == EMPTY_ENTITY


EMPTY_ENTITY = EntityRule()


@dataclass(frozen=True)
class IcmpMatch:
    type: int | None = None
    code: int | None = None


@dataclass(frozen=True)
class Rule:
    action: Action
    protocol: int | None = None  # IANA number; None = any
    not_protocol: int | None = None
    icmp: IcmpMatch | None = None
    not_icmp: IcmpMatch | None = None
    ip_version: int | None = None
    source: EntityRule = EMPTY_ENTITY
    destination: EntityRule = EMPTY_ENTITY
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Policy:
    """A Calico policy, or a Kubernetes NetworkPolicy converted as Calico converts it."""

    kind: PolicyKind
    name: str  # the name as written (k8s name for a KNP; `tier.name` or `name` for Calico policies)
    namespace: str | None  # None for a GlobalNetworkPolicy
    tier: str
    order: float | None
    selector: Selector  # policy-level selector as written (KNP: converted podSelector, incl. orchestrator)
    types: frozenset[Direction]  # already defaulted as the API server / clientv3 does (§1.5, §1.6)
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()
    namespace_selector: Selector | None = None  # GlobalNetworkPolicy only
    service_account_selector: Selector | None = None
    location: Location | None = field(default=None, compare=False)
    api_version: str = field(default="", compare=False)  # as written, e.g. crd.projectcalico.org/v1
    # The manifest as written (Kubernetes NetworkPolicies only): a live scenario applies the real object,
    # so Calico's own conversion is what gets tested, not ours.
    manifest: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def felix_key(self) -> str:
        """The name felix sorts equal-order policies by (calico-semantics.md §1.4), byte-wise."""
        if self.kind == "KubernetesNetworkPolicy":
            return f"{self.namespace}/knp.default.{self.name}"
        if self.namespace is not None:
            return f"{self.namespace}/{self.name}"
        return self.name

    @property
    def display_name(self) -> str:
        """How reports name the policy: `KubernetesNetworkPolicy royal-bank/default-deny-all`."""
        scoped = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {scoped}"

    def rules(self, direction: Direction) -> tuple[Rule, ...]:
        return self.ingress if direction is Direction.INGRESS else self.egress


@dataclass(frozen=True)
class Tier:
    name: str
    order: float | None
    default_action: TierDefaultAction = "Deny"
    location: Location | None = field(default=None, compare=False)
    api_version: str = field(default="", compare=False)


@dataclass(frozen=True)
class NetworkSet:
    """A NetworkSet (namespace set) or GlobalNetworkSet (namespace None): labelled CIDRs selectors match."""

    name: str
    namespace: str | None
    nets: tuple[IPNetwork, ...]
    labels: Labels = field(default_factory=Labels)
    location: Location | None = field(default=None, compare=False)
    api_version: str = field(default="", compare=False)


StagedAction = Literal["Set", "Delete", "Learn", "Ignore"]


@dataclass(frozen=True)
class StagedPolicy:
    """A Staged(Global|Kubernetes)NetworkPolicy (Calico 3.30+): never enforced, read by `loader_staged.py`.

    `policy` is the enforced policy it stands for (what Calico's ConvertStaged*ToEnforced gives), already
    converted like any policy; None for stagedAction Delete, which stands for removing the enforced
    policy of the same name."""

    kind: str  # StagedNetworkPolicy | StagedGlobalNetworkPolicy | StagedKubernetesNetworkPolicy
    name: str
    namespace: str | None
    action: StagedAction
    policy: Policy | None
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ResourceSet:
    """Everything loaded from a set of manifests."""

    policies: tuple[Policy, ...] = ()
    tiers: tuple[Tier, ...] = ()
    network_sets: tuple[NetworkSet, ...] = ()
    namespaces: tuple[Namespace, ...] = ()  # v1 Namespace manifests, if any
    service_accounts: tuple[ServiceAccount, ...] = ()  # v1 ServiceAccount manifests, if any
    staged: tuple[StagedPolicy, ...] = ()  # never enforced; `loader_staged.promote_staged` enforces them

    def merged(self, other: ResourceSet) -> ResourceSet:
        return ResourceSet(
            self.policies + other.policies,
            self.tiers + other.tiers,
            self.network_sets + other.network_sets,
            self.namespaces + other.namespaces,
            self.service_accounts + other.service_accounts,
            self.staged + other.staged,
        )


# --- scenarios (input of `simulate`) ----------------------------------------------------------------


@dataclass(frozen=True)
class ProbeSpec:
    source: str  # `namespace/pod` or an IP address outside the cluster
    destination: str
    port: int | None  # None for ICMP
    protocol: str  # "TCP" | "UDP" | "SCTP" | "ICMP"
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Scenario:
    calico_version: str
    namespaces: tuple[Namespace, ...]
    pods: tuple[Pod, ...]
    resources: ResourceSet
    probes: tuple[ProbeSpec, ...]  # already expanded to the default set when the file has none
    service_accounts: tuple[ServiceAccount, ...] = ()
    source: str = ""  # the scenario file, for messages
    # The file lists no probes: every ordered pair of distinct pods x each container port of the destination
    # (in `probes` unless the loader was asked not to expand them).
    default_probes: bool = False
