"""Kubernetes objects into the oracle's model: NetworkPolicy converted exactly as Calico converts it.

Calico never evaluates a Kubernetes NetworkPolicy as such: `K8sNetworkPolicyToCalico`
(calico-semantics.md §1.5) turns it into a Calico policy in tier `default` at order 1000 with only
`Allow` rules, and felix enforces that. The oracle must see the same policy felix sees, so this module
reproduces the conversion, down to the selector text (`projectcalico.org/orchestrator == 'k8s' && ...`)
and one rule per protocol and peer. Before converting it validates the object as the API server would,
including the API server's `policyTypes` defaulting, because a policy the API server rejects or
rewrites is not the policy that runs.

Namespaces and ServiceAccounts are read here too: only their labels matter to policy.
"""

from __future__ import annotations

import json
import re
from ipaddress import IPv4Network, IPv6Network

from calico_conformance.oracle.loader_document import (
    DNS_LABEL,
    NAMESPACE_WHEN_OMITTED,
    Document,
    parse_cidr,
    validate_label_key,
    validate_label_value,
)
from calico_conformance.oracle.model import (
    DEFAULT_TIER,
    KNP_ORDER,
    PROTOCOL_NUMBERS,
    Direction,
    EntityRule,
    IPNetwork,
    Labels,
    NamedPort,
    Namespace,
    Policy,
    Port,
    PortRange,
    Rule,
    ServiceAccount,
)
from calico_conformance.oracle.selector import ORCHESTRATOR_LABEL, Selector, SelectorError, parse_selector
from calico_conformance.oracle.yamlsrc import Node

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"  # set on every namespace by the API server
KNP_PROTOCOLS = ("TCP", "UDP", "SCTP")
DEFAULT_KNP_PROTOCOL = "TCP"  # API server default for NetworkPolicyPort.protocol
ORCHESTRATOR_TERM = f"{ORCHESTRATOR_LABEL} == 'k8s'"
# IANA_SVC_NAME, the API server's rule for a named port: <= 15 chars, lowercase, a letter, no '--'.
_SERVICE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?\Z")
SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")

POLICY_FIELDS = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})
SPEC_FIELDS = frozenset({"podSelector", "policyTypes", "ingress", "egress"})
LABEL_SELECTOR_FIELDS = frozenset({"matchLabels", "matchExpressions"})
EXPRESSION_FIELDS = frozenset({"key", "operator", "values"})
PEER_FIELDS = frozenset({"podSelector", "namespaceSelector", "ipBlock"})
IP_BLOCK_FIELDS = frozenset({"cidr", "except"})
PORT_FIELDS = frozenset({"protocol", "port", "endPort"})
RULE_FIELDS = {Direction.INGRESS: frozenset({"from", "ports"}), Direction.EGRESS: frozenset({"to", "ports"})}
PEERS_KEY = {Direction.INGRESS: "from", Direction.EGRESS: "to"}


# --- label selectors ---------------------------------------------------------------------------------


def label_selector_terms(node: Node) -> list[str]:
    """A metav1.LabelSelector as Calico's `k8sSelectorToCalico` writes it: matchLabels (keys sorted),
    then matchExpressions in order; validated as the API server validates it."""
    node.fields(LABEL_SELECTOR_FIELDS, what="a label selector")
    terms: list[str] = []
    match_labels = node.get("matchLabels")
    if match_labels is not None:
        labels = match_labels.string_map("matchLabels")
        for key in sorted(labels):
            where = match_labels.get(key) or match_labels
            validate_label_key(where, key)
            validate_label_value(where, key, labels[key])
            terms.append(f"{key} == '{labels[key]}'")
    expressions = node.get("matchExpressions")
    for expression in expressions.items("matchExpressions") if expressions else []:
        terms.append(_expression_term(expression))
    return terms


def _expression_term(node: Node) -> str:
    node.fields(EXPRESSION_FIELDS, what="a match expression")
    key_node = node.require("key")
    key = key_node.string()
    validate_label_key(key_node, key)
    operator_node = node.require("operator")
    operator = operator_node.string()
    if operator not in SELECTOR_OPERATORS:
        raise operator_node.error(
            f"{operator!r} is not a valid selector operator; expected one of {', '.join(SELECTOR_OPERATORS)}"
        )
    values_node = node.get("values")
    values = values_node.strings() if values_node is not None else []
    for value in values:
        validate_label_value(values_node or node, key, value)
    if operator in ("In", "NotIn") and not values:
        raise node.error(f"operator {operator} needs at least one value")
    if operator in ("Exists", "DoesNotExist") and values:
        raise (values_node or node).error(f"operator {operator} takes no values")
    quoted = "', '".join(values)
    return {
        "In": f"{key} in {{ '{quoted}' }}",
        "NotIn": f"{key} not in {{ '{quoted}' }}",
        "Exists": f"has({key})",
        "DoesNotExist": f"! has({key})",
    }[operator]


