"""Where a policy set could open a door the layout's fixed probes never knock on, so the suites knock there too.

The layout probes every declared port, its canary ports (9999/TCP and /UDP) and a few outside addresses.
A policy set that allows exactly 22/TCP between tenants, UDP 10000-65535, 443/TCP to the internet or
DNS to 8.8.8.8/32 passes every one of those probes while breaking the promise that everything the layout
does not allow is denied. The policy set names every port, protocol and network it can match, so the
probes it could fool are derived from it:

* ports: for each port range a rule names (`ports` or `notPorts`, either side), its first port and the
  port after its last. Whether a rule matches a port only changes at those points, so every stretch of
  ports on which the policy set behaves alike starts at one of them (or is the canary's stretch);
* protocols: each port on the protocol its rule names (TCP, UDP or SCTP; the loader has already given a
  KNP port without one TCP); SCTP is probed only when a rule names it, on the canary ports too;
* outside addresses: for each IPv4 network a rule or network set names, its first address and the one
  after it, when that is no cluster's pod or service range (those are the workloads' business);
* labels: a policy that allows only pods labelled `debug == "true"` is invisible to probes that carry
  only the layout's labels, yet the promise is about *every* pod of a namespace. Each pod label key the
  policy set's selectors read and no layout workload carries is put, with a value that satisfies the
  first test of it, on a `stranger` workload added to every namespace (no stranger when there is none);
* impostors: a selector that loses its namespace scope (`k8s-app == "kube-dns"` without the
  kube-system namespace selector) matches a pod elsewhere carrying the same label, and no layout pod
  does. For every (key, value) a pod selector tests, an `impostor-<n>` workload carrying only that label
  is added to every namespace where no layout workload carries it. It is named by no exception, so the
  layout's requirement for it is its namespace's, like the sentinel's;
* layout edges: the requirement changes at each declared, exception and DNS port, so each of those, the
  port just past it, and the port just before the lowest edge are probed as canaries too (one port in
  every stretch of ports on which neither the layout nor the policy set changes);
* service accounts: every probe pod runs as `default`, so a policy allowing pods of account `batch`
  between tenants (`serviceAccounts: {names: [batch]}`, a `serviceAccountSelector`, a `pcsa.` key) is
  invisible too. Each account name the policy set names (not `default`), and each service-account label
  key it reads with a satisfying value, give a `stranger-as-<account>` workload in every namespace that
  runs as that account, whose ServiceAccount carries those labels (an account named `stranger` when
  only labels are read). It carries the stranger's pod labels too, so a rule that reads both matches.

Named ports resolve to declared container ports, which are probed already; source ports are the client's
ephemeral choice and cannot be probed; other IP protocols (GRE, ...) cannot be probed and are left out.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from calico_conformance.oracle.model import (
    PROTOCOL_NAMES,
    EntityRule,
    IPAddress,
    IPNetwork,
    Labels,
    PortRange,
    ResourceSet,
    Rule,
)
from calico_conformance.oracle.selector import SERVICE_ACCOUNT_LABEL, SERVICE_ACCOUNT_PREFIX, Selector
from calico_conformance.oracle.selector_ast import Comparison, Has, InSet, walk
from calico_conformance.oracle.selector_parser import parse_tree
from calico_conformance.tenancy.model import (
    DEFAULT_SERVICE_ACCOUNT,
    LayoutNamespace,
    Service,
    TenancyLayout,
    Workload,
)

PROBED_PROTOCOLS = ("TCP", "UDP", "SCTP")  # the agent's transports; ICMP has its own flows (cases.py)
DEFAULT_PORT_PROTOCOL = "TCP"  # a port without a protocol (KNP default, calico-semantics.md §1.7)
LAST_PORT = 65535
STRANGER = "stranger"  # the workload carrying the policy set's unfamiliar labels, in every namespace
IMPOSTOR = "impostor"  # a workload carrying one tested label where the layout does not place it
ANY_VALUE = "probe"  # the value given to a key only tested with has() or `not in`
PSEUDO_LABEL_PREFIXES = ("projectcalico.org/", "pcns.", "pcsa.")  # set by Calico, never by a pod
STRANGER_ACCOUNT = "stranger"  # the account of the stranger whose ServiceAccount carries the labels read
ACCOUNT_NAME_LABEL = "projectcalico.org/name"  # in a service-account selector: the account's name
# What Kubernetes accepts as a ServiceAccount name (a DNS-1123 subdomain): no pod runs as anything else,
# so a selector asking for another name opens nothing to probe.
ACCOUNT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
ACCOUNT_NAME_MAX = 253
SelectorTest = Comparison | InSet | Has
# What Kubernetes accepts as a label key (optional DNS-subdomain prefix, then a name of up to 63) and as
# a label value: a test only satisfiable by something else can match no pod, and a probe pod carrying
# it would be refused by the API server.
LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class ProbeSurface:
    """The extra services and outside addresses a policy set could open, beyond the layout's own."""

    services: tuple[Service, ...]
    outside_addresses: tuple[IPAddress, ...]
    stranger_labels: Labels = field(default_factory=Labels)  # empty: every label the policies read is on a layout workload
    stranger_accounts: tuple[str, ...] = ()  # a stranger runs as each; empty: the policies read no account
    stranger_account_labels: Labels = field(default_factory=Labels)  # on every stranger account
    # Where the layout's requirement changes: each declared, exception and DNS port and its neighbours.
    layout_services: tuple[Service, ...] = ()
    # Every (key, value) a pod selector tests: an impostor carries each in every namespace where no
    # layout workload does (a selector that lost its namespace scope matches it there).
    impostor_labels: tuple[tuple[str, str], ...] = ()


