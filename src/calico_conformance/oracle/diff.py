"""What a policy change does to reachability: the flows whose verdict differs between two policy sets.

Two oracles over the same pods (BASE and HEAD) are compared per port and protocol on the grouped path
(`grouping.py`): each pod gets the pair of its BASE and HEAD classes, and two pods with the same pair are
alike under both policy sets, so rows of the two matrices are compared per joint class, at C speed, and
only changed pairs are expanded to pods. The explanation of a changed flow (each direction's deciding
tier, policy, rule and `file:line`, before and after) comes from the same grouped evaluation
(`default_probes.GroupedService`, the decisions `Oracle.verdict` gives, per class pair), once per pair of
joint classes: every pair of pods of the same joint classes is decided by the same rules.

The cause of a changed flow is the resource change that explains it: the added, removed or modified
policy or tier a decision names before or after; failing that the changed network sets (a grown set
changes what an unchanged rule matches); failing that every change of the pair of sets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Literal

from calico_conformance.oracle.default_probes import GroupedService
from calico_conformance.oracle.errors import Location
from calico_conformance.oracle.evaluate import Oracle, Verdict
from calico_conformance.oracle.grouping import PairMatrix
from calico_conformance.oracle.model import NetworkSet, Pod, Policy, ResourceSet, Tier
from calico_conformance.reachability import Flow

Service = tuple[int | None, str]  # (port, protocol); port None for ICMP
PairKind = Literal["added", "removed", "changed"]
ChangeKind = Literal["added", "removed", "modified"]


# --- what changed in the policy sets ---------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class ResourceChange:
    """One object added, removed or modified between BASE and HEAD."""

    kind: str  # Policy.kind, "Tier", "NetworkSet" or "GlobalNetworkSet"
    name: str  # `namespace/name` for namespaced objects
    change: ChangeKind
    before: Location | None = None
    after: Location | None = None

    @property
    def reference(self) -> str:
        """How a decision names the object: `Policy.display_name`, or `Tier <name>`."""
        return f"{self.kind} {self.name}"

    @property
    def location(self) -> Location | None:
        return self.after or self.before

    def __str__(self) -> str:
        where = f" ({self.location})" if self.location else ""
        return f"{self.reference} {self.change}{where}"


def resource_changes(base: ResourceSet, head: ResourceSet) -> tuple[ResourceChange, ...]:
    """Every policy, tier and network set that differs between the two sets, sorted."""
    changes: list[ResourceChange] = []
    for kind_of, name_of, before, after in (
        (_policy_kind, _scoped, base.policies, head.policies),
        (_tier_kind, _tier_name, base.tiers, head.tiers),
        (_set_kind, _scoped, base.network_sets, head.network_sets),
    ):
        changes.extend(_compare(before, after, kind_of, name_of))  # type: ignore[arg-type]
    return tuple(sorted(changes))


def _policy_kind(policy: Policy) -> str:
    return policy.kind


def _tier_kind(_: Tier) -> str:
    return "Tier"


def _set_kind(network_set: NetworkSet) -> str:
    return "NetworkSet" if network_set.namespace else "GlobalNetworkSet"


def _scoped(item: Policy | NetworkSet) -> str:
    return f"{item.namespace}/{item.name}" if item.namespace else item.name


def _tier_name(tier: Tier) -> str:
    return tier.name


def _compare(
    before: Sequence[Policy | Tier | NetworkSet],
    after: Sequence[Policy | Tier | NetworkSet],
    kind_of: Callable[[object], str],
    name_of: Callable[[object], str],
) -> Iterator[ResourceChange]:
    old = {(kind_of(item), name_of(item)): item for item in before}
    new = {(kind_of(item), name_of(item)): item for item in after}
    for key in sorted(old.keys() | new.keys()):
        was, now = old.get(key), new.get(key)
        if was is None and now is not None:
            yield ResourceChange(*key, "added", after=now.location)
        elif now is None and was is not None:
            yield ResourceChange(*key, "removed", before=was.location)
        elif was != now and was is not None and now is not None:
            yield ResourceChange(*key, "modified", before=was.location, after=now.location)


# --- what changed in reachability ------------------------------------------------------------------------


@dataclass(frozen=True)
class PortChange:
    """One flow (pair, port, protocol) whose verdict differs, with both verdicts and the changes causing it."""

    flow: Flow
    before: Verdict
    after: Verdict
    causes: tuple[ResourceChange, ...] = ()

    @property
    def opened(self) -> bool:
        return self.after.allowed


@dataclass(frozen=True)
class PairChange:
    """A source and destination whose allowed ports differ: `added` (nothing was allowed), `removed`
    (nothing is allowed any more) or `changed` (some ports opened or closed, others allowed throughout)."""

    source: str
    destination: str
    kind: PairKind
    ports: tuple[PortChange, ...]  # the flows that changed, in service order

    @property
    def opened(self) -> tuple[PortChange, ...]:
        return tuple(change for change in self.ports if change.opened)

    @property
    def closed(self) -> tuple[PortChange, ...]:
        return tuple(change for change in self.ports if not change.opened)


def pair_kind(allowed_before: bool, allowed_after: bool) -> PairKind:
    """From whether any flow of the pair was allowed before and is allowed after (one of them changed)."""
    if not allowed_before:
        return "added"
    return "removed" if not allowed_after else "changed"


def pod_services(pods: Iterable[Pod]) -> tuple[Service, ...]:
    """Every (port, protocol) some pod listens on, sorted: the flows a diff looks at between pods."""
    return tuple(sorted({(port.port, port.protocol) for pod in pods for port in pod.ports}, key=_service_key))


def _service_key(service: Service) -> tuple[str, int]:
    return (service[1], -1 if service[0] is None else service[0])


def diff_oracles(
    base: Oracle,
    head: Oracle,
    changes: Sequence[ResourceChange],
    *,
    outside_flows: Iterable[Flow] = (),
) -> list[PairChange]:
    """Every pair whose verdict differs on a flow between pods (each destination's container ports, both
    oracles over the same pods) or on one of `outside_flows`, in pod order, then outside flows."""
    if [pod.key for pod in base.pods] != [pod.key for pod in head.pods]:
        raise ValueError("diff_oracles needs both oracles built over the same pods")
    pods = base.pods
    listens = {pod.key: {(port.port, port.protocol) for port in pod.ports} for pod in pods}
    found: dict[tuple[str, str], list[PortChange]] = {}
    matrices: dict[Service, tuple[PairMatrix, PairMatrix]] = {}
    for service in pod_services(pods):
        grouped = (GroupedService(base, pods, service), GroupedService(head, pods, service))
        matrices[service] = (grouped[0].matrix(), grouped[1].matrix())
        for change in _changed_flows(grouped, matrices[service], service, changes):
            if service in listens[change.flow.destination]:
                found.setdefault((change.flow.source, change.flow.destination), []).append(change)
    outside: dict[tuple[str, str], list[tuple[bool, bool]]] = {}
    for flow in outside_flows:
        before, after = base.verdict_for(flow), head.verdict_for(flow)
        outside.setdefault((flow.source, flow.destination), []).append((before.allowed, after.allowed))
        if before.allowed != after.allowed:
            change = PortChange(flow, before, after, attribute(before, after, changes))
            found.setdefault((flow.source, flow.destination), []).append(change)
    result = []
    for (source, destination), flows in found.items():
        if (source, destination) in outside:
            verdicts = outside[(source, destination)]
        else:
            verdicts = [
                (matrices[service][0].allowed(source, destination), matrices[service][1].allowed(source, destination))
                for service in pod_services([base.pod(destination)])
            ]
        kind = pair_kind(any(b for b, _ in verdicts), any(a for _, a in verdicts))
        result.append(PairChange(source, destination, kind, tuple(flows)))
    return result


def _changed_flows(
    grouped: tuple[GroupedService, GroupedService],
    matrices: tuple[PairMatrix, PairMatrix],
    service: Service,
    changes: Sequence[ResourceChange],
) -> Iterator[PortChange]:
    """The pod pairs whose verdict differs on one service, compared per joint class (module docstring)."""
    before, after = matrices
    joint: dict[tuple[int, int], int] = {}
    joint_of = [joint.setdefault(pair, len(joint)) for pair in zip(before.class_of, after.class_of, strict=True)]
    if not joint:
        return
    members: list[list[int]] = [[] for _ in joint]
    for index, cls in enumerate(joint_of):
        members[cls].append(index)
    pods = before.pods
    port, protocol = service
    for source_class, destination_class in _changed_class_pairs(before, after, list(joint)):
        explained: tuple[Verdict, Verdict, tuple[ResourceChange, ...]] | None = None
        for s in members[source_class]:
            for d in members[destination_class]:
                if s == d:
                    continue
                if explained is None:
                    old, new = grouped[0].verdict(s, d), grouped[1].verdict(s, d)
                    explained = (old, new, attribute(old, new, changes))
                yield PortChange(Flow(pods[s].key, pods[d].key, port, protocol), *explained)


def _changed_class_pairs(
    before: PairMatrix, after: PairMatrix, joint: list[tuple[int, int]]
) -> Iterator[tuple[int, int]]:
    """(source, destination) joint classes whose allowed bit differs between the two matrices.

    When the two partitions are the same (an edit that reads no new label or CIDR: the usual case) the
    joint classes are the classes, and a row's changes are one XOR of two integers."""
    if all(b == h == index for index, (b, h) in enumerate(joint)):
        for cls, (was, now) in enumerate(zip(before.allowed_rows, after.allowed_rows, strict=True)):
            flipped = was ^ now
            while flipped:
                low = flipped & -flipped
                yield cls, low.bit_length() - 1
                flipped ^= low
        return
    base_classes, head_classes = (tuple(side) for side in zip(*joint, strict=True))
    gather_before, gather_after = _gatherer(base_classes), _gatherer(head_classes)
    rows_before, rows_after = _bit_rows(before), _bit_rows(after)
    for source, (base_class, head_class) in enumerate(joint):
        old_row = gather_before(rows_before[base_class])
        new_row = gather_after(rows_after[head_class])
        if old_row != new_row:
            yield from ((source, d) for d in range(len(joint)) if old_row[d] != new_row[d])