def _selector(node: Node, terms: list[str]) -> Selector:
    text = " && ".join(terms)
    try:
        return parse_selector(text)
    except SelectorError as error:  # only reachable through a bug: the terms were validated above
        raise node.error(f"cannot convert to a Calico selector: {error}") from None


def pod_selector(node: Node | None) -> Selector:
    """A podSelector: the orchestrator term first, so network sets never match (§1.5)."""
    if node is None:
        return parse_selector(ORCHESTRATOR_TERM)
    return _selector(node, [ORCHESTRATOR_TERM, *label_selector_terms(node)])


def namespace_selector(node: Node) -> Selector:
    """A namespaceSelector: `{}` means every namespace (`all()`)."""
    terms = label_selector_terms(node)
    return _selector(node, terms) if terms else parse_selector("all()")


# --- ports and peers -----------------------------------------------------------------------------------


def _port(node: Node) -> tuple[str, Port | None]:
    """One NetworkPolicyPort: (protocol, port or None for every port of that protocol)."""
    node.fields(PORT_FIELDS, what="a NetworkPolicy port")
    protocol_node = node.get("protocol")
    protocol = protocol_node.string() if protocol_node is not None else DEFAULT_KNP_PROTOCOL
    if protocol not in KNP_PROTOCOLS:
        raise (protocol_node or node).error(
            f"unsupported protocol {protocol!r}; a NetworkPolicy port takes {', '.join(KNP_PROTOCOLS)}"
        )
    port_node = node.get("port")
    end_node = node.get("endPort")
    if port_node is None:
        if end_node is not None:
            raise end_node.error("endPort may not be specified when port is not")
        return protocol, None
    if isinstance(port_node.value, str):
        name = port_node.value
        if len(name) > 15 or not _SERVICE_NAME.match(name) or "--" in name or not re.search("[a-z]", name):
            raise port_node.error(
                f"invalid named port {name!r}: at most 15 lowercase alphanumeric characters or '-', "
                "with at least one letter (a number must be written unquoted)"
            )
        if end_node is not None:
            raise end_node.error("endPort may not be specified when port is a named port")
        return protocol, NamedPort(name)
    first = _port_number(port_node)
    last = first
    if end_node is not None:
        last = _port_number(end_node)
        if last < first:
            raise end_node.error(f"endPort {last} must be greater than or equal to port {first}")
    return protocol, PortRange(first, last)


def _port_number(node: Node) -> int:
    number = node.integer()
    if not 1 <= number <= 65535:
        raise node.error(f"port {number} is out of range: must be between 1 and 65535")
    return number


def _ports_by_protocol(node: Node | None) -> dict[str | None, tuple[Port, ...] | None]:
    """Calico's grouping: protocol -> ports (None = every port); no ports at all -> {None: None}."""
    if node is None or not node.value:
        return {None: None}
    grouped: dict[str | None, tuple[Port, ...] | None] = {}
    for item in node.items("ports"):
        protocol, port = _port(item)
        if port is None:
            grouped[protocol] = None  # every port of this protocol: later ports add nothing
        elif protocol not in grouped or grouped[protocol] is not None:
            existing = grouped.get(protocol) or ()
            grouped[protocol] = existing if port in existing else (*existing, port)
    return dict(sorted(grouped.items(), key=lambda item: item[0] or ""))


def _peer(node: Node | None) -> EntityRule:
    """`k8sPeerToCalicoFields`: ipBlock -> nets only; otherwise pod and namespace selectors."""
    if node is None:
        return EntityRule()
    node.fields(PEER_FIELDS, what="a NetworkPolicy peer")
    ip_block = node.get("ipBlock")
    if ip_block is not None:
        if node.has("podSelector") or node.has("namespaceSelector"):
            raise node.error("a peer may not combine ipBlock with podSelector or namespaceSelector")
        ip_block.fields(IP_BLOCK_FIELDS, what="an ipBlock")
        cidr_node = ip_block.require("cidr")
        cidr = parse_cidr(cidr_node)
        excepts = []
        except_node = ip_block.get("except")
        for item in except_node.items("except") if except_node is not None else []:
            excluded = parse_cidr(item)
            if not _strict_subnet(excluded, cidr):
                raise item.error(f"{excluded} must be a strict subset of the ipBlock cidr {cidr}")
            excepts.append(excluded)
        return EntityRule(nets=(cidr,), not_nets=tuple(excepts))
    pods = node.get("podSelector")
    namespaces = node.get("namespaceSelector")
    if pods is None and namespaces is None:
        raise node.error("a peer needs podSelector, namespaceSelector or ipBlock")
    return EntityRule(
        selector=pod_selector(pods),
        namespace_selector=namespace_selector(namespaces) if namespaces is not None else None,
    )


