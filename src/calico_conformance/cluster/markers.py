"""Markers: proof that a scratch scenario's policy change is in force on every node before it is probed.

A scenario creates policies and probes at once; three matching rounds could then all come from the state
before the change (felix applies updates asynchronously, per node). So with every change a scratch space
makes, it also flips a marker it owns, and waits until the flip is visible from every node:

* marker pods: one plain probe pod per worker node, in a namespace of the scratch space's own;
* the marker: a policy that drops the control pod's traffic to those pods. Each change of the space
  toggles it (created when absent, deleted when present), so every generation has a state the one
  before did not: dropped, then answered, then dropped... The space waits until the control pod sees the
  new state at every marker pod, i.e. felix on every node has processed an update made after the change.
* Where the run owns a control tier, the marker is a GlobalNetworkPolicy in that tier, ordered before
  the tier's own allow for the control pod (which would otherwise decide first); without one (Calico
  3.27, or no `--allow-cluster-scoped`), a Kubernetes NetworkPolicy in the marker namespace, which no
  other policy of the run selects.

What it proves is an order of events per node, not a guarantee: felix receives different resource types
on different watches, so "an update after the change was processed" makes it very likely, not certain,
that the change itself was. The runner's convergence rule (consecutive matching rounds; a leak after a
match fails at once) still applies on top.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from calico_conformance.cluster.deploy import CONTROL_ROLE, control_tier_name
from calico_conformance.cluster.probe_pods import ROLE_LABEL, RUN_LABEL, ProbePod, run_labels
from calico_conformance.cluster.waits import Progress
from calico_conformance.probe.executor import Executor
from calico_conformance.probe.jobs import connect_job
from calico_conformance.probe.runner import ProbeEndpoint
from calico_conformance.tenancy.layout import Service

MARKER_LABEL = "calico-conformance.io/marker"
MARKER_ROLE = "marker"
MARKER_ORDER = 0.5  # in the control tier: after control-hears-every-pod (0), before control-reaches-every-pod (1)


def marker_pods(namespace: str, space: str, nodes: Sequence[str], canary: Sequence[Service]) -> list[ProbePod]:
    """One marker pod per node, labelled with the space's marker id, serving the canary ports."""
    return [
        ProbePod(
            workload=f"{namespace}/marker-{index}",
            namespace=namespace,
            pod_name=f"marker-{index}",
            labels={MARKER_LABEL: space},
            services=tuple(canary),
            node=node,
            role=MARKER_ROLE,
        )
        for index, node in enumerate(nodes)
    ]


def render_marker(
    run_id: str, space: str, generation: int, namespace: str, *, control_tier: bool
) -> dict[str, Any]:
    """The marker of one generation: drops the control pod's traffic to this space's marker pods."""
    labels = run_labels(run_id, MARKER_ROLE)
    if control_tier:
        tier = control_tier_name(run_id)
        control = f"{ROLE_LABEL} == '{CONTROL_ROLE}' && {RUN_LABEL} == '{run_id}'"
        return {
            "apiVersion": "projectcalico.org/v3",
            "kind": "GlobalNetworkPolicy",
            "metadata": {"name": f"{tier}.marker-{space}-{generation}"[:253], "labels": labels},
            "spec": {"tier": tier, "order": MARKER_ORDER, "selector": f"{MARKER_LABEL} == '{space}'",
                     "types": ["Ingress"],
                     "ingress": [{"action": "Deny", "source": {"selector": control}}, {"action": "Pass"}]},
        }  # fmt: skip
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"marker-{generation}", "namespace": namespace, "labels": labels},
        "spec": {"podSelector": {"matchLabels": {MARKER_LABEL: space}}, "policyTypes": ["Ingress"]},
    }


@dataclass(frozen=True)
class MarkerCheck:
    """One look from the control pod at every marker pod."""

    control: ProbeEndpoint
    markers: Mapping[str, ProbeEndpoint]  # marker key -> endpoint
    port: int
    protocol: str
    timeout_s: float  # one probe (Timeouts.probe_timeout_s)
    overhead_s: float = 30.0  # what the exec may add (Timeouts.exec_overhead_s)

    def look(self, executor: Executor, *, present: bool) -> Progress:
        """Done when every marker pod shows the marker's state: dropped when `present`, else answering."""
        keys = sorted(self.markers)
        jobs = [
            connect_job(str(n), self.markers[key].ip, self.port, self.protocol, timeout_s=self.timeout_s)
            for n, key in enumerate(keys)
        ]
        results = executor.run_batch(self.control.handle, jobs, deadline_s=self.timeout_s + self.overhead_s)
        wanted = "dropped" if present else "allowed"
        behind = [
            f"{key} on {self.markers[key].node} ({result.get('verdict')})"
            for key, result in zip(keys, results, strict=True)
            if result.get("verdict") != wanted
        ]
        state = "in force" if present else "lifted"
        if not behind:
            return Progress(True, f"marker {state} on every node")
        return Progress(False, f"marker not yet {state} at {', '.join(behind)}")


class Marker:
    """The toggling marker of one scratch space (see the module docstring)."""

    def __init__(
        self,
        render: Callable[[int], Mapping[str, Any]],
        create: Callable[[Mapping[str, Any]], object],
        delete: Callable[[Mapping[str, Any]], object],
    ) -> None:
        self._render = render
        self._create = create
        self._delete = delete
        self.generation = 0
        self.present: Mapping[str, Any] | None = None

    def flip(self) -> bool:
        """Create the marker when it is absent, delete it when present; returns whether it now is."""
        if self.present is None:
            self.generation += 1
            manifest = self._render(self.generation)
            self._create(manifest)
            self.present = manifest
            return True
        self._delete(self.present)
        self.present = None
        return False
