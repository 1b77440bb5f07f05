"""The impact of a policy change on every registered cluster, and on the tenancy layout's requirements.

Each cluster gets the layout's workloads placed in its pod subnet (`tenancy/workloads.py`), as the static
target does, with the layout widened by what *either* policy set names (`tenancy/surface.py`): a port
HEAD opens that BASE never mentions must be looked at in both, or the change would be invisible. The
flows compared are those the suites probe: every pair of workloads on each destination's ports (declared,
canary and derived), each workload to every outside address on the canary ports, and every outside
address to each workload on its ports.

A flow whose verdict changes may change whether the layout's requirement (`TenancyLayout.requirement`)
holds: the change *breaks* it when BASE met it and HEAD does not, *repairs* it in the other case. A
flow whose verdict does not change cannot do either, so only changed flows are judged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from calico_conformance.oracle.diff import PairChange, ResourceChange, diff_oracles, resource_changes
from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.model import Pod, ResourceSet
from calico_conformance.reachability import Flow
from calico_conformance.tenancy.model import TenancyLayout
from calico_conformance.tenancy.register import ClusterSpec
from calico_conformance.tenancy.surface import policy_surface, widen_layout
from calico_conformance.tenancy.workloads import layout_namespaces, layout_pods, layout_service_accounts


@dataclass(frozen=True)
class RequirementChange:
    """A flow whose verdict changed where the layout requires it allowed (or denied)."""

    flow: Flow
    required: bool  # the layout requires the flow allowed
    why: str
    met_before: bool
    met_after: bool

    @property
    def breaks(self) -> bool:
        return self.met_before and not self.met_after

    @property
    def repairs(self) -> bool:
        return self.met_after and not self.met_before


@dataclass(frozen=True)
class ClusterImpact:
    cluster: str
    pairs: tuple[PairChange, ...]
    requirements: tuple[RequirementChange, ...] = ()  # empty unless the layout is judged

    @property
    def flows(self) -> int:
        return sum(len(pair.ports) for pair in self.pairs)


@dataclass(frozen=True)
class Impact:
    """The whole answer of `calico-conformance diff`."""

    base: str  # how BASE and HEAD were given, for the report
    head: str
    changes: tuple[ResourceChange, ...]
    clusters: tuple[ClusterImpact, ...]
    judged_layout: bool

    @property
    def broken(self) -> tuple[tuple[str, RequirementChange], ...]:
        return tuple((c.cluster, r) for c in self.clusters for r in c.requirements if r.breaks)

    @property
    def repaired(self) -> tuple[tuple[str, RequirementChange], ...]:
        return tuple((c.cluster, r) for c in self.clusters for r in c.requirements if r.repairs)

    @property
    def flows(self) -> int:
        return sum(cluster.flows for cluster in self.clusters)


def compute_impact(
    base: ResourceSet,
    head: ResourceSet,
    *,
    layout: TenancyLayout,
    register: Sequence[ClusterSpec],
    clusters: Sequence[str],
    calico_version: str,
    judge_layout: bool,
    labels: tuple[str, str] = ("BASE", "HEAD"),
) -> Impact:
    """Per cluster of `clusters` (names of `register`), the flows whose verdict changes from BASE to HEAD."""
    ranges = [network for spec in register for network in (spec.pod_subnet, spec.service_subnet)]
    widened = widen_layout(layout, policy_surface(base.merged(head), layout, ranges))
    changes = resource_changes(base, head)
    by_name = {spec.name: spec for spec in register}
    impacts = []
    for name in clusters:
        spec = by_name[name]
        pods = layout_pods(widened, spec.pod_subnet)
        before, after = (_oracle(widened, pods, resources, calico_version) for resources in (base, head))
        pairs = diff_oracles(before, after, changes, outside_flows=list(outside_flows(widened, pods)))
        requirements = tuple(_requirements(widened, pairs)) if judge_layout else ()
        impacts.append(ClusterImpact(name, tuple(pairs), requirements))
    return Impact(labels[0], labels[1], changes, tuple(impacts), judge_layout)


def _oracle(layout: TenancyLayout, pods: Sequence[Pod], resources: ResourceSet, calico_version: str) -> Oracle:
    return Oracle(
        namespaces=layout_namespaces(layout),
        pods=pods,
        resources=resources,
        calico_version=calico_version,
        service_accounts=layout_service_accounts(layout),
    )


def outside_flows(layout: TenancyLayout, pods: Sequence[Pod]) -> Iterator[Flow]:
    """Each workload to every outside address on the canary ports, and back on the workload's ports."""
    for pod in pods:
        for address in map(str, layout.outside_addresses):
            for service in layout.canary_services:
                yield Flow(pod.key, address, service.port, service.protocol)
            for port in pod.ports:
                yield Flow(address, pod.key, port.port, port.protocol)


def _requirements(layout: TenancyLayout, pairs: Sequence[PairChange]) -> Iterator[RequirementChange]:
    for pair in pairs:
        for change in pair.ports:
            required, why = layout.requirement(change.flow)
            yield RequirementChange(
                change.flow, required, why, change.before.allowed == required, change.after.allowed == required
            )