def policy_surface(
    resources: ResourceSet, layout: TenancyLayout, cluster_ranges: Iterable[IPNetwork]
) -> ProbeSurface:
    """The services and outside addresses `resources` name that the layout does not probe already."""
    rules = [rule for policy in resources.policies for rule in (*policy.ingress, *policy.egress)]
    services = set(_rule_services(rules))
    if any(_protocol_name(rule.protocol) == "SCTP" for rule in rules):
        services |= {Service(canary.port, "SCTP") for canary in layout.canary_services}
    probed = {*layout.canary_services, *layout.dns.services}
    nets = [net for rule in rules for side in (rule.source, rule.destination) for net in _nets(side)]
    nets += [net for network_set in resources.network_sets for net in network_set.nets]
    ranges = tuple(cluster_ranges)
    accounts, account_labels = _stranger_accounts(resources)
    addresses = {
        address
        for address in _boundary_addresses(nets)
        if not any(address in network for network in ranges)
    }
    return ProbeSurface(
        services=tuple(sorted(services - probed)),
        outside_addresses=tuple(sorted(addresses - set(layout.outside_addresses))),
        stranger_labels=_unfamiliar_labels(resources, layout),
        stranger_accounts=accounts,
        stranger_account_labels=account_labels,
        layout_services=tuple(
            sorted(_layout_services(layout, services | probed) - set(layout.canary_services) - (services - probed))
        ),
        impostor_labels=_tested_labels(resources),
    )


def _tested_labels(resources: ResourceSet) -> tuple[tuple[str, str], ...]:
    """Each (key, value) a pod selector of the policy set tests positively (`==`, `in`, `contains`...),
    and for a key tested only by `has()`, `!=` or `not in`, a value that satisfies the test; keys Calico
    sets (`projectcalico.org/...`) and labels no pod can carry are left out."""
    found: dict[tuple[str, str], None] = {}
    for test in _tests(_pod_selectors(resources)):
        if test.label.startswith(PSEUDO_LABEL_PREFIXES):
            continue
        values = test.values if isinstance(test, InSet) and not test.negated else (_satisfying_value(test),)
        for value in values:
            chosen: dict[str, str] = {}
            _choose(chosen, test.label, value)
            found.update(dict.fromkeys(chosen.items()))
    return tuple(sorted(found))


def port_stretches(resources: ResourceSet, layout: TenancyLayout) -> dict[str, tuple[int, ...]]:
    """Per protocol, the first port of each stretch of ports on which neither the policy set nor the
    layout changes its mind (port 1 first): the policy set's port edges (each range's first port and
    the port after its last) and the layout's (each declared, exception and DNS port, and the port
    after it). Named ports resolve to declared ports, which are edges. Every port of 1-65535 belongs
    to the stretch starting at the greatest first port not above it."""
    rules = [rule for policy in resources.policies for rule in (*policy.ingress, *policy.egress)]
    edges = set(_rule_services(rules)) | set(_layout_edges(layout))
    protocols = {"TCP", "UDP"} | {service.protocol for service in edges}
    return {
        protocol: tuple(sorted({1} | {s.port for s in edges if s.protocol == protocol}))
        for protocol in sorted(protocols)
    }


def _layout_edges(layout: TenancyLayout) -> Iterator[Service]:
    """Each declared, exception and DNS port, and the port just past it."""
    edges = {service for workload in layout.all_workloads for service in workload.ports}
    edges |= {service for exception in layout.exceptions for service in exception.services}
    edges |= set(layout.dns.services)
    for edge in edges:
        for port in (edge.port, edge.port + 1):
            if port <= LAST_PORT:
                yield Service(port, edge.protocol)


