"""Every pair of pods at once, at a cost that grows with distinct label sets rather than pods squared.

Two pods that every selector, every CIDR of every rule and every named port sees alike are
interchangeable: felix puts them in the same IP sets and the same policy chains. So pods are grouped into
classes by a signature holding exactly those facts:

* the label map restricted to the keys some final selector reads (policy selectors, rule selectors with
  their namespace scoping and folded notSelectors; `scoping.py`),
* which network sets contain the pod's IP (their labels are matched on the pod's behalf),
* which rule CIDRs (nets, notNets) contain the pod's IP,
* the names and protocols of the container ports equal to the probed port (named ports).

Each side of each rule then becomes a bit mask over classes, and the §1.2 pipeline runs once per class
and direction on masks: `allowed`, `undecided` and the tier's still-`active` peers are sets of classes, a
rule acts on `rule mask & active` in one big-integer operation. Masks are computed by asking the very
matcher `verdict` uses (`EntityMatcher.matches`) about one representative pod per class, so the fast path
shares the slow path's semantics; the unit tests prove the two agree on random clusters.

Scopes know which namespaces their selector can match; classes in other namespaces are skipped unless
their representative could fool that shortcut (its own `pcns.*` labels shadow the inherited ones, or a
network set contains its IP), in which case it is always evaluated.
"""

from __future__ import annotations

import gc
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import compress, repeat
from operator import itemgetter

from calico_conformance.oracle.endpoints import AddressView, EndpointIndex, LabelMap
from calico_conformance.oracle.errors import LocatedError
from calico_conformance.oracle.model import Direction, IPAddress, IPNetwork, Pod
from calico_conformance.oracle.rules import (
    CompiledPolicy,
    CompiledRule,
    CompiledTier,
    EntityMatcher,
    Transport,
)
from calico_conformance.oracle.scoping import Scope
from calico_conformance.oracle.selector import NAMESPACE_PREFIX, Selector

_BIT = {"0": False, "1": True}


@dataclass(frozen=True)
class PairMatrix:
    """Allowed-or-not for every ordered pair of distinct pods, stored per class pair."""

    pods: tuple[Pod, ...]
    class_of: tuple[int, ...]  # class index of each pod
    allowed_rows: tuple[int, ...]  # per source class: bit mask over destination classes

    @property
    def classes(self) -> int:
        return len(self.allowed_rows)

    @property
    def pairs(self) -> int:
        return len(self.pods) * (len(self.pods) - 1)

    @cached_property
    def _position(self) -> dict[str, int]:
        return {pod.key: i for i, pod in enumerate(self.pods)}

    def allowed(self, source: str, destination: str) -> bool:
        row = self.allowed_rows[self.class_of[self._position[source]]]
        return bool(row >> self.class_of[self._position[destination]] & 1)

    def allowed_count(self) -> int:
        """How many ordered pairs of distinct pods are allowed, counted per class pair."""
        sizes = [0] * self.classes
        for cls in self.class_of:
            sizes[cls] += 1
        total = 0
        for source, size in enumerate(sizes):
            bits = format(self.allowed_rows[source], f"0{self.classes}b")[::-1]
            reachable = sum(compress(sizes, map(_BIT.__getitem__, bits)))
            # a pod of a class that may reach its own class does not count itself
            total += size * (reachable - (1 if bits[source] == "1" else 0))
        return total

    def _values_by_class(self) -> dict[int, tuple[bool, ...]]:
        """Per source class, the allowed flag of every destination pod in pod order (C-speed gathers)."""
        gather = itemgetter(*self.class_of)
        values = {}
        for cls in set(self.class_of):
            bits = format(self.allowed_rows[cls], f"0{self.classes}b")[::-1]  # bits[d]: may reach class d
            gathered = gather(list(map(_BIT.__getitem__, bits)))
            values[cls] = gathered if isinstance(gathered, tuple) else (gathered,)
        return values

    def as_dict(self) -> dict[tuple[str, str], bool]:
        """`{(source, destination): allowed}` for every ordered pair of distinct pods.

        For 5,000 pods that is 25 million new key tuples. Each batch of allocations would trigger the
        cyclic garbage collector, whose full passes over an ever larger heap cost more than building the
        dict and can find nothing to free (the tuples hold only strings), so it is paused meanwhile.
        """
        result: dict[tuple[str, str], bool] = {}
        if not self.pods:
            return result
        keys = [pod.key for pod in self.pods]
        values = self._values_by_class()
        collecting = gc.isenabled()
        gc.disable()
        try:
            for source, cls in zip(keys, self.class_of, strict=True):
                result.update(zip(zip(repeat(source), keys), values[cls], strict=True))
                del result[(source, source)]
        finally:
            if collecting:
                gc.enable()
        return result


