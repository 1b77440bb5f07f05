"""Calico policy rules into the model, validated as Calico's validator validates them.

A rule Calico would reject never reaches a cluster, so an oracle that accepted it would predict
behaviour nobody can observe; a rule it read differently from Calico would predict the wrong thing.
Each check below is one of `validateRule` / `validateEntityRule` / `numorstring` in libcalico-go
(calico-semantics.md §2.1, §2.2): protocols by name or number, ICMP fields only with an ICMP protocol,
ports only with a protocol that has ports, CIDRs of one family, `global()` only as a whole
namespaceSelector, `services` alone.
"""

from __future__ import annotations

import ipaddress
import re

from calico_conformance.oracle.loader_document import parse_rule_net
from calico_conformance.oracle.model import (
    PROTOCOL_NUMBERS,
    Action,
    Direction,
    EntityRule,
    IcmpMatch,
    IPNetwork,
    NamedPort,
    Port,
    PortRange,
    Rule,
    ServiceAccountMatch,
    ServiceMatch,
)
from calico_conformance.oracle.selector import Selector, SelectorError, parse_selector
from calico_conformance.oracle.yamlsrc import Node

ACTIONS: tuple[Action, ...] = ("Allow", "Deny", "Pass", "Log")
PORT_PROTOCOLS = frozenset({6, 17, 132})  # numorstring `SupportsPorts`: TCP, UDP, SCTP — not UDPLite
ICMP_PROTOCOLS = {1: 4, 58: 6}  # ICMP -> IPv4, ICMPv6 -> IPv6
# numorstring/port.go lines 57-59 (v3.27.5 and v3.31.7), in Python: Go's `\d` is ASCII [0-9] (Python's
# takes full-width and superscript digits) and Go's `$` ends the text (Python's also matches before a
# trailing newline, which a YAML block scalar leaves).
_PORT_RANGE = re.compile(r"^([0-9]+):([0-9]+)\Z")
_PORT_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,128}\Z")
HTTP_UNSUPPORTED = (
    "http rules need application-layer policy (Istio and Dikastes) and are not supported by the oracle"
)

RULE_FIELDS = frozenset(
    {"action", "protocol", "notProtocol", "icmp", "notICMP", "ipVersion", "source", "destination",
     "http", "metadata"}
)  # fmt: skip
RULE_HINTS = {
    "ports": "ports belong under source or destination, e.g. destination: {ports: [80]}",
    "notPorts": "notPorts belong under source or destination",
    "nets": "nets belong under source or destination",
    "selector": "selectors belong under source or destination",
}
ENTITY_FIELDS = frozenset(
    {"nets", "notNets", "selector", "notSelector", "namespaceSelector", "serviceAccounts", "services",
     "ports", "notPorts"}
)  # fmt: skip
ENTITY_HINTS = {"domains": "DNS policy (domains) is a Calico Enterprise feature, not in Calico Open Source"}


def read_selector(node: Node, *, global_allowed: bool = False) -> Selector:
    """A selector field; `global()` is legal only where Calico allows it (§2.2)."""
    text = node.string()
    try:
        selector = parse_selector(text)
    except SelectorError as error:
        raise node.error(str(error)) from None
    if selector.uses_global() and not global_allowed:
        raise node.error(
            f"global() is not allowed here ({text!r}); it is only valid as a rule's entire namespaceSelector"
        )
    return selector


def _protocol(node: Node) -> int:
    value = node.value
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise node.error(f"invalid protocol {value!r}")
    if isinstance(value, int):
        if not 1 <= value <= 255:
            raise node.error(f"protocol number {value} is out of range: must be between 1 and 255")
        return value
    if value not in PROTOCOL_NUMBERS:
        raise node.error(
            f"unknown protocol {value!r}; expected {', '.join(PROTOCOL_NUMBERS)} or a number 1-255"
        )
    return PROTOCOL_NUMBERS[value]


def _icmp(node: Node) -> IcmpMatch:
    node.fields({"type", "code"}, what="an ICMP match")
    type_node, code_node = node.get("type"), node.get("code")
    icmp_type = type_node.integer() if type_node is not None else None
    code = code_node.integer() if code_node is not None else None
    if icmp_type is not None and not 0 <= icmp_type <= 254:
        raise node.error(f"ICMP type {icmp_type} is out of range: must be between 0 and 254")
    if code is not None:
        if icmp_type is None:
            raise node.error("an ICMP code needs an ICMP type")
        if not 0 <= code <= 255:
            raise node.error(f"ICMP code {code} is out of range: must be between 0 and 255")
    return IcmpMatch(icmp_type, code)


def _port_number(node: Node, number: int) -> int:
    if not 1 <= number <= 65535:
        raise node.error(f"port {number} is out of range: must be between 1 and 65535")
    return number


