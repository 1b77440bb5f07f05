"""Whether one Calico rule matches one packet (calico-semantics.md §2.1, §2.2, §2.4).

A rule matches when every criterion it states matches; list fields are OR within the field, `not*`
fields match when the packet is in none of the listed values. Selectors match *known objects* (see
`endpoints.py`); the selector text felix evaluates comes from `scoping.py`.

Two decisions the probes force on us, stated here once:

* The probe's **source port is ephemeral**: Linux picks it from `net.ipv4.ip_local_port_range`, by
  default 32768-60999. A source `ports` list that covers that whole range always matches, one that misses
  it entirely never does; one that covers part of it would make the outcome depend on the kernel's pick,
  so the oracle refuses it with a located error rather than guess. Named source ports are refused for
  the same reason (the pod's named port is a fixed number that may or may not be the ephemeral one).
* **ICMP probes are echo requests**: type 8 code 0 (ICMPv6: type 128 code 0).

Rules the oracle cannot judge are refused, never ignored: `services` matches need the Service and
EndpointSlice model the oracle does not have; ports without TCP/UDP/SCTP are invalid in Calico.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from calico_conformance.oracle.endpoints import AddressView, LabelMap
from calico_conformance.oracle.errors import LocatedError
from calico_conformance.oracle.model import (
    PROTOCOL_NUMBERS,
    Direction,
    EntityRule,
    IPNetwork,
    NamedPort,
    Policy,
    PortRange,
    Rule,
)
from calico_conformance.oracle.scoping import EntitySelectors, Scope, entity_selectors, policy_scope

# Linux's default net.ipv4.ip_local_port_range: where a probe's source port comes from.
EPHEMERAL_PORTS = PortRange(32768, 60999)
# Protocols whose rules may carry ports (`SupportsPorts()` in Calico's numorstring).
PORT_PROTOCOLS = frozenset({PROTOCOL_NUMBERS["TCP"], PROTOCOL_NUMBERS["UDP"], PROTOCOL_NUMBERS["SCTP"]})
# What an "ICMP" probe sends, per IP version: (protocol, type, code) of an echo request.
ECHO_REQUEST = {4: (PROTOCOL_NUMBERS["ICMP"], 8, 0), 6: (PROTOCOL_NUMBERS["ICMPv6"], 128, 0)}
PROBE_PROTOCOLS = ("TCP", "UDP", "SCTP", "ICMP")
NAMED_PORT_PROTOCOLS = {PROTOCOL_NUMBERS[name]: name for name in ("UDP", "SCTP")}  # any other: TCP

Role = Literal["source", "destination"]


@dataclass(frozen=True)
class Transport:
    """Everything about a packet except its addresses: protocol number, destination port, ICMP type."""

    protocol: int
    port: int | None
    icmp: tuple[int, int] | None  # (type, code) of an ICMP packet
    ip_version: int

    @classmethod
    def of(cls, protocol: str, port: int | None, ip_version: int) -> Transport:
        """The transport of a probe; raises LocatedError (no location: the caller adds it) on bad input."""
        if protocol not in PROBE_PROTOCOLS:
            raise LocatedError(
                None, f"unknown protocol {protocol!r}: use one of {', '.join(PROBE_PROTOCOLS)}"
            )
        if protocol == "ICMP":
            if port is not None:
                raise LocatedError(None, f"an ICMP probe has no port (got {port})")
            number, icmp_type, icmp_code = ECHO_REQUEST[ip_version]
            return cls(number, None, (icmp_type, icmp_code), ip_version)
        if port is None or not 1 <= port <= 65535:
            raise LocatedError(None, f"a {protocol} probe needs a port between 1 and 65535 (got {port})")
        return cls(PROTOCOL_NUMBERS[protocol], port, None, ip_version)


def _coverage(ranges: Sequence[PortRange], span: PortRange) -> int:
    """How many ports of `span` the union of `ranges` covers."""
    clipped = sorted((max(r.first, span.first), min(r.last, span.last)) for r in ranges)
    covered, reached = 0, span.first - 1
    for first, last in clipped:
        if last <= reached:
            continue
        covered += last - max(first, reached + 1) + 1
        reached = last
    return covered


class EntityMatcher:
    """The `source` or `destination` half of a rule, compiled against the policy's namespace."""

    def __init__(self, entity: EntityRule, policy_namespace: str | None, role: Role, rule: Rule) -> None:
        self.entity = entity
        self.role = role
        self.selectors: EntitySelectors = entity_selectors(entity, policy_namespace)
        positive = self.selectors.positive
        self._positive: Callable[[LabelMap], bool] | None = positive.selector.matcher if positive else None
        negative = self.selectors.negative
        self._negative: Callable[[LabelMap], bool] | None = negative.matcher if negative else None
        self._nets: tuple[IPNetwork, ...] = entity.nets
        self._not_nets: tuple[IPNetwork, ...] = entity.not_nets
        self._ports = tuple(p for p in entity.ports if isinstance(p, PortRange))
        self._named = frozenset(p.name for p in entity.ports if isinstance(p, NamedPort))
        self._not_ports = tuple(p for p in entity.not_ports if isinstance(p, PortRange))
        self._not_named = frozenset(p.name for p in entity.not_ports if isinstance(p, NamedPort))
        # felix renders named ports with the rule's protocol, TCP when the rule names none (rule_scanner.go).
        self._named_protocol = NAMED_PORT_PROTOCOLS.get(rule.protocol or 0, "TCP")
        self._source_ports_match = self._judge_source_ports(rule) if role == "source" else True

    @property
    def cache_key(self) -> tuple[object, ...]:
        """Two matchers with equal keys match exactly the same addresses (the fast path shares them)."""
        return (self.role, self.entity, self.selectors, self._named_protocol, self._source_ports_match)

    @property
    def scope(self) -> Scope | None:
        return self.selectors.positive

    @property
    def reads_peer(self) -> bool:
        """Whether the outcome can differ between two addresses (else it depends on the transport only)."""
        named = self.role == "destination" and bool(self._named or self._not_named)
        return bool(self._nets or self._not_nets or self._positive or self._negative or named)

    @property
    def nets(self) -> tuple[IPNetwork, ...]:
        return self._nets + self._not_nets

    def _judge_source_ports(self, rule: Rule) -> bool:
        if self._named or self._not_named:
            raise LocatedError(
                rule.location,
                "named source ports cannot be judged: a probe's source port is ephemeral "
                f"({EPHEMERAL_PORTS}), so whether it equals the named port is up to the kernel",
            )
        verdict = True
        for ranges, wanted in ((self._ports, True), (self._not_ports, False)):
            if not ranges:
                continue
            covered = _coverage(ranges, EPHEMERAL_PORTS)
            if 0 < covered < EPHEMERAL_PORTS.last - EPHEMERAL_PORTS.first + 1:
                field_name = "ports" if wanted else "notPorts"
                listed = ", ".join(str(r) for r in ranges)
                raise LocatedError(
                    rule.location,
                    f"source {field_name} [{listed}] cover only part of the ephemeral range {EPHEMERAL_PORTS}"
                    " a probe's source port comes from; the outcome would depend on the kernel's pick",
                )
            verdict = verdict and (covered > 0) == wanted
        return verdict

    def matches(self, view: AddressView, transport: Transport) -> bool:
        """Whether the packet end at `view` satisfies every criterion of this entity."""
        ip = view.ip
        if self._nets and not any(ip in net for net in self._nets):
            return False
        if self._not_nets and any(ip in net for net in self._not_nets):
            return False
        if self._positive is not None and not any(self._positive(owner) for owner in view.owners):
            return False
        if self._negative is not None and any(self._negative(owner) for owner in view.owners):
            return False
        if self.role == "source":
            return self._source_ports_match
        port = transport.port
        if self._ports or self._named:
            if port is None:
                return False
            if not (any(port in r for r in self._ports) or self._named_port(view, port, self._named)):
                return False
        if self._not_ports or self._not_named:
            if port is None:
                return False
            if any(port in r for r in self._not_ports) or self._named_port(view, port, self._not_named):
                return False
        return True

    def _named_port(self, view: AddressView, port: int, names: frozenset[str]) -> bool:
        """felix's named-port IP set: (IP, port) of pods matching the positive selector (all() when there
        is none) that expose a container port of one of these names with the rule's protocol."""
        if not names or view.pod is None or view.pod_labels is None:
            return False
        if self._positive is not None and not self._positive(view.pod_labels):
            return False
        return any(
            c.name in names and c.port == port and c.protocol == self._named_protocol for c in view.pod.ports
        )


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    index: int  # position in the policy's rules of its direction, for explanations
    source: EntityMatcher
    destination: EntityMatcher

    @property
    def action(self) -> str:
        return self.rule.action

    def matches_transport(self, transport: Transport) -> bool:
        """The criteria that read neither address: protocol, notProtocol, icmp, notICMP, ipVersion."""
        rule = self.rule
        if rule.protocol is not None and rule.protocol != transport.protocol:
            return False
        if rule.not_protocol is not None and rule.not_protocol == transport.protocol:
            return False
        if rule.ip_version is not None and rule.ip_version != transport.ip_version:
            return False
        if rule.icmp is not None and not _icmp_matches(rule.icmp.type, rule.icmp.code, transport):
            return False
        return rule.not_icmp is None or not _icmp_matches(rule.not_icmp.type, rule.not_icmp.code, transport)

    def matches(self, transport: Transport, source: AddressView, destination: AddressView) -> bool:
        return (
            self.matches_transport(transport)
            and self.source.matches(source, transport)
            and self.destination.matches(destination, transport)
        )