def _gatherer(indices: tuple[int, ...]) -> Callable[[str], tuple[str, ...]]:
    pick = itemgetter(*indices)
    if len(indices) == 1:
        return lambda row: (pick(row),)
    return pick


def _bit_rows(matrix: PairMatrix) -> list[str]:
    """Each class's row as a string of '0'/'1', character d for destination class d."""
    width = matrix.classes
    return [format(row, f"0{width}b")[::-1] for row in matrix.allowed_rows]


def attribute(before: Verdict, after: Verdict, changes: Sequence[ResourceChange]) -> tuple[ResourceChange, ...]:
    """The changes that explain a flip (module docstring): named by a decision, else network sets, else all."""
    named = {
        reference
        for verdict in (before, after)
        for decision in (verdict.egress, verdict.ingress)
        for reference in (decision.policy, f"Tier {decision.tier}" if decision.tier else None)
        if reference
    }
    hits = tuple(change for change in changes if change.reference in named)
    if hits:
        return hits
    sets = tuple(change for change in changes if change.kind in ("NetworkSet", "GlobalNetworkSet"))
    return sets or tuple(changes)


def group_by_cause(pairs: Iterable[PairChange]) -> Mapping[tuple[ResourceChange, ...], list[PairChange]]:
    """The pair changes split by cause, each pair keeping only the flows that cause explains."""
    groups: dict[tuple[ResourceChange, ...], list[PairChange]] = {}
    for pair in pairs:
        by_cause: dict[tuple[ResourceChange, ...], list[PortChange]] = {}
        for change in pair.ports:
            by_cause.setdefault(change.causes, []).append(change)
        for cause, flows in by_cause.items():
            groups.setdefault(cause, []).append(PairChange(pair.source, pair.destination, pair.kind, tuple(flows)))
    return dict(sorted(groups.items(), key=lambda item: [str(change) for change in item[0]]))
