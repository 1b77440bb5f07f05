"""The live targets: `KindTarget` (clusters made from the register) and `KubeconfigTarget` (existing ones).

Both implement `targets.Target` (and the scenario and MTU extensions) over the same pieces: a
`Deployment` of probe pods per cluster, prepared once per run (`run_once`), and `probe.runner` with
the `KubeExecutor` to observe a matrix with the convergence rule. They differ in what they may do:

Both also deploy the stand-ins (`cluster/stand_ins.py`): a rogue DNS pod, and with `--outside-echo`
(the default on kind) a hostNetwork echo per node for the layout's outside addresses.

* kind: the cluster is the run's own. It is created from `kind-configs/<name>.yaml`, Calico is
  installed, the layout's namespaces are created (existing ones such as kube-system are labelled), the
  policy set (`--policies`) is applied, and probe pods stand in for every layout workload.
* kubeconfig: the cluster is someone's. Its facts are audited read-only; the suite only creates
  run-id-named, labelled namespaces and objects (recorded in an inventory, deleted at the end, then a
  leak check); probes in the cluster's own namespaces only with `--probe-existing-namespaces`;
  cluster-scoped objects only with `--allow-cluster-scoped`. Its own policies are what is tested.

Everything here needs a cluster and is exercised only by live runs (README, "What was exercised").
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import pytest

from calico_conformance.cluster import audit as audits
from calico_conformance.cluster.calico import install_calico
from calico_conformance.cluster.commands import KubeAccess, kubectl, run_command
from calico_conformance.cluster.deploy import (
    CONTROL_ROLE,
    Deployment,
    control_key,
    control_namespace,
    control_tier_manifests,
    control_workload,
    delete_probe_pods,
    mtu_peer_workloads,
    policy_schema_problems,
    read_policy_manifests,
    source_control_service,
    start_probe_pods,
    worker_nodes,
)
from calico_conformance.cluster.images import kind_node_image, rewrite_image
from calico_conformance.cluster.install import server_side_apply
from calico_conformance.cluster.inventory import ObjectRef
from calico_conformance.cluster.kind import (
    KindCluster,
    ensure_cluster,
    node_network_mtu,
    node_upstream_resolver,
)
from calico_conformance.cluster.live import LiveCluster, LiveTarget
from calico_conformance.cluster.manifest_cache import verified_manifests
from calico_conformance.cluster.probe_pods import plan_probe_pods, render_agent_configmap, render_namespace
from calico_conformance.cluster.run_once import once_per_run
from calico_conformance.cluster.stand_ins import (
    UPSTREAM_DNS,
    probe_canary,
    stand_in_pods,
    stand_ins_from,
    upstream_resolver,
)
from calico_conformance.cluster.tools import (
    KIND_TOOLS,
    KUBECONFIG_TOOLS,
    MissingTools,
    require_docker_engine,
)
from calico_conformance.cluster.waits import WaitTimeout
from calico_conformance.config import RunConfig
from calico_conformance.oracle.loader_document import TIERS_SINCE
from calico_conformance.oracle.model import ResourceSet
from calico_conformance.targets.base import ClusterFacts
from calico_conformance.tenancy.layout import TenancyLayout, Workload
from calico_conformance.tenancy.register import ClusterSpec, cluster_by_name


class KindTarget(LiveTarget):
    """kind clusters from the register, Calico installed by the Tigera operator, the layout applied."""

    name = "kind"
    tools = KIND_TOOLS

    def __init__(self, run: RunConfig, layout: TenancyLayout, resources: ResourceSet) -> None:
        super().__init__(run, layout, resources)
        try:
            require_docker_engine()
        except MissingTools as problem:
            raise pytest.UsageError(str(problem)) from None
        problems = policy_schema_problems(run.policies, run.calico_version)
        if problems:  # refused before any cluster is created
            raise pytest.UsageError(
                "the policy set fails the Calico/Kubernetes schemas:\n" + "\n".join(problems)
            )

    def _connect(self, name: str) -> LiveCluster:
        spec = cluster_by_name(self._register, name)
        kind, state = ensure_cluster(
            name,
            spec.config_path,
            self.state_dir,
            reuse=self.run.reuse_clusters,
            timeouts=self.timeouts,
            prepare=lambda cluster: self._prepare(spec, cluster),
            image=rewrite_image(kind_node_image(self.release.version), self.run.registry),
        )
        access, kube = self._client(name, kind.kubeconfig, kind.context)
        deployment = Deployment.from_state(state["deployment"])
        live = LiveCluster(name, access, kube, deployment, self._executor(kube))
        live.facts = self._kind_facts(spec, live, state)
        return live

    def _prepare(self, spec: ClusterSpec, kind_cluster: KindCluster) -> dict[str, Any]:
        access, kube = self._client(spec.name, kind_cluster.kubeconfig, kind_cluster.context)
        live = LiveCluster(spec.name, access, kube, Deployment({}, None), self._executor(kube))
        network = self.layout.networks.get(spec.name)
        try:
            manifests = verified_manifests(self.release, local_dir=self.run.calico_manifests)
            install_calico(
                access,
                kube,
                spec,
                manifests,
                calico_version=self.run.calico_version,
                timeouts=self.timeouts,
                mtu=network.calico_mtu if network else None,
                registry=self.run.registry,
            )
            deployment = self._deploy_layout(live)
        except WaitTimeout as timeout:
            raise self._fail_with_diagnostics(live, timeout, "install") from None
        upstream = node_upstream_resolver(kind_cluster)
        if upstream is not None:
            found = deployment.stand_ins
            resolver = {**found.endpoints, UPSTREAM_DNS: upstream_resolver(upstream, spec.name)}
            deployment = replace(deployment, stand_ins=replace(found, endpoints=resolver, upstream_dns=UPSTREAM_DNS))
        return {"deployment": deployment.to_state(), "network_mtu": node_network_mtu(kind_cluster)}

    def _apply(self, access: KubeAccess, manifests: list[dict[str, Any]]) -> None:
        """Server-side apply: creates, or updates what an earlier run (--reuse-clusters) left."""
        if manifests:
            payload = json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}).encode()
            run_command(
                kubectl(access, *server_side_apply("-")), timeout_s=self.timeouts.kubectl_s, stdin=payload
            )

    def _deploy_layout(self, live: LiveCluster) -> Deployment:
        run_id = self.run.run_id
        namespaces = [
            render_namespace(
                ns.name, {k: v for k, v in ns.labels.items() if k != "kubernetes.io/metadata.name"}, run_id
            )
            for ns in self.layout.all_namespaces
        ]
        namespaces.append(render_namespace(control_namespace(run_id), {}, run_id))
        self._apply(live.access, namespaces)  # creates, or labels kube-system and friends
        self._apply(live.access, read_policy_manifests([self.run.policies]))
        has_tiers = self.release.minor >= TIERS_SINCE
        if has_tiers:
            self._apply(live.access, control_tier_manifests(run_id))
        used = sorted({ns.name for ns in self.layout.all_namespaces} | {control_namespace(run_id)})
        delete_probe_pods(live.kube, used, self.timeouts)  # a reused cluster's previous probes
        configmaps = [render_agent_configmap(ns, self.agent_source, run_id) for ns in used]
        self._apply(live.access, configmaps)
        canary = self.layout.canary_services
        nodes = worker_nodes(live.kube.nodes())
        peers = mtu_peer_workloads(run_id, canary, len(nodes))
        workloads = [*self.layout.all_workloads, control_workload(run_id, canary), *peers]
        pods = plan_probe_pods(
            workloads, nodes, canary=probe_canary(self.layout), roles={control_key(run_id): CONTROL_ROLE}
        )
        stand_ins = stand_in_pods(
            self.layout, control_namespace(run_id), nodes, outside_echo=self.run.outside_echo
        )
        endpoints = start_probe_pods(
            live.kube,
            [*pods, *stand_ins],
            image=self.image,
            agent_source=self.agent_source,
            run_id=run_id,
            timeouts=self.timeouts,
            create_configmaps=False,
        )
        found = stand_ins_from(stand_ins, endpoints, outside_echo=self.run.outside_echo)
        endpoints = {k: v for k, v in endpoints.items() if k not in found.endpoints}
        checks = (control_key(run_id), source_control_service(canary), tuple(peer.key for peer in peers))
        if has_tiers:
            return Deployment(endpoints, control_key(run_id), {}, "", found, *checks)
        return Deployment(
            endpoints,
            None,
            no_control_reason=f"no control tier: tiers need Calico 3.29+, this is {self.release.tag}",
            stand_ins=found,
            source_control=checks[0],
            source_control_service=checks[1],
            mtu_peers=checks[2],
        )

    def _kind_facts(self, spec: ClusterSpec, live: LiveCluster, state: Mapping[str, Any]) -> ClusterFacts:
        audit = audits.read_audit(live.kube, spec.name, network_mtu=state.get("network_mtu"))
        return audits.facts_from_audit(audit)


class KubeconfigTarget(LiveTarget):
    """Existing clusters by kubeconfig context, non-disruptively (see the module docstring)."""

    name = "kubeconfig"
    tools = KUBECONFIG_TOOLS

    def __init__(self, run: RunConfig, layout: TenancyLayout, resources: ResourceSet) -> None:
        super().__init__(run, layout, resources)
        problem = missing_contexts(run.contexts.values())
        if problem:
            raise pytest.UsageError(problem)

    @property
    def allows_cluster_scoped(self) -> bool:  # type: ignore[override]
        return self.run.allow_cluster_scoped

    def _connect(self, name: str) -> LiveCluster:
        context = self.run.contexts[name]
        access, kube = self._client(name, None, context)
        live = LiveCluster(name, access, kube, Deployment({}, None), self._executor(kube))

        def produce() -> Mapping[str, Any]:
            try:
                return {"deployment": self._deploy_probes(live).to_state()}
            except WaitTimeout as timeout:
                raise self._fail_with_diagnostics(live, timeout, "probes") from None

        state = once_per_run(
            self.state_dir, f"kubeconfig-{name}", produce, lock_timeout_s=self.timeouts.cluster_lock_s
        ).state
        live.deployment = Deployment.from_state(state["deployment"])
        # The node network's MTU is not in any API object; the layout declares it per cluster.
        network = self.layout.networks.get(name)
        network_mtu = network.network_mtu if network else None
        live.facts = audits.facts_from_audit(audits.read_audit(kube, name, network_mtu=network_mtu))
        return live

    def _deploy_probes(self, live: LiveCluster) -> Deployment:
        run_id = self.run.run_id

        def record(obj: Mapping[str, Any]) -> ObjectRef:
            return self.record(live.name, obj)

        unprobed: dict[str, str] = {}
        workloads: list[Workload] = []
        stand_ins: dict[str, str] = {}  # layout namespace -> the run's own namespace standing in for it
        outsider = self.layout.outsider.name if self.layout.outsider else None
        for namespace in self.layout.all_namespaces:
            if namespace.name == outsider:
                # The outsider is "a namespace no policy restricts": a fresh run-id namespace is one.
                stand_ins[namespace.name] = f"cc-{run_id}-{namespace.name}"
                labels = {k: v for k, v in namespace.labels.items() if k != "kubernetes.io/metadata.name"}
                record(live.kube.create(render_namespace(stand_ins[namespace.name], labels, run_id)))
                workloads.extend(namespace.workloads)
            elif live.kube.get_named("v1", "Namespace", namespace.name) is None:
                unprobed[namespace.name] = f"namespace {namespace.name} does not exist on this cluster"
            elif not self.run.probe_existing_namespaces:
                unprobed[namespace.name] = (
                    f"{namespace.name} is an existing namespace: probing it needs --probe-existing-namespaces"
                )
            else:
                workloads.extend(namespace.workloads)
        record(live.kube.create(render_namespace(control_namespace(run_id), {}, run_id)))
        control = control_workload(run_id, self.layout.canary_services)
        nodes = worker_nodes(live.kube.nodes())
        peers = mtu_peer_workloads(run_id, self.layout.canary_services, len(nodes))
        pods = plan_probe_pods(
            [*workloads, control, *peers],
            nodes,
            canary=probe_canary(self.layout),
            pod_name_prefix=f"cc-{run_id}-",
            namespaces=stand_ins,
            roles={control_key(run_id): CONTROL_ROLE},
        )
        extra = stand_in_pods(
            self.layout,
            control_namespace(run_id),
            nodes,
            outside_echo=self.run.outside_echo,
            pod_name_prefix=f"cc-{run_id}-",
        )
        endpoints = start_probe_pods(
            live.kube,
            [*pods, *extra],
            image=self.image,
            agent_source=self.agent_source,
            run_id=run_id,
            timeouts=self.timeouts,
            record=record,
        )
        found = stand_ins_from(extra, endpoints, outside_echo=self.run.outside_echo)
        endpoints = {k: v for k, v in endpoints.items() if k not in found.endpoints}
        checks = (
            control_key(run_id),
            source_control_service(self.layout.canary_services),
            tuple(peer.key for peer in peers),
        )
        if self.run.allow_cluster_scoped and self.release.minor >= TIERS_SINCE:
            for manifest in control_tier_manifests(run_id):
                record(live.kube.create(manifest))
            return Deployment(endpoints, control_key(run_id), unprobed, "", found, *checks)
        reason = (
            "the control tier is cluster-scoped: it needs --allow-cluster-scoped"
            if not self.run.allow_cluster_scoped
            else f"tiers need Calico 3.29+, this is {self.release.tag}"
        )
        return Deployment(endpoints, None, unprobed, reason, found, *checks)


def missing_contexts(wanted: Iterable[str]) -> str | None:
    """Why some `--context` is not in the kubeconfig ($KUBECONFIG or ~/.kube/config), or None. Read-only."""
    from kubernetes import config as k8s_config
    from kubernetes.config.config_exception import ConfigException

    try:
        contexts, _ = k8s_config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
    except (ConfigException, OSError) as error:
        return f"--target=kubeconfig cannot read a kubeconfig ($KUBECONFIG or ~/.kube/config): {error}"
    known = sorted(context["name"] for context in contexts or ())
    unknown = [name for name in wanted if name not in known]
    if unknown:
        return f"--context names {', '.join(unknown)}, not in the kubeconfig; its contexts: {', '.join(known) or 'none'}"
    return None
