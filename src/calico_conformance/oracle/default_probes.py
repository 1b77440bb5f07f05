"""A scenario's default probes (every ordered pair of distinct pods x each destination port), decided in bulk.

Two thousand pods make four million default probes: listing them as objects, or judging each one by the
§1.2 walk (`Oracle.verdict`), costs gigabytes and minutes. The grouped path (`grouping.py`) decides every
pair per port and protocol at once, per class of pods no selector, CIDR or named port tells apart. Here the
same walk over bit masks also records *what* decided: per class and direction, the peers each rule (or
end of tier, or pass, or no policy) decided, as a few (mask, `Decision`) segments. A probe's verdict is
then its source class's egress decision about the destination class and the destination class's ingress
decision about the source class: two lookups, the same `Decision` objects for every pair of the same two
classes. The decisions are built exactly as `Oracle._decide` builds them; the unit tests prove the two
agree on random clusters.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from itertools import compress, repeat

from calico_conformance.oracle.errors import LocatedError
from calico_conformance.oracle.evaluate import Oracle, rule_decision
from calico_conformance.oracle.explain import (
    Decision,
    Verdict,
    end_of_tier,
    no_policy,
    tier_passes,
)
from calico_conformance.oracle.grouping import _BIT, PairMatrix, _Classes, _Evaluator
from calico_conformance.oracle.model import Direction, Pod
from calico_conformance.oracle.rules import Transport

Service = tuple[int | None, str]  # (port, protocol)


class GroupedService:
    """One port and protocol on the grouped path: the classes, the allowed matrix, and on demand what
    decided any pair of classes (`decided_peers`, cached per class and direction)."""

    def __init__(self, oracle: Oracle, pods: Sequence[Pod], service: Service) -> None:
        self.service = service
        self.pods = tuple(pods)
        transport = Transport.of(service[1], service[0], pods[0].ip.version if pods else 4)
        self.classes = _Classes(oracle.endpoints, self.pods, oracle.tiers, transport)
        self.evaluator = _Evaluator(self.classes, oracle.tiers, transport)
        self.class_of: tuple[int, ...] = tuple(self.classes.class_of)
        self._segments: dict[tuple[int, Direction], list[tuple[int, Decision]]] = {}

    def matrix(self) -> PairMatrix:
        """What `grouping.pair_matrix` computes, from this evaluator (so decisions come from the same one)."""
        count, evaluator = self.classes.count, self.evaluator
        egress = [evaluator.allowed_peers(cls, Direction.EGRESS) for cls in range(count)]
        ingress_bits = "".join(
            format(evaluator.allowed_peers(cls, Direction.INGRESS), f"0{count}b")[::-1] for cls in range(count)
        )
        rows = tuple(egress[s] & int(ingress_bits[s::count][::-1] or "0", 2) for s in range(count))
        return PairMatrix(self.pods, self.class_of, rows)

    def decision(self, local: int, direction: Direction, peer: int) -> Decision:
        """What decides `direction` for pods of class `local` talking with pods of class `peer`."""
        segments = self._segments.get((local, direction))
        if segments is None:
            segments = self._segments[(local, direction)] = decided_peers(self.evaluator, local, direction)
        return next(decision for mask, decision in segments if mask >> peer & 1)

    def verdict(self, source: int, destination: int) -> Verdict:
        """The verdict between pod indices `source` and `destination`."""
        source_class, destination_class = self.class_of[source], self.class_of[destination]
        egress = self.decision(source_class, Direction.EGRESS, destination_class)
        ingress = self.decision(destination_class, Direction.INGRESS, source_class)
        return Verdict(egress.allowed and ingress.allowed, egress, ingress)


class ServiceDecisions:
    """For one port and protocol: each pod's class, and each class's decision about every peer class."""

    def __init__(self, oracle: Oracle, pods: Sequence[Pod], service: Service) -> None:
        transport = Transport.of(service[1], service[0], pods[0].ip.version)
        classes = _Classes(oracle.endpoints, pods, oracle.tiers, transport)
        evaluator = _Evaluator(classes, oracle.tiers, transport)
        self.class_of: tuple[int, ...] = tuple(classes.class_of)
        self.decisions: list[Decision] = []  # every distinct decision, indexed by the tables below
        self._index: dict[Decision, int] = {}
        # table[direction][local class][peer class] -> index into `decisions`
        self.table: dict[Direction, list[list[int]]] = {
            direction: [self._row(evaluator, local, direction) for local in range(classes.count)]
            for direction in Direction
        }

    def verdict(self, source: int, destination: int) -> Verdict:
        """The verdict of the probe from pod index `source` to pod index `destination`."""
        source_class, destination_class = self.class_of[source], self.class_of[destination]
        egress = self.decisions[self.table[Direction.EGRESS][source_class][destination_class]]
        ingress = self.decisions[self.table[Direction.INGRESS][destination_class][source_class]]
        return Verdict(egress.allowed and ingress.allowed, egress, ingress)

    def _row(self, evaluator: _Evaluator, local: int, direction: Direction) -> list[int]:
        """The decision index for every peer class. Most peers usually share one decision (the end of
        a default-deny tier), so the row starts filled with the widest segment's and only the others are
        written, by C-level maps."""
        count = evaluator.classes.count
        segments = [(mask, self._number(decision)) for mask, decision in decided_peers(evaluator, local, direction)]
        widest = max(range(len(segments)), key=lambda k: segments[k][0].bit_count())
        row = [segments[widest][1]] * count
        for k, (mask, index) in enumerate(segments):
            if k != widest:
                bits = map(_BIT.__getitem__, format(mask, f"0{count}b")[::-1])
                deque(map(row.__setitem__, compress(range(count), bits), repeat(index)), maxlen=0)
        return row

    def _number(self, decision: Decision) -> int:
        index = self._index.get(decision)
        if index is None:
            index = self._index[decision] = len(self.decisions)
            self.decisions.append(decision)
        return index


def decided_peers(evaluator: _Evaluator, local: int, direction: Direction) -> list[tuple[int, Decision]]:
    """`_Evaluator.allowed_peers` that also says who decided: disjoint (peer mask, Decision) segments
    covering every class, each Decision the one `Oracle._decide` gives for a pair of those classes."""
    undecided, segments = evaluator.classes.full, []
    passes: list[tuple[int, Decision]] = []  # the last pass each still-undecided peer took

    def passed(mask: int, decision: Decision) -> None:
        passes[:] = [(earlier & ~mask, by) for earlier, by in passes if earlier & ~mask]
        passes.append((mask, decision))

    for tier, policies in evaluator.applicable[direction][local]:
        hits, active = evaluator.tier_hits(policies, local, direction, undecided)
        for policy, rule, hit in hits:
            decision = rule_decision(direction, tier, policy, rule)
            if rule.action == "Pass":
                passed(hit, decision)
            else:
                segments.append((hit, decision))
                undecided &= ~hit
        if active and tier.default_action == "Pass":
            passed(active, Decision(True, direction, tier_passes(tier.name), tier=tier.name))
        elif active:
            first = policies[0].policy
            ended = Decision(
                False, direction, end_of_tier(tier.name), tier=tier.name, policy=first.display_name,
                location=first.location,
            )
            segments.append((active, ended))
            undecided &= ~active
        if not undecided:
            break
    for mask, decision in passes:
        if mask & undecided:
            segments.append((mask & undecided, decision))
            undecided &= ~mask
    if undecided:
        segments.append((undecided, no_policy(direction)))
    return segments


class PairVerdicts:
    """The verdict of every default probe between `pods`, per service, from `ServiceDecisions`."""

    def __init__(self, oracle: Oracle, pods: Sequence[Pod]) -> None:
        self.pods = tuple(pods)
        _refuse_mixed_versions(self.pods)
        services = sorted({(port.port, port.protocol) for pod in self.pods for port in pod.ports}, key=_order)
        self.services: dict[Service, ServiceDecisions] = {
            service: ServiceDecisions(oracle, self.pods, service) for service in services
        }

    @property
    def count(self) -> int:
        """How many default probes there are: per destination, its ports times the other pods."""
        return sum(len(pod.ports) for pod in self.pods) * max(len(self.pods) - 1, 0)

    def verdict(self, service: Service, source: int, destination: int) -> Verdict:
        return self.services[service].verdict(source, destination)

    def class_pairs(self, service: Service) -> Iterator[tuple[int, int, int]]:
        """(source index, destination index, probes) per pair of classes with probes on `service`: one
        example pair and how many probes (source pods x destinations listening on it) it stands for."""
        class_of = self.services[service].class_of
        members: dict[int, list[int]] = {}
        listening: dict[int, list[int]] = {}
        for index, (pod, cls) in enumerate(zip(self.pods, class_of, strict=True)):
            members.setdefault(cls, []).append(index)
            if any((port.port, port.protocol) == service for port in pod.ports):
                listening.setdefault(cls, []).append(index)
        for source_class, sources in members.items():
            for destination_class, destinations in listening.items():
                probes = len(sources) * len(destinations)
                if source_class == destination_class:
                    probes -= len(destinations)  # a pod never probes itself
                if probes:
                    yield *_example(sources, destinations), probes


def _order(service: Service) -> tuple[str, int]:
    return (service[1], -1 if service[0] is None else service[0])


def _example(sources: Sequence[int], destinations: Sequence[int]) -> tuple[int, int]:
    """A pair of distinct pods, one from each list (there is one when the class pair has probes)."""
    return next((s, d) for s in sources for d in destinations if s != d)


def _refuse_mixed_versions(pods: Sequence[Pod]) -> None:
    """Default probes pair every pod with every other; an IPv4 and an IPv6 pod never talk."""
    if pods and any(pod.ip.version != pods[0].ip.version for pod in pods):
        other = next(pod for pod in pods if pod.ip.version != pods[0].ip.version)
        raise LocatedError(
            other.location,
            f"pod {other.key} is IPv{other.ip.version} but {pods[0].key} is IPv{pods[0].ip.version}: "
            "default probes pair every two pods, so give `probes:` for a dual-stack scenario",
        )