def _strict_subnet(inner: IPNetwork, outer: IPNetwork) -> bool:
    if isinstance(inner, IPv4Network) and isinstance(outer, IPv4Network):
        return inner != outer and inner.subnet_of(outer)
    if isinstance(inner, IPv6Network) and isinstance(outer, IPv6Network):
        return inner != outer and inner.subnet_of(outer)
    return False  # different families


def _rules(node: Node, direction: Direction) -> tuple[Rule, ...]:
    """One Calico rule per (protocol, peer), protocols in Calico's sorted order; all Allow."""
    rules: list[Rule] = []
    for item in node.items(f"{direction.value.lower()} rules"):
        item.fields(RULE_FIELDS[direction], what=f"a NetworkPolicy {direction.value.lower()} rule")
        peers_node = item.get(PEERS_KEY[direction])
        peer_nodes: list[Node | None] = (
            list(peers_node.items()) if peers_node and peers_node.value else [None]
        )
        peers = [_peer(peer) for peer in peer_nodes]
        for protocol, ports in _ports_by_protocol(item.get("ports")).items():
            for peer in peers:
                ports_rule = EntityRule(ports=ports or ())
                if direction is Direction.INGRESS:
                    source, destination = peer, ports_rule
                else:
                    source, destination = EntityRule(), _with_ports(peer, ports or ())
                rules.append(
                    Rule(
                        action="Allow",
                        protocol=PROTOCOL_NUMBERS[protocol] if protocol else None,
                        source=source,
                        destination=destination,
                        location=item.location,
                    )
                )
    return tuple(rules)


def _with_ports(entity: EntityRule, ports: tuple[Port, ...]) -> EntityRule:
    return EntityRule(
        nets=entity.nets,
        not_nets=entity.not_nets,
        selector=entity.selector,
        namespace_selector=entity.namespace_selector,
        ports=ports,
    )


# --- kinds ------------------------------------------------------------------------------------------------


def read_kubernetes_network_policy(document: Document) -> Policy:
    """networking.k8s.io/v1 NetworkPolicy -> the Calico policy felix enforces for it."""
    node = document.node.fields(POLICY_FIELDS, what="a NetworkPolicy")
    spec = node.require("spec").fields(SPEC_FIELDS, what="a NetworkPolicy spec")
    pods = spec.get("podSelector")
    if pods is None:
        raise spec.error("'podSelector' is required (write podSelector: {} to select every pod)")
    ingress_node, egress_node = spec.get("ingress"), spec.get("egress")
    return Policy(
        kind="KubernetesNetworkPolicy",
        name=document.name,
        namespace=document.namespace,
        tier=DEFAULT_TIER,
        order=KNP_ORDER,
        selector=pod_selector(pods),
        types=_policy_types(spec),
        ingress=_rules(ingress_node, Direction.INGRESS) if ingress_node else (),
        egress=_rules(egress_node, Direction.EGRESS) if egress_node else (),
        location=document.location,
        api_version=document.api_version,
        manifest=json.loads(json.dumps(document.node.value)),  # plain dicts, detached from the YAML tree
    )


def _policy_types(spec: Node) -> frozenset[Direction]:
    """As written, or the API server's default: Ingress always, Egress when egress rules exist."""
    types_node = spec.get("policyTypes")
    if types_node is None or not types_node.value:
        egress = spec.get("egress")
        has_egress = egress is not None and bool(egress.items("egress"))
        return frozenset({Direction.INGRESS, Direction.EGRESS} if has_egress else {Direction.INGRESS})
    items = types_node.items("policyTypes")
    if len(items) > 2:
        raise types_node.error("may not specify more than two policyTypes")
    types = set()
    for item in items:
        value = item.string()
        if value not in ("Ingress", "Egress"):
            raise item.error(f"unsupported policy type {value!r}; expected Ingress or Egress")
        types.add(Direction(value))
    return frozenset(types)


def read_namespace(document: Document) -> Namespace:
    document.node.fields({"apiVersion", "kind", "metadata", "spec", "status"}, what="a Namespace")
    if not DNS_LABEL.match(document.name) or len(document.name) > 63:
        raise document.node.error(f"invalid Namespace name {document.name!r}: must be a DNS label")
    labels = {**document.labels.as_dict(), NAMESPACE_NAME_LABEL: document.name}
    return Namespace(document.name, Labels.of(labels), location=document.location)


def read_service_account(document: Document) -> ServiceAccount:
    fields = {"apiVersion", "kind", "metadata", "secrets", "imagePullSecrets", "automountServiceAccountToken"}
    document.node.fields(fields, what="a ServiceAccount")
    namespace = document.namespace or NAMESPACE_WHEN_OMITTED  # always set: the kind is namespaced
    return ServiceAccount(document.name, namespace, document.labels, location=document.location)