def _icmp_matches(icmp_type: int | None, icmp_code: int | None, transport: Transport) -> bool:
    if transport.icmp is None:
        return False
    return (icmp_type is None or icmp_type == transport.icmp[0]) and (
        icmp_code is None or icmp_code == transport.icmp[1]
    )


def compile_rule(rule: Rule, index: int, policy: Policy) -> CompiledRule:
    """Compile one rule; raises LocatedError (at the rule) for a rule the oracle cannot judge."""
    for side in (rule.source, rule.destination):
        if side.services is not None:
            raise LocatedError(
                rule.location,
                "services rules are not supported by the oracle: it has no Service/EndpointSlice model"
                " to resolve them from",
            )
        if (side.ports or side.not_ports) and rule.protocol not in PORT_PROTOCOLS:
            raise LocatedError(
                rule.location,
                "a rule with ports or notPorts needs protocol TCP, UDP or SCTP (Calico rejects it)",
            )
    return CompiledRule(
        rule,
        index,
        EntityMatcher(rule.source, policy.namespace, "source", rule),
        EntityMatcher(rule.destination, policy.namespace, "destination", rule),
    )


@dataclass(frozen=True)
class CompiledPolicy:
    """A policy with its final selector and compiled rules, in the order felix renders them."""

    policy: Policy
    scope: Scope
    ingress: tuple[CompiledRule, ...]
    egress: tuple[CompiledRule, ...]

    def rules(self, direction: Direction) -> tuple[CompiledRule, ...]:
        return self.ingress if direction is Direction.INGRESS else self.egress

    def applies(self, direction: Direction, labels: LabelMap) -> bool:
        """Whether felix puts this policy in the endpoint's chain for `direction` (§1.2, §1.6)."""
        return direction in self.policy.types and self.scope.selector.matcher(labels)


def compile_policy(policy: Policy, *, strict: bool, problems: list[LocatedError]) -> CompiledPolicy:
    """Compile a policy. Strict: the first rule the oracle cannot judge raises. Non-strict: that rule is
    left out and its error recorded in `problems` (the linter reports them)."""
    compiled: dict[Direction, list[CompiledRule]] = {Direction.INGRESS: [], Direction.EGRESS: []}
    for direction, rules in compiled.items():
        for index, rule in enumerate(policy.rules(direction)):
            try:
                rules.append(compile_rule(rule, index, policy))
            except LocatedError as error:
                if strict:
                    raise
                problems.append(error)
    return CompiledPolicy(
        policy, policy_scope(policy), tuple(compiled[Direction.INGRESS]), tuple(compiled[Direction.EGRESS])
    )


@dataclass(frozen=True)
class CompiledTier:
    """A tier as the evaluator walks it: its name, its default action and its compiled policies, in order."""

    name: str
    default_action: str  # "Deny" | "Pass"
    policies: tuple[CompiledPolicy, ...]