def _layout_services(layout: TenancyLayout, probed: set[Service]) -> set[Service]:
    """A port in every stretch the layout draws: each declared, exception and DNS port (where the
    requirement or a listener changes) and the port just past it, and, per protocol, the port just
    before the lowest edge of all (the layout's and the policy set's `probed` ones).

    Ports on which neither the layout nor the policy set changes its mind behave alike, so one port per
    stretch between edges proves the stretch. Every stretch starts at an edge and each edge is probed,
    except the first stretch, from port 1 up to the lowest edge: the port just before that edge stands
    for it. The port just before any other edge lies in the stretch that starts at the edge below it."""
    found = set(_layout_edges(layout))
    for protocol in {service.protocol for service in found | probed}:
        lowest = min(service.port for service in found | probed if service.protocol == protocol)
        if lowest > 1:
            found.add(Service(lowest - 1, protocol))
    return found


def widen_layout(layout: TenancyLayout, surface: ProbeSurface) -> TenancyLayout:
    """The layout whose canary ports and outside addresses also cover `surface`.

    The requirement is unchanged: a derived port or address is declared by no workload and named by no
    exception except where the layout says so (an exception to `outside` covers every outside address),
    and a stranger is named by no exception, like the sentinel whose ports it serves.
    """
    outsider = layout.outsider
    return replace(
        layout,
        namespaces=tuple(_with_strangers(namespace, surface) for namespace in layout.namespaces),
        outsider=_with_strangers(outsider, surface) if outsider else None,
        canary_services=layout.canary_services + surface.services + surface.layout_services,
        outside_addresses=layout.outside_addresses + surface.outside_addresses,
        policy_outside_addresses=layout.policy_outside_addresses + surface.outside_addresses,
    )


def _with_strangers(namespace: LayoutNamespace, surface: ProbeSurface) -> LayoutNamespace:
    """The namespace with its stranger (when labels are unfamiliar) and one stranger per account."""
    sentinel = namespace.workloads[0]  # the layout puts the sentinel first
    labels = surface.stranger_labels
    strangers: list[Workload] = [Workload(namespace.name, STRANGER, labels, sentinel.ports, sentinel.location)] if labels else []
    strangers += [
        Workload(
            namespace.name,
            f"{STRANGER}-as-{account}",
            labels,
            sentinel.ports,
            sentinel.location,
            service_account=account,
            service_account_labels=surface.stranger_account_labels,
        )
        for account in surface.stranger_accounts
    ]
    strangers += _impostors(namespace, surface)
    return replace(namespace, workloads=(*namespace.workloads, *strangers)) if strangers else namespace


def _impostors(namespace: LayoutNamespace, surface: ProbeSurface) -> list[Workload]:
    """`impostor-<n>` for the n-th tested (key, value) that no workload of the namespace carries: only
    that label, the sentinel's ports and account. The name is the same in every namespace."""
    sentinel = namespace.workloads[0]
    placed = {item for workload in namespace.workloads for item in workload.labels.items()}
    if surface.stranger_labels:
        placed |= set(surface.stranger_labels.items())  # the stranger carries it here already
    return [
        Workload(namespace.name, f"{IMPOSTOR}-{index}", Labels.of({key: value}), sentinel.ports, sentinel.location)
        for index, (key, value) in enumerate(surface.impostor_labels, 1)
        if (key, value) not in placed
    ]


def _pod_selectors(resources: ResourceSet) -> Iterator[Selector]:
    """Every selector of the policy set that reads pod labels (namespace selectors read namespaces')."""
    for policy in resources.policies:
        yield policy.selector
        for rule in (*policy.ingress, *policy.egress):
            for side in (rule.source, rule.destination):
                yield from (selector for selector in (side.selector, side.not_selector) if selector is not None)


def _account_selectors(resources: ResourceSet) -> Iterator[Selector]:
    """Every selector over service-account labels, written without the `pcsa.` prefix Calico adds."""
    for policy in resources.policies:
        if policy.service_account_selector is not None:
            yield policy.service_account_selector
        for rule in (*policy.ingress, *policy.egress):
            for side in (rule.source, rule.destination):
                if side.service_accounts is not None and side.service_accounts.selector is not None:
                    yield side.service_accounts.selector


def _tests(selectors: Iterable[Selector]) -> Iterator[SelectorTest]:
    """Every test of a label in the selectors, in the order written."""
    for selector in selectors:
        for node in walk(parse_tree(str(selector))):
            if isinstance(node, Comparison | InSet | Has):
                yield node