def read_port(node: Node) -> Port:
    """`80`, `"1000:2000"` (inclusive) or a named port, as `numorstring.Port` parses them."""
    value = node.value
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise node.error(f"invalid port {value!r}: expected a number, 'first:last' or a port name")
    if isinstance(value, int):
        number = _port_number(node, value)
        return PortRange(number, number)
    if value.isascii() and value.isdigit():  # not isdigit alone: it takes full-width and superscripts
        number = _port_number(node, int(value))
        return PortRange(number, number)
    span = _PORT_RANGE.match(value)
    if span:
        first, last = (_port_number(node, int(part)) for part in span.groups())
        if first > last:
            raise node.error(f"invalid port range {value!r}: the first port must not exceed the last")
        return PortRange(first, last)
    if not _PORT_NAME.match(value):
        raise node.error(f"invalid port {value!r}: expected a number, 'first:last' or a port name")
    return NamedPort(value)


def _nets(node: Node | None) -> tuple[IPNetwork, ...]:
    return tuple(parse_rule_net(item) for item in node.items()) if node is not None else ()


def _ports(node: Node | None) -> tuple[Port, ...]:
    return tuple(read_port(item) for item in node.items()) if node is not None else ()


def read_entity(node: Node | None, *, policy_namespace: str | None) -> EntityRule:
    """A source or destination; services are resolved to the policy namespace when it has one."""
    if node is None:
        return EntityRule()
    node.fields(ENTITY_FIELDS, what="a rule source/destination", hints=ENTITY_HINTS)
    selector, not_selector, ns_node = (
        node.get("selector"),
        node.get("notSelector"),
        node.get("namespaceSelector"),
    )
    namespace_selector = None
    if ns_node is not None:
        namespace_selector = read_selector(ns_node, global_allowed=True)
        if namespace_selector.uses_global() and str(namespace_selector) != "global()":
            raise ns_node.error(
                f"global() may not be combined with other expressions ({ns_node.value!r}); "
                "write namespaceSelector: global() on its own"
            )
    accounts = node.get("serviceAccounts")
    return EntityRule(
        nets=_nets(node.get("nets")),
        not_nets=_nets(node.get("notNets")),
        selector=read_selector(selector) if selector is not None else None,
        not_selector=read_selector(not_selector) if not_selector is not None else None,
        namespace_selector=namespace_selector,
        service_accounts=_service_accounts(accounts) if accounts is not None else None,
        services=_services(node, policy_namespace),
        ports=_ports(node.get("ports")),
        not_ports=_ports(node.get("notPorts")),
    )


def _service_accounts(node: Node) -> ServiceAccountMatch:
    node.fields({"names", "selector"}, what="a serviceAccounts match")
    names, selector = node.get("names"), node.get("selector")
    return ServiceAccountMatch(
        names=tuple(names.strings()) if names is not None else (),
        selector=read_selector(selector) if selector is not None else None,
    )


def _services(entity: Node, policy_namespace: str | None) -> ServiceMatch | None:
    node = entity.get("services")
    if node is None:
        return None
    node.fields({"name", "namespace"}, what="a services match")
    combined = [key for key in ("selector", "notSelector", "namespaceSelector", "serviceAccounts", "nets",
                                "notNets") if entity.has(key)]  # fmt: skip
    if combined:
        raise node.error(f"services may not be combined with {', '.join(combined)}")
    name = node.require("name").string()
    namespace_node = node.get("namespace")
    namespace = namespace_node.string() if namespace_node is not None else None
    if namespace is None:
        if policy_namespace is None:
            raise node.error("a GlobalNetworkPolicy services match needs a namespace")
        namespace = policy_namespace
    return ServiceMatch(name, namespace)