class _Classes:
    """Pods grouped by signature, with one representative each and the shortcuts scopes allow."""

    def __init__(
        self,
        endpoints: EndpointIndex,
        pods: Sequence[Pod],
        tiers: Sequence[CompiledTier],
        transport: Transport,
    ) -> None:
        self.endpoints = endpoints
        keys: set[str] = set()
        nets: set[IPNetwork] = set()
        for policy in _policies(tiers):
            keys |= policy.scope.selector.label_keys()
            for rule in (*policy.ingress, *policy.egress):
                for side in (rule.source, rule.destination):
                    for selector in side.selectors.selectors:
                        keys |= selector.label_keys()
                    nets.update(net for net in side.nets if net.version == transport.ip_version)
        in_nets = _net_membership(pods, sorted(nets, key=lambda n: (n.network_address, n.prefixlen)))

        index: dict[object, int] = {}
        self.class_of: list[int] = []
        self.views: list[AddressView] = []
        self.labels: list[LabelMap] = []
        self.by_namespace: dict[str, list[int]] = {}
        self.always: list[int] = []
        for pod, pod_nets in zip(pods, in_nets, strict=True):
            labels = endpoints.pod_labels[pod.key]
            signature = (
                tuple(sorted((k, v) for k, v in labels.items() if k in keys)),
                endpoints.network_sets_at(pod.ip),
                pod_nets,
                frozenset((c.name, c.protocol) for c in pod.ports if c.name and c.port == transport.port),
            )
            cls = index.get(signature)
            if cls is None:
                cls = index[signature] = len(self.views)
                view = endpoints.view(pod.ip)
                self.views.append(view)
                self.labels.append(labels)
                self.by_namespace.setdefault(pod.namespace, []).append(cls)
                shadowed = any(key.startswith(NAMESPACE_PREFIX) for key in pod.labels)
                if shadowed or len(view.owners) > 1:
                    self.always.append(cls)
            self.class_of.append(cls)
        self.count = len(self.views)
        self.full = (1 << self.count) - 1
        self._namespaces_of: dict[Selector, list[str]] = {}

    def candidates(self, scope: Scope | None) -> Iterable[int]:
        """Classes whose representative might match `scope` (all of them when it implies nothing)."""
        if scope is None or (scope.namespace is None and scope.namespace_selector is None):
            return range(self.count)
        if scope.namespace is not None:
            namespaces = [scope.namespace]
        else:
            assert scope.namespace_selector is not None
            namespaces = self._selected_namespaces(scope.namespace_selector)
        found = [cls for namespace in namespaces for cls in self.by_namespace.get(namespace, ())]
        return sorted({*found, *self.always}) if self.always else found

    def _selected_namespaces(self, selector: Selector) -> list[str]:
        found = self._namespaces_of.get(selector)
        if found is None:
            facts = self.endpoints.namespaces
            found = [name for name in self.by_namespace if selector.matcher(facts[name].labels)]
            self._namespaces_of[selector] = found
        return found


def endpoint_classes(
    endpoints: EndpointIndex,
    tiers: Sequence[CompiledTier],
    pods: Sequence[Pod],
    addresses: Sequence[IPAddress],
    transport: Transport,
) -> tuple[tuple[object, ...], tuple[object, ...]]:
    """Per pod and per outside address, a class label that equal ends of a flow share exactly when no
    selector, rule CIDR, network set or named port of the policy set tells them apart on `transport`
    (the signature `all_pairs` groups by). Pods and addresses never share a label."""
    classes = _Classes(endpoints, pods, tiers, transport) if pods else None
    pod_labels: tuple[object, ...] = tuple(("pod", cls) for cls in classes.class_of) if classes else ()
    nets = sorted(
        {
            net
            for policy in _policies(tiers)
            for rule in (*policy.ingress, *policy.egress)
            for side in (rule.source, rule.destination)
            for net in side.nets
            if net.version == transport.ip_version
        },
        key=lambda n: (n.network_address, n.prefixlen),
    )
    address_labels: tuple[object, ...] = tuple(
        (
            "address",
            tuple(i for i, net in enumerate(nets) if address.version == net.version and address in net),
            endpoints.network_sets_at(address),
        )
        for address in addresses
    )
    return pod_labels, address_labels


def _policies(tiers: Sequence[CompiledTier]) -> Iterator[CompiledPolicy]:
    for tier in tiers:
        yield from tier.policies


def _net_membership(pods: Sequence[Pod], nets: Sequence[IPNetwork]) -> list[tuple[int, ...]]:
    """For each pod, the indices of the nets containing its IP (by bisection over sorted pod IPs)."""
    order = sorted(range(len(pods)), key=lambda i: int(pods[i].ip))
    addresses = [int(pods[i].ip) for i in order]
    members: list[list[int]] = [[] for _ in pods]
    for n, net in enumerate(nets):
        first = bisect_left(addresses, int(net.network_address))
        last = bisect_right(addresses, int(net.broadcast_address))
        for position in range(first, last):
            members[order[position]].append(n)
    return [tuple(found) for found in members]


