"""For one pod and direction: the rules that apply, in felix's order, and which transports they tell apart.

Two things make the flow table affordable on a 2,000-policy set, both decided here:

* a rule that names a protocol, or numeric destination ports, can only match transports of that
  protocol on those ports, so each rule carries that filter and the walk skips it in one comparison
  for every other transport (the same test `CompiledRule.matches` makes first, hoisted);
* transports no applicable rule names by number, and that are no pod's container port (so no named
  port can resolve to them either), are decided identically, protocol by protocol: the table walks one
  representative per protocol and lets it stand for the rest (`TransportClasses`).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.model import Direction, NamedPort, Pod, PortRange
from calico_conformance.oracle.rules import (
    CompiledPolicy,
    CompiledRule,
    CompiledTier,
    EntityMatcher,
    Transport,
)

# Port ranges up to this many ports are expanded into a set (one lookup); wider ones are kept as ranges.
EXPANDED_RANGE_PORTS = 64


@dataclass(frozen=True)
class RuleEntry:
    """An applicable rule with its transport filter hoisted out of `CompiledRule.matches`."""

    policy: CompiledPolicy
    rule: CompiledRule
    protocol: int | None  # None: any protocol
    ports: frozenset[int] | None  # None: the destination does not restrict the port to a number
    ranges: tuple[PortRange, ...]  # wide ranges not expanded into `ports`
    own: EntityMatcher  # the side evaluated on the pod itself
    other: EntityMatcher  # the side evaluated on the peer

    def admits(self, transport: Transport) -> bool:
        """False only when `CompiledRule.matches` is certainly false for this transport."""
        if self.protocol is not None and self.protocol != transport.protocol:
            return False
        if self.ports is None:
            return True
        port = transport.port
        return port is not None and (port in self.ports or any(port in r for r in self.ranges))


def _entry(policy: CompiledPolicy, rule: CompiledRule, direction: Direction) -> RuleEntry:
    own, other = (
        (rule.source, rule.destination) if direction is Direction.EGRESS else (rule.destination, rule.source)
    )
    listed = rule.rule.destination.ports
    numeric = bool(listed) and not any(isinstance(p, NamedPort) for p in listed)
    ports: frozenset[int] | None = None
    wide: tuple[PortRange, ...] = ()
    if numeric:
        ranges = [p for p in listed if isinstance(p, PortRange)]
        narrow = [r for r in ranges if r.last - r.first < EXPANDED_RANGE_PORTS]
        ports = frozenset(port for r in narrow for port in range(r.first, r.last + 1))
        wide = tuple(r for r in ranges if r.last - r.first >= EXPANDED_RANGE_PORTS)
    return RuleEntry(policy, rule, rule.rule.protocol, ports, wide, own, other)


@dataclass(frozen=True)
class ApplicableTier:
    tier: CompiledTier
    policies: tuple[CompiledPolicy, ...]
    entries: tuple[RuleEntry, ...]  # every non-Log rule of the policies, in evaluation order


def applicable_tiers(
    tiers: Sequence[tuple[CompiledTier, tuple[CompiledPolicy, ...]]], direction: Direction
) -> tuple[ApplicableTier, ...]:
    """`Oracle.applicable` for one pod and direction, with the rules unpacked. Log rules decide nothing
    (felix logs and carries on), so they are left out."""
    return tuple(
        ApplicableTier(
            tier,
            policies,
            tuple(
                _entry(policy, rule, direction)
                for policy in policies
                for rule in policy.rules(direction)
                if rule.action != "Log"
            ),
        )
        for tier, policies in tiers
    )


class TransportPlan:
    """The sample's transports, once: sorted by port for range look-ups, and split into those a pod listens
    on (or that have no port) and the candidates for being plain, grouped by protocol."""

    def __init__(self, transports: Sequence[Transport], container_ports: frozenset[int]) -> None:
        self.transports = tuple(transports)
        self.by_port = sorted((t.port, index) for index, t in enumerate(transports) if t.port is not None)
        self.ports = [port for port, _ in self.by_port]
        self.always_walked = [t for t in transports if t.port is None or t.port in container_ports]
        self.candidates: dict[int, list[int]] = {}  # protocol -> indices of plain candidates, in order
        for index, transport in enumerate(transports):
            if transport.port is not None and transport.port not in container_ports:
                self.candidates.setdefault(transport.protocol, []).append(index)


class TransportClasses:
    """Each transport of the sample mapped to the transport walked in its stead for one pod and direction."""

    def __init__(self, plan: TransportPlan, tiers: Sequence[ApplicableTier]) -> None:
        named: set[int] = set()
        for tier in tiers:
            for entry in tier.entries:
                if entry.ports is None:
                    continue
                for first, last in [(p, p) for p in entry.ports] + [(r.first, r.last) for r in entry.ranges]:
                    found = plan.by_port[bisect_left(plan.ports, first) : bisect_right(plan.ports, last)]
                    named.update(index for _, index in found)
        # How many transports of the sample each walked transport stands for; the keys are the walked ones.
        self.weights: dict[Transport, int] = dict.fromkeys(plan.always_walked, 1)
        self.weights.update((plan.transports[index], 1) for index in named)
        self.plain: dict[int, Transport] = {}  # per protocol: the transport walked for every plain one
        for protocol, indices in plan.candidates.items():
            unnamed = [index for index in indices if index not in named] if named else indices
            if unnamed:
                self.plain[protocol] = plan.transports[unnamed[0]]
                self.weights[self.plain[protocol]] = len(unnamed)

    def representative(self, transport: Transport) -> Transport:
        return transport if transport in self.weights else self.plain[transport.protocol]


class PoliciesByNamespace:
    """`Oracle.applicable` with a necessary condition first: a namespaced policy's final selector requires
    `projectcalico.org/namespace == <its namespace>`, a pseudo-label no pod label can override
    (endpoints.py), so it is only tested on pods of that namespace. Order within each tier is kept."""

    def __init__(self, oracle: Oracle) -> None:
        self.oracle = oracle
        self._by_namespace: dict[str, list[tuple[CompiledTier, tuple[CompiledPolicy, ...]]]] = {}

    def _candidates(self, namespace: str) -> list[tuple[CompiledTier, tuple[CompiledPolicy, ...]]]:
        found = self._by_namespace.get(namespace)
        if found is None:
            found = self._by_namespace[namespace] = [
                (tier, tuple(p for p in tier.policies if p.policy.namespace in (None, namespace)))
                for tier in self.oracle.tiers
            ]
        return found

    def applicable(
        self, pod: Pod, direction: Direction
    ) -> tuple[tuple[CompiledTier, tuple[CompiledPolicy, ...]], ...]:
        labels = self.oracle.endpoints.pod_labels[pod.key]
        return tuple(
            (tier, selecting)
            for tier, candidates in self._candidates(pod.namespace)
            if (selecting := tuple(p for p in candidates if p.applies(direction, labels)))
        )