def read_rule(node: Node, direction: Direction, *, policy_namespace: str | None) -> Rule:
    """One Calico rule of `direction`, checked as `validateRule` checks it."""
    node.fields(RULE_FIELDS, what="a rule", hints=RULE_HINTS)
    if node.has("http"):
        raise node.require("http").error(HTTP_UNSUPPORTED)
    metadata = node.get("metadata")
    if metadata is not None:
        metadata.fields({"annotations"}, what="rule metadata")
        annotations = metadata.get("annotations")
        if annotations is not None:
            annotations.string_map("annotations")
    action_node = node.require("action")
    action = action_node.string()
    if action not in ACTIONS:
        raise action_node.error(f"invalid action {action!r}; expected one of {', '.join(ACTIONS)}")
    protocol_node, not_protocol_node = node.get("protocol"), node.get("notProtocol")
    protocol = _protocol(protocol_node) if protocol_node is not None else None
    not_protocol = _protocol(not_protocol_node) if not_protocol_node is not None else None
    ip_version = _ip_version(node.get("ipVersion"))
    icmp_node, not_icmp_node = node.get("icmp"), node.get("notICMP")
    for icmp_field in (icmp_node, not_icmp_node):
        if icmp_field is None:
            continue
        if protocol not in ICMP_PROTOCOLS:
            raise icmp_field.error("ICMP type/code need protocol ICMP or ICMPv6")
        if ip_version is not None and ICMP_PROTOCOLS[protocol] != ip_version:
            raise icmp_field.error(
                f"protocol {protocol_node and protocol_node.value} does not match ipVersion {ip_version}"
            )
    source_node, destination_node = node.get("source"), node.get("destination")
    source = read_entity(source_node, policy_namespace=policy_namespace)
    destination = read_entity(destination_node, policy_namespace=policy_namespace)
    _check_services_side(direction, source_node, destination_node)
    _check_ports(node, protocol, source_node, destination_node)
    _check_families(node, ip_version, source, destination)
    return Rule(
        action=action,
        protocol=protocol,
        not_protocol=not_protocol,
        icmp=_icmp(icmp_node) if icmp_node is not None else None,
        not_icmp=_icmp(not_icmp_node) if not_icmp_node is not None else None,
        ip_version=ip_version,
        source=source,
        destination=destination,
        location=node.location,
    )


def _ip_version(node: Node | None) -> int | None:
    if node is None:
        return None
    version = node.integer()
    if version not in (4, 6):
        raise node.error(f"invalid ipVersion {version}; expected 4 or 6")
    return version


def _check_services_side(direction: Direction, source: Node | None, destination: Node | None) -> None:
    """Services match only an egress destination or an ingress source; destination services carry
    their own ports (from the EndpointSlices), so ports there are rejected."""
    wrong = destination if direction is Direction.INGRESS else source
    if wrong is not None and wrong.has("services"):
        side = "ingress destination" if direction is Direction.INGRESS else "egress source"
        raise wrong.require("services").error(f"services may not be used as an {side}")
    if destination is not None and destination.has("services"):
        for key in ("ports", "notPorts"):
            if destination.has(key):
                raise destination.require(key).error(f"cannot specify {key} with a services match")


def _check_ports(rule: Node, protocol: int | None, *entities: Node | None) -> None:
    for entity in entities:
        for key in ("ports", "notPorts"):
            field = entity.get(key) if entity is not None else None
            if field is not None and field.value and protocol not in PORT_PROTOCOLS:
                written = rule.require("protocol").value if rule.has("protocol") else "not set"
                raise field.error(f"{key} need protocol TCP, UDP or SCTP (protocol is {written})")


def _check_families(rule: Node, ip_version: int | None, *entities: EntityRule) -> None:
    families = {net.version for entity in entities for net in (*entity.nets, *entity.not_nets)}
    if len(families) > 1:
        raise rule.error("a rule may not mix IPv4 and IPv6 CIDRs")
    if ip_version is not None and families and families != {ip_version}:
        raise rule.error(f"CIDRs of IPv{families.pop()} do not match ipVersion {ip_version}")


# Calico's rule validator refuses a catch-all CIDR in `notNets` ("catch-all CIDR in negation creates
# logical contradiction (matches no traffic)": libcalico-go validator.go v3.31.7 lines 1357-1373; the
# IPv4 test is the text "0.0.0.0/0", the IPv6 one any spelling of ::/0). It came in v3.30.4 (PR #10563)
# and is absent from v3.27.5 to v3.30.0; the oracle models versions by minor, so it applies from 3.31.
CATCH_ALL_NOT_NETS_REFUSED_SINCE = (3, 31)


def refuse_catch_all_not_nets(spec: Node, version: tuple[int, int]) -> None:
    """From CATCH_ALL_NOT_NETS_REFUSED_SINCE, a `notNets` item that excludes every address is an error."""
    if version < CATCH_ALL_NOT_NETS_REFUSED_SINCE:
        return
    for direction in ("ingress", "egress"):
        rules = spec.get(direction)
        for rule in rules.items(direction) if rules is not None else []:
            for side_name in ("source", "destination"):
                side = rule.get(side_name) if isinstance(rule.value, dict) else None
                not_nets = side.get("notNets") if side is not None and isinstance(side.value, dict) else None
                for item in not_nets.items("notNets") if not_nets is not None else []:
                    text = item.value if isinstance(item.value, str) else ""
                    if text == "0.0.0.0/0" or (":" in text and _is_all_ipv6(text)):
                        raise item.error(
                            f"notNets {text!r} excludes every address, so the rule matches no traffic; "
                            "Calico refuses it from v3.30.4 ('catch-all CIDR in negation creates logical "
                            "contradiction')"
                        )


def _is_all_ipv6(text: str) -> bool:
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError:
        return False
    return network.version == 6 and network.prefixlen == 0