class _Evaluator:
    """The §1.2 pipeline over bit masks of classes."""

    def __init__(self, classes: _Classes, tiers: Sequence[CompiledTier], transport: Transport) -> None:
        self.classes = classes
        self.transport = transport
        self._entity_masks: dict[tuple[object, ...], int] = {}
        self._rule_masks: dict[int, tuple[int, int] | None] = {}
        self.applicable: dict[Direction, list[list[tuple[CompiledTier, list[CompiledPolicy]]]]] = {
            direction: [[] for _ in range(classes.count)] for direction in Direction
        }
        selected: dict[Scope, list[int]] = {}
        for tier in tiers:
            for policy in tier.policies:
                members = selected.get(policy.scope)
                if members is None:
                    matcher = policy.scope.selector.matcher
                    candidates = classes.candidates(policy.scope)
                    members = selected[policy.scope] = [c for c in candidates if matcher(classes.labels[c])]
                for direction in policy.policy.types:
                    lists = self.applicable[direction]
                    for cls in members:
                        chain = lists[cls]
                        if not chain or chain[-1][0] is not tier:
                            chain.append((tier, []))
                        chain[-1][1].append(policy)

    def entity_mask(self, matcher: EntityMatcher) -> int:
        key = matcher.cache_key
        mask = self._entity_masks.get(key)
        if mask is None:
            classes, transport = self.classes, self.transport
            if not matcher.reads_peer:
                mask = classes.full if matcher.matches(classes.views[0], transport) else 0
            else:
                mask = 0
                for cls in classes.candidates(matcher.scope):
                    if matcher.matches(classes.views[cls], transport):
                        mask |= 1 << cls
            self._entity_masks[key] = mask
        return mask

    def rule_masks(self, rule: CompiledRule) -> tuple[int, int] | None:
        """(source mask, destination mask), or None when the rule cannot match this transport."""
        key = id(rule)
        if key not in self._rule_masks:
            matches = rule.matches_transport(self.transport)
            self._rule_masks[key] = (
                (self.entity_mask(rule.source), self.entity_mask(rule.destination)) if matches else None
            )
        return self._rule_masks[key]

    def tier_hits(
        self, policies: Sequence[CompiledPolicy], local: int, direction: Direction, undecided: int
    ) -> tuple[list[tuple[CompiledPolicy, CompiledRule, int]], int]:
        """One tier's walk for this class: each (policy, rule, peer classes) whose first matching rule
        it is, in felix's order, among the peers still `undecided`; and the peers no rule matched.
        Log rules match and carry on; Allow, Deny and Pass take their peers out of the tier."""
        egress = direction is Direction.EGRESS
        active, hits = undecided, []  # peers this tier still has to decide
        for policy in policies:
            for rule in policy.rules(direction):
                masks = self.rule_masks(rule) if active else None
                if masks is None or rule.action == "Log":
                    continue
                local_mask, peer_mask = masks if egress else masks[::-1]
                hit = peer_mask & active if local_mask >> local & 1 else 0
                if hit:
                    active &= ~hit
                    hits.append((policy, rule, hit))
        return hits, active

    def allowed_peers(self, local: int, direction: Direction) -> int:
        """The classes this class may talk to (egress) or hear from (ingress)."""
        undecided, allowed = self.classes.full, 0
        for tier, policies in self.applicable[direction][local]:
            hits, active = self.tier_hits(policies, local, direction, undecided)
            for _, rule, hit in hits:
                if rule.action == "Allow":
                    allowed |= hit
                    undecided &= ~hit
                elif rule.action == "Deny":
                    undecided &= ~hit
                # Pass: stays undecided, leaves this tier for the next
            if tier.default_action != "Pass":
                undecided &= ~active  # end-of-tier deny
            if not undecided:
                break
        return allowed | undecided  # what is left reaches the namespace profile, which allows


def pair_matrix(
    endpoints: EndpointIndex,
    tiers: Sequence[CompiledTier],
    pods: Sequence[Pod],
    port: int | None,
    protocol: str,
) -> PairMatrix:
    """Every ordered pair of distinct pods for one port and protocol (see the module docstring)."""
    versions = {pod.ip.version for pod in pods}
    if len(versions) > 1:
        raise LocatedError(None, "all-pairs needs pods of one IP version (IPv4 and IPv6 pods never talk)")
    transport = Transport.of(protocol, port, versions.pop() if versions else 4)
    if not pods:
        return PairMatrix((), (), ())
    classes = _Classes(endpoints, pods, tiers, transport)
    evaluator = _Evaluator(classes, tiers, transport)
    count = classes.count
    egress = [evaluator.allowed_peers(cls, Direction.EGRESS) for cls in range(count)]
    # Row d of `ingress_bits` says which source classes d accepts; column s is then which destinations
    # accept s. Slicing a string transposes the bit matrix at C speed.
    ingress_bits = "".join(
        format(evaluator.allowed_peers(cls, Direction.INGRESS), f"0{count}b")[::-1] for cls in range(count)
    )
    rows = tuple(egress[s] & int(ingress_bits[s::count][::-1], 2) for s in range(count))
    return PairMatrix(tuple(pods), tuple(classes.class_of), rows)
