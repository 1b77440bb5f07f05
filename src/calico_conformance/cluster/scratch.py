"""Scratch spaces: run-id-named namespaces with probe pods, where a test applies policies step by step.

The tier scenarios and the upstream netpol catalogue (`suites/test_policy_conformance.py`) need their
own namespaces (`x`, `y`, `z`, or `conformance-tiers-*`), pods and policies, changed between
observations (create, relabel a namespace, delete every policy). A `ScratchSpace` gives each case
namespaces named `cc-<run id>-<case>-<name>` on any live cluster, renames every manifest's namespace
references to match (`rename_manifest`), validates each manifest against the schemas before it is
created, records everything in the run's inventory and removes it on `close`. Before each observation
that follows a change (an applied policy, deleted policies, a relabelled namespace), the space flips its
marker and waits until every node shows it (`cluster/markers.py`), so no round can come from the state
before the change.

Namespace renaming is structural for Kubernetes selectors (`kubernetes.io/metadata.name` in
matchLabels and matchExpressions) and textual on quoted values in Calico selectors; tiers are renamed
the same way, since a tier is a cluster-wide object. Exercised by live runs only, apart from
`rename_manifest`, which the unit tests cover.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from calico_conformance.cluster.deploy import Deployment, start_probe_pods, worker_nodes
from calico_conformance.cluster.inventory import (
    Inventory,
    ObjectRef,
    cleanup,
    guarded_delete,
    refuse_cluster_scoped,
)
from calico_conformance.cluster.kube import KubeClient
from calico_conformance.cluster.markers import Marker, MarkerCheck, marker_pods, render_marker
from calico_conformance.cluster.probe_pods import plan_probe_pods, render_namespace, run_labels
from calico_conformance.cluster.render_policy import Renames
from calico_conformance.cluster.schemas import validate_manifest
from calico_conformance.cluster.waits import Timeouts, wait_for
from calico_conformance.config import RunConfig
from calico_conformance.probe.executor import Executor, ExecutorError
from calico_conformance.reachability import ExpectedMatrix, ObservedMatrix
from calico_conformance.tenancy.layout import Service, Workload

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
POLICY_KINDS = frozenset({"NetworkPolicy", "GlobalNetworkPolicy", "NetworkSet", "GlobalNetworkSet", "Tier"})
CALICO_SELECTOR_KEYS = frozenset({"selector", "notSelector", "namespaceSelector"})


def scratch_renames(run_id: str, case: str, namespaces: Sequence[str], tiers: Sequence[str] = ()) -> Renames:
    slug = re.sub(r"[^a-z0-9-]+", "-", case.lower()).strip("-")[:24].strip("-")
    prefix = f"cc-{run_id}-{slug}-"
    return Renames(
        {name: f"{prefix}{name}"[:63] for name in namespaces},
        {name: f"{prefix}{name}"[:63] for name in tiers},
    )


def rename_manifest(manifest: Mapping[str, Any], renames: Renames) -> dict[str, Any]:
    """`manifest` with every reference to a scenario namespace or tier pointing at its scratch name."""
    renamed: dict[str, Any] = copy.deepcopy(dict(manifest))
    metadata = renamed.setdefault("metadata", {})
    if metadata.get("namespace"):
        metadata["namespace"] = renames.namespace(metadata["namespace"])
    kind = renamed.get("kind")
    api_version = str(renamed.get("apiVersion", ""))
    spec = renamed.get("spec", {})
    if "projectcalico.org" in api_version:
        if kind == "Tier":
            metadata["name"] = renames.tier(metadata["name"])
        elif "tier" in spec:
            tier = spec["tier"]
            spec["tier"] = renames.tier(tier)
            if metadata.get("name", "").startswith(f"{tier}."):
                metadata["name"] = f"{renames.tier(tier)}.{metadata['name'][len(tier) + 1 :]}"
        _rename_calico_selectors(spec, renames)
    else:
        _rename_kubernetes_selectors(spec, renames)
    return renamed


def _rename_calico_selectors(node: Any, renames: Renames) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in CALICO_SELECTOR_KEYS and isinstance(value, str):
                node[key] = _quoted_renamed(value, renames)
            else:
                _rename_calico_selectors(value, renames)
    elif isinstance(node, list):
        for item in node:
            _rename_calico_selectors(item, renames)


def _quoted_renamed(text: str, renames: Renames) -> str:
    for old, new in renames.namespaces.items():
        text = text.replace(f"'{old}'", f"'{new}'").replace(f'"{old}"', f'"{new}"')
    return text


def _rename_kubernetes_selectors(node: Any, renames: Renames) -> None:
    if isinstance(node, dict):
        selector = node.get("namespaceSelector")
        if isinstance(selector, dict):
            labels = selector.get("matchLabels") or {}
            if NAMESPACE_NAME_LABEL in labels:
                labels[NAMESPACE_NAME_LABEL] = renames.namespace(labels[NAMESPACE_NAME_LABEL])
            for expression in selector.get("matchExpressions") or ():
                if expression.get("key") == NAMESPACE_NAME_LABEL:
                    expression["values"] = [renames.namespace(v) for v in expression.get("values") or ()]
        for value in node.values():
            _rename_kubernetes_selectors(value, renames)
    elif isinstance(node, list):
        for item in node:
            _rename_kubernetes_selectors(item, renames)


class ScratchCluster(Protocol):
    """What a scratch space needs of one live cluster (`live.LiveCluster` is one)."""

    name: str
    kube: KubeClient
    deployment: Deployment

    @property
    def executor(self) -> Executor: ...


class ScratchHost(Protocol):
    """What a scratch space needs of the live target that owns it (`live.LiveTarget` is one); a protocol,
    so that this module never imports the target that imports it."""

    run: RunConfig
    image: str
    agent_source: str
    timeouts: Timeouts

    @property
    def allows_cluster_scoped(self) -> bool: ...

    def record(self, cluster: str, obj: Mapping[str, Any]) -> ObjectRef: ...

    def observe_with(
        self, live: Any, deployment: Deployment, expected: ExpectedMatrix, *, label: str
    ) -> ObservedMatrix: ...


class ScratchSpace:
    """Namespaces, probe pods and policies of one case on one live cluster (see the module docstring)."""

    def __init__(
        self,
        target: ScratchHost,
        live: ScratchCluster,
        renames: Renames,
        namespace_labels: Mapping[str, Mapping[str, str]],
        workloads: Sequence[Workload],
    ) -> None:
        self.target = target
        self.live = live
        self.renames = renames
        self.namespace_labels = namespace_labels
        self.workloads = workloads
        self.created: list[ObjectRef] = []
        self.policies: list[ObjectRef] = []
        self.deployment = live.deployment
        digest = hashlib.sha256(repr(sorted(renames.namespaces.items())).encode()).hexdigest()[:10]
        self.space = f"{target.run.run_id}-{digest}"[:63]  # the marker pods' label value
        self.marker_namespace = f"cc-{self.space}-marker"[:63]
        self.marker: Marker | None = None
        self.marker_check: MarkerCheck | None = None
        self.changed = False  # a policy change not yet proven in force on every node

    def __enter__(self) -> ScratchSpace:
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _record(self, obj: Mapping[str, Any]) -> ObjectRef:
        ref = self.target.record(self.live.name, obj)
        self.created.append(ref)
        return ref

    def _open(self) -> None:
        run_id = self.target.run.run_id
        for name, labels in self.namespace_labels.items():
            scratch = self.renames.namespace(name) or name
            plain = {k: v for k, v in labels.items() if k != NAMESPACE_NAME_LABEL}
            self._record(self.live.kube.create(render_namespace(scratch, plain, run_id)))
        nodes = worker_nodes(self.live.kube.nodes())
        pods = plan_probe_pods(self.workloads, nodes, namespaces=dict(self.renames.namespaces))
        base = self.live.deployment
        control, service = base.source_control, base.source_control_service
        markers = []
        if control is not None and service is not None:
            self._record(self.live.kube.create(render_namespace(self.marker_namespace, {}, run_id)))
            markers = marker_pods(self.marker_namespace, self.space, nodes, [Service(*service)])
        endpoints = start_probe_pods(
            self.live.kube, [*pods, *markers], image=self.target.image, agent_source=self.target.agent_source,
            run_id=run_id, timeouts=self.target.timeouts, record=self._record,
        )  # fmt: skip
        if control is not None and service is not None:
            located = {pod.workload: endpoints.pop(pod.workload) for pod in markers}
            timeouts = self.target.timeouts
            self.marker_check = MarkerCheck(
                base.endpoints[control], located, service[0], service[1], timeouts.probe_timeout_s,
                timeouts.exec_overhead_s,
            )  # fmt: skip
            self.marker = Marker(self._render_marker, self._create_marker, self._delete_marker)
        self.deployment = Deployment(
            {**base.endpoints, **endpoints},
            base.control,
            {},
            base.no_control_reason,
            source_control=base.source_control,
            source_control_service=base.source_control_service,
        )

    def pod_ip(self, workload: str) -> str:
        return self.deployment.endpoints[workload].ip

    def apply(self, manifest: Mapping[str, Any]) -> ObjectRef:
        """Create one policy-set object (scenario names), renamed and schema-checked first."""
        renamed = rename_manifest(manifest, self.renames)
        # The run's labels make the object provably this run's: cleanup deletes only labelled objects,
        # and the leak check finds them. Object labels never change what a policy selects; on network
        # sets they are matchable, but only by selectors naming the suite's own label keys.
        metadata = renamed.setdefault("metadata", {})
        metadata["labels"] = {
            **(metadata.get("labels") or {}),
            **run_labels(self.target.run.run_id, "scratch"),
        }
        refuse_cluster_scoped([renamed], self.target.allows_cluster_scoped)
        errors = validate_manifest(renamed, calico_version=self.target.run.calico_version)
        if errors:
            raise ValueError(f"{renamed['kind']} {renamed['metadata'].get('name')}: " + "; ".join(errors))
        ref = self._record(self.live.kube.create(renamed))
        if renamed.get("kind") in POLICY_KINDS:
            self.policies.append(ref)
        self.changed = True
        return ref

    def _render_marker(self, generation: int) -> dict[str, Any]:
        control_tier = self.live.deployment.control is not None
        return render_marker(
            self.target.run.run_id, self.space, generation, self.marker_namespace, control_tier=control_tier
        )

    def _create_marker(self, manifest: Mapping[str, Any]) -> None:
        self._record(self.live.kube.create(manifest))

    def _delete_marker(self, manifest: Mapping[str, Any]) -> None:
        ref = next(r for r in reversed(self.created) if (r.kind, r.name) == (manifest["kind"], manifest["metadata"]["name"]))
        self.live.kube.delete(ref)
        self.created.remove(ref)

    def wait_until_in_force(self) -> None:
        """Flip the marker and wait until every node shows it (see the module docstring). Without a
        control pod to look from there is no marker: the convergence rule alone stands."""
        if self.marker is None or self.marker_check is None:
            self.changed = False
            return
        present = self.marker.flip()
        check, executor = self.marker_check, self.live.executor
        wait_for(
            f"{self.live.name}: marker {self.marker.generation} of {self.marker_namespace} "
            f"{'in force' if present else 'lifted'} on every node",
            lambda: check.look(executor, present=present),
            timeout_s=self.target.timeouts.converge_timeout_s,
            interval_s=self.target.timeouts.poll_interval_s,
            retry_on=(ExecutorError,),
        )
        self.changed = False

    def delete_policies(self) -> None:
        """Remove every policy this space created (the upstream `cleanNetworkPolicies` step)."""
        inventory = Inventory(self.target.run.run_id, list(self.created))
        for ref in reversed(self.policies):
            guarded_delete(inventory, self.live.kube, ref)
        self.policies.clear()
        self.changed = True

    def label_namespace(self, namespace: str, labels: Mapping[str, str]) -> None:
        """Add labels to one of this space's own namespaces (never to anyone else's)."""
        scratch = self.renames.namespace(namespace) or namespace
        ref = next(r for r in self.created if r.kind == "Namespace" and r.name == scratch)
        inventory = Inventory(self.target.run.run_id, list(self.created))
        if not inventory.owns(self.live.kube.get(ref), ref):
            raise RuntimeError(f"{ref} is not this run's; refusing to relabel it")
        self.live.kube.patch_labels(ref, labels)
        self.changed = True

    def observe(self, expected: ExpectedMatrix, label: str) -> ObservedMatrix:
        if self.changed:
            self.wait_until_in_force()
        return self.target.observe_with(self.live, self.deployment, expected, label=label)

    def close(self) -> None:
        if not self.created:
            return
        report = cleanup(Inventory(self.target.run.run_id, list(self.created)), self.live.kube)
        self.created.clear()
        if not report.ok:
            raise RuntimeError(f"{self.live.name}: could not remove scratch objects: {report}")