def _satisfying_value(test: SelectorTest) -> str:
    """A value satisfying `test` (`==`, `in`, `contains`...), else any value (`has()`, `!=`, `not in`)."""
    if isinstance(test, Comparison) and test.op != "!=":
        return test.value
    if isinstance(test, InSet) and not test.negated and test.values:
        return test.values[0]
    if isinstance(test, InSet) and ANY_VALUE in test.values:
        return ANY_VALUE + "-other"
    return ANY_VALUE


def _unfamiliar_labels(resources: ResourceSet, layout: TenancyLayout) -> Labels:
    """For each pod label key the selectors read and no layout workload carries, a value satisfying the
    first test of it."""
    familiar = {key for workload in layout.all_workloads for key in workload.labels}
    chosen: dict[str, str] = {}
    for test in _tests(_pod_selectors(resources)):
        key = test.label
        if key not in familiar and key not in chosen and not key.startswith(PSEUDO_LABEL_PREFIXES):
            _choose(chosen, key, _satisfying_value(test))
    return Labels.of(chosen) if chosen else Labels()


def _choose(chosen: dict[str, str], key: str, value: str) -> None:
    """Keep `key: value` when a Kubernetes object can carry it (else a later test of the key may)."""
    prefix, _, name = key.rpartition("/")
    valid_key = bool(name) and LABEL_NAME.match(name) and (not prefix or (len(prefix) <= 253 and LABEL_PREFIX.match(prefix)))
    if valid_key and LABEL_NAME.match(value):
        chosen.setdefault(key, value)


def _stranger_accounts(resources: ResourceSet) -> tuple[tuple[str, ...], Labels]:
    """The account names the policy set names, and for each service-account label key it reads a value
    satisfying the first test of it (calico-semantics.md §2.2, §2.3: `serviceAccounts.names` becomes
    `projectcalico.org/serviceaccount in {...}`, an account's labels are its pods' `pcsa.<key>`, and
    `pcsa.projectcalico.org/name` is the account's name)."""
    names: dict[str, None] = {}
    labels: dict[str, str] = {}

    def name(account: str) -> None:
        if account != DEFAULT_SERVICE_ACCOUNT and len(account) <= ACCOUNT_NAME_MAX and ACCOUNT_NAME.match(account):
            names.setdefault(account)

    for policy in resources.policies:
        for rule in (*policy.ingress, *policy.egress):
            for side in (rule.source, rule.destination):
                for account in side.service_accounts.names if side.service_accounts else ():
                    name(account)
    for test in _tests(_pod_selectors(resources)):
        if test.label in (SERVICE_ACCOUNT_LABEL, SERVICE_ACCOUNT_PREFIX + ACCOUNT_NAME_LABEL):
            name(_satisfying_value(test))
        elif test.label.startswith(SERVICE_ACCOUNT_PREFIX):
            _choose(labels, test.label.removeprefix(SERVICE_ACCOUNT_PREFIX), _satisfying_value(test))
    for test in _tests(_account_selectors(resources)):
        if test.label == ACCOUNT_NAME_LABEL:
            name(_satisfying_value(test))
        elif not test.label.startswith(PSEUDO_LABEL_PREFIXES):
            _choose(labels, test.label, _satisfying_value(test))
    if labels and not names:
        names[STRANGER_ACCOUNT] = None
    return tuple(names), Labels.of(labels) if labels else Labels()


def _protocol_name(number: int | None) -> str | None:
    return PROTOCOL_NAMES.get(number) if number is not None else None


def _rule_services(rules: Iterable[Rule]) -> Iterator[Service]:
    """Each destination port range's first port and the port after it, on the rule's protocol."""
    for rule in rules:
        named = _protocol_name(rule.protocol)
        if rule.protocol is not None and named not in PROBED_PROTOCOLS:
            continue  # ICMP rules have no ports; other protocols cannot be probed
        protocol = named or DEFAULT_PORT_PROTOCOL
        for port in (*rule.destination.ports, *rule.destination.not_ports):
            if isinstance(port, PortRange):
                for boundary in (port.first, port.last + 1):
                    if 1 <= boundary <= LAST_PORT:
                        yield Service(boundary, protocol)


def _nets(side: EntityRule) -> tuple[IPNetwork, ...]:
    return side.nets + side.not_nets


def _boundary_addresses(nets: Iterable[IPNetwork]) -> Iterator[IPAddress]:
    """Each IPv4 network's first address and the address after its last, where they can be probed."""
    for net in nets:
        if not isinstance(net, ipaddress.IPv4Network):
            continue  # the clusters are IPv4: an IPv6 rule matches no probe
        candidates = [net.network_address]
        if int(net.broadcast_address) < int(ipaddress.IPv4Address("255.255.255.255")):
            candidates.append(net.broadcast_address + 1)
        for address in candidates:
            if not (address.is_unspecified or address.is_loopback or address.is_multicast):
                yield address
