"""What both live targets share: clusters prepared in parallel, matrices observed with the probe runner,
scenarios in scratch spaces, the MTU measured on the wire, and diagnostics on failure.

`LiveTarget` implements `targets.Target` plus the scenario and MTU extensions over a `Deployment` of
probe pods per cluster and `probe.runner.run_matrix` with the `KubeExecutor`; `cluster/targets.py`
says how each live target gets its clusters and deployment. Exercised by live runs only.
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from calico_conformance.cluster.commands import KubeAccess
from calico_conformance.cluster.deploy import (
    Deployment,
)
from calico_conformance.cluster.diagnostics import attach_to_allure, bundle_dir, collect, diagnostics_plan
from calico_conformance.cluster.images import NETSHOOT_IMAGE, rewrite_image
from calico_conformance.cluster.inventory import Inventory, ObjectRef
from calico_conformance.cluster.kube import KubeClient
from calico_conformance.cluster.ledger import FlowLedger
from calico_conformance.cluster.releases import release_for
from calico_conformance.cluster.render_policy import Renames, scenario_manifests
from calico_conformance.cluster.run_once import run_state_dir
from calico_conformance.cluster.scratch import ScratchSpace, scratch_renames
from calico_conformance.cluster.stand_ins import probed_flows, stand_in_detail
from calico_conformance.cluster.stand_ins import reproduce_command as stand_in_reproduce_command
from calico_conformance.cluster.tools import (
    KUBECONFIG_TOOLS,
    MissingTools,
    require_tools,
)
from calico_conformance.cluster.waits import PROGRESS, Timeouts, timed
from calico_conformance.config import RunConfig
from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.model import Labels, Pod, ResourceSet, Scenario, ServiceAccount
from calico_conformance.probe.kube_executor import KubeExecutor, stream_exec
from calico_conformance.probe.runner import ProbeEndpoint, run_matrix
from calico_conformance.reachability import (
    Expectation,
    ExpectedMatrix,
    Flow,
    Observation,
    ObservedMatrix,
    ProbeVerdict,
)
from calico_conformance.report.outcomes import NOT_SUPPORTED_PREFIX
from calico_conformance.suite.mtu_checks import mtu_jobs, mtu_observation
from calico_conformance.targets.base import ClusterFacts, MtuObservation
from calico_conformance.tenancy.layout import Service, TenancyLayout, Workload
from calico_conformance.tenancy.register import ClusterSpec, load_register

AGENT_SOURCE = Path(__file__).resolve().parent.parent / "probe" / "agent.py"


@dataclass
class LiveCluster:
    """One cluster as this process talks to it."""

    name: str
    access: KubeAccess
    kube: KubeClient
    deployment: Deployment
    executor: KubeExecutor
    facts: ClusterFacts | None = None


class LiveTarget:
    """What both live targets share: preparing clusters in parallel, observing, scenarios, diagnostics."""

    name = "live"
    has_dataplane = True
    tools: tuple[str, ...] = KUBECONFIG_TOOLS

    def __init__(self, run: RunConfig, layout: TenancyLayout, resources: ResourceSet) -> None:
        try:
            require_tools(self.tools, self.name)
            self.release = release_for(run.calico_version)
        except (MissingTools, ValueError) as problem:
            raise pytest.UsageError(str(problem)) from None
        self.run = run
        self.layout = layout
        self.resources = resources
        self.timeouts = Timeouts.from_run(run)
        self.state_dir = run_state_dir(run.run_id)
        self.inventory = Inventory(run.run_id)
        self.image = rewrite_image(NETSHOOT_IMAGE, run.registry)
        self.agent_source = AGENT_SOURCE.read_text()
        self._clusters: dict[str, LiveCluster] = {}
        self._mtu: dict[str, MtuObservation] = {}
        self._ledgers: dict[str, FlowLedger] = {}  # cluster -> what this run has proven of its layout flows
        self._matrices: dict[str, int] = {}  # cluster -> layout matrices probed so far (their labels)
        self._lock = threading.Lock()
        self._register: tuple[ClusterSpec, ...] = ()

    # --- Target ---------------------------------------------------------------------------------------

    def prepare(self) -> None:
        missing = [name for name in self.run.clusters if name not in self._clusters]
        if not missing:
            return
        self._register = load_register(self.run.kind_configs)
        with ThreadPoolExecutor(max_workers=len(missing)) as pool:  # clusters in parallel
            for name, live in zip(missing, pool.map(self._connect, missing), strict=True):
                self._clusters[name] = live

    def cluster(self, name: str) -> LiveCluster:
        if name not in self._clusters:
            self.prepare()
        return self._clusters[name]

    def observe(self, cluster: str, expected: ExpectedMatrix) -> ObservedMatrix:
        """Observe a layout matrix: flows to other DNS servers and outside addresses go to the stand-ins."""
        live = self.cluster(cluster)
        plan = probed_flows(
            expected,
            self.layout,
            live.deployment.stand_ins,
            live.deployment.endpoints,
            self._pod_networks(cluster),
        )
        cells = {
            flow: Observation(ProbeVerdict.ERROR, f"{NOT_SUPPORTED_PREFIX}{why}")
            for flow, why in plan.unsupported.items()
        }
        cells.update({flow: Observation(ProbeVerdict.ERROR, why) for flow, why in plan.conflicts.items()})
        if plan.expected:
            seen = self._observe_layout(cluster, live, plan.expected)
            for flow, probe in plan.probed_as.items():
                observation = seen[probe]
                if probe != flow:
                    via = stand_in_detail(flow, probe, live.deployment.all_endpoints)
                    observation = replace(
                        observation, detail="; ".join(filter(None, [via, observation.detail]))
                    )
                cells[flow] = observation
        return ObservedMatrix(cells)

    def _observe_layout(
        self, cluster: str, live: LiveCluster, expected: ExpectedMatrix
    ) -> dict[Flow, Observation]:
        """Observe flows of the layout's own state, probing only those no earlier matrix of this run
        concluded (`cluster/ledger.py` says why that is sound and what is never recalled)."""
        ledger = self._ledgers.setdefault(cluster, FlowLedger())
        seen = ledger.recall(expected)
        wanted = {flow: expectation for flow, expectation in expected.items() if flow not in seen}
        if wanted:
            with self._lock:
                self._matrices[cluster] = number = self._matrices.get(cluster, 0) + 1
            label = f"{cluster} matrix {number}"
            PROGRESS.info("%s: %d flow(s) to probe, %d recalled", label, len(wanted), len(seen))
            fresh = self.observe_with(live, live.deployment, ExpectedMatrix(wanted), label="matrix")
            ledger.remember(fresh.cells, label=label)
            seen.update(fresh.cells)
        return seen

    def unsupported_flows(self, cluster: str, flows: Iterable[Flow]) -> dict[Flow, str]:
        """The flows of a layout matrix this cluster cannot probe, and why (targets.FlowSupportTarget)."""
        live = self.cluster(cluster)
        matrix = ExpectedMatrix.from_function(flows, lambda _flow: Expectation(False))
        return dict(
            probed_flows(
                matrix,
                self.layout,
                live.deployment.stand_ins,
                live.deployment.endpoints,
                self._pod_networks(cluster),
            ).unsupported
        )

    def reproduce_command(self, cluster: str, flow: Flow) -> str:
        """The shell command that reruns one layout flow's probe by hand, as it was probed (stand-ins)."""
        live = self.cluster(cluster)
        deployment = live.deployment
        plan = probed_flows(
            ExpectedMatrix({flow: Expectation(False)}),
            self.layout,
            deployment.stand_ins,
            deployment.endpoints,
            self._pod_networks(cluster),
        )
        return stand_in_reproduce_command(
            flow,
            plan,
            deployment.all_endpoints,
            access=live.access,
            agent_path=live.executor.agent_path,
            timeout_s=self.run.probe_timeout_s,
        )

    def _pod_networks(self, cluster: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The cluster's pod network as audited: an "outside" sender must not have an address in it."""
        return (self.facts(cluster).pod_subnet,)

    def observe_scenario(self, cluster: str, scenario: Scenario) -> ObservedMatrix:
        """Apply a synthetic scenario in a scratch space, observe its probes, remove it again."""
        renames = scratch_renames(
            self.run.run_id,
            scenario.source or "scenario",
            [namespace.name for namespace in scenario.namespaces],
            [tier.name for tier in scenario.resources.tiers],
        )
        labels = {namespace.name: namespace.labels.as_dict() for namespace in scenario.namespaces}
        workloads = [_scenario_workload(pod, scenario.service_accounts) for pod in scenario.pods]
        # The oracle's verdicts steer the runner's retries and positive controls; the suite compares
        # what was observed with its own hand-written expectation.
        expected = Oracle.from_scenario(scenario).expected_matrix(
            Flow(p.source, p.destination, p.port, p.protocol) for p in scenario.probes
        )
        with timed(f"{cluster}: scenario {scenario.source or 'scenario'}"), self.scratch(
            cluster, renames, labels, workloads
        ) as space:
            for manifest in scenario_manifests(scenario):
                space.apply(manifest)
            return space.observe(expected, label=f"scenario-{scenario.source}")

    def scratch(
        self,
        cluster: str,
        renames: Renames,
        namespace_labels: Mapping[str, Mapping[str, str]],
        workloads: list[Workload],
    ) -> ScratchSpace:
        """A scratch space on `cluster` (use it as a context manager: it removes itself)."""
        return ScratchSpace(self, self.cluster(cluster), renames, namespace_labels, workloads)

    def observe_mtu(self, cluster: str) -> MtuObservation:
        """eth0 MTU of the probe pods, and the largest DF datagram and a bulk TCP transfer each node gets
        across to another (`mtu_checks`), judged by the worst route; measured once per cluster, as the
        MTU tests share it. The pods are the control pod and its MTU peers, one on every node, in the run's
        own namespace that no policy of the run selects: no tier needed (Calico 3.27 too), and nothing
        the policies under test do can shape it. Every node sends, so a node whose tunnel MTU is too
        small for the pods is seen whichever it is."""
        if cluster in self._mtu:
            return self._mtu[cluster]
        live = self.cluster(cluster)
        routes = mtu_routes(live.deployment)
        udp = [s.port for s in self.layout.canary_services if s.protocol == "UDP"]
        tcp = [s.port for s in self.layout.canary_services if s.protocol == "TCP"]
        if not udp or not tcp or not routes:
            raise RuntimeError(
                f"{cluster}: the MTU check needs a UDP and a TCP canary port and the control pod and an MTU "
                "peer on two nodes"
            )
        observations = []
        for source, destination in routes:
            jobs = mtu_jobs(destination.ip, udp_port=udp[0], tcp_port=tcp[0])
            results = {r["id"]: r for r in live.executor.run_batch(source.handle, jobs, deadline_s=120)}
            route = f"{source.handle} on {source.node} -> {destination.handle} on {destination.node}"
            try:
                observations.append(
                    mtu_observation(results, network_mtu=self.facts(cluster).network_mtu, route=route)
                )
            except RuntimeError as failed:
                raise RuntimeError(f"{cluster}: {failed}") from None
        observed = worst_route(observations)
        self._mtu[cluster] = observed
        return observed

    def facts(self, cluster: str) -> ClusterFacts:
        """The cluster's facts as audited live after it was prepared (never the register's)."""
        live = self.cluster(cluster)
        assert live.facts is not None, f"{cluster} was connected without its facts"
        return live.facts

    def close(self) -> None:
        for live in self._clusters.values():
            live.kube.api_client.close()
        self._clusters.clear()

    # --- shared machinery -----------------------------------------------------------------------------

    allows_cluster_scoped = True

    def _connect(self, name: str) -> LiveCluster:
        raise NotImplementedError

    def _client(
        self, name: str, kubeconfig: Path | None, context: str | None
    ) -> tuple[KubeAccess, KubeClient]:
        cache = self.state_dir / f"{name}-{os.getpid()}.discovery.json"
        return KubeAccess(kubeconfig, context), KubeClient(
            kubeconfig, context, discovery_cache=cache, release=self.release.tag
        )

    def _executor(self, kube: KubeClient) -> KubeExecutor:
        return KubeExecutor(stream_exec(kube.core))

    def record(self, cluster: str, obj: Mapping[str, Any]) -> ObjectRef:
        """Remember a created object in memory and on disk (the end-of-run cleanup reads the disk)."""
        ref = self.inventory.record(obj)
        line = json.dumps(
            {
                "cluster": cluster,
                "apiVersion": ref.api_version,
                "kind": ref.kind,
                "name": ref.name,
                "namespace": ref.namespace,
                "uid": ref.uid,
            }
        )
        with self._lock, (self.state_dir / f"inventory-{os.getpid()}.jsonl").open("a") as journal:
            journal.write(line + "\n")
        return ref

    def observe_with(
        self, live: LiveCluster, deployment: Deployment, expected: ExpectedMatrix, *, label: str
    ) -> ObservedMatrix:
        """Observe `expected` with the probes of `deployment`; unprobeable flows are `error`."""
        cells: dict[Flow, Observation] = {}
        probeable: dict[Flow, Any] = {}
        for flow in expected:
            why = self._unprobeable(deployment, flow)
            if why:
                cells[flow] = Observation(ProbeVerdict.ERROR, why)
            else:
                probeable[flow] = expected[flow]
        if probeable:
            try:
                result = run_matrix(
                    live.executor,
                    deployment.all_endpoints,
                    ExpectedMatrix(probeable),
                    timeout_s=self.run.probe_timeout_s,
                    converge_timeout_s=self.run.converge_timeout_s,
                    control_source=deployment.control,
                    source_control=deployment.source_control_probe(),
                    # Without a control tier no pod may be exempted from the policies under test: a server
                    # nobody may reach vouches for itself, with its pod proven on the network (probe.runner).
                    self_control=deployment.control is None,
                )
            except ValueError as refused:  # e.g. a service no flow may reach and no control source
                reason = f"{refused}" + (
                    f" ({deployment.no_control_reason})" if deployment.no_control_reason else ""
                )
                cells.update({flow: Observation(ProbeVerdict.ERROR, reason) for flow in probeable})
            else:
                cells.update(result.observed.cells)
                if not result.ok:
                    self.diagnostics(
                        live,
                        f"{label}-{result.failure or 'failed'}",
                        summary=result.failure or "",
                        flows=list(probeable),
                    )
        return ObservedMatrix(cells)

    def _unprobeable(self, deployment: Deployment, flow: Flow) -> str:
        for end in (flow.source, flow.destination):
            if end in deployment.all_endpoints:
                continue
            try:
                ipaddress.ip_address(end)
                if end == flow.source:
                    return f"{end}: probes cannot start outside the cluster"
                continue
            except ValueError:
                pass
            namespace = end.partition("/")[0]
            return f"{end}: no probe ({deployment.unprobed.get(namespace, 'not a workload of the deployed layout')})"
        return ""

    def diagnostics(
        self, live: LiveCluster, label: str, *, summary: str = "", flows: list[Flow] | None = None
    ) -> Path:
        """Write (and attach) the diagnostics bundle for `live`; returns its directory."""
        endpoints = live.deployment.all_endpoints
        involved = [
            endpoints[end]
            for flow in flows or ()
            for end in (flow.source, flow.destination)
            if end in endpoints
        ]
        try:
            calico_nodes = {
                p["spec"]["nodeName"]: p["metadata"]["name"]
                for p in live.kube.pods("calico-system", "k8s-app=calico-node")
            }
        except Exception as error:  # the API server may be what broke
            calico_nodes, summary = {}, f"{summary}\ncould not list calico-node pods: {error}"
        plan = diagnostics_plan(
            live.access,
            release=self.release.tag,
            calico_node_pods=calico_nodes,
            nodes_involved=[e.node for e in involved if e.node] or list(calico_nodes),
            probe_pods=[tuple(e.handle.split("/", 1)) for e in involved],  # type: ignore[misc]
        )
        bundle = collect(
            bundle_dir(self.run.report_dir, self.run.run_id, live.name, label), plan, summary=summary
        )
        attach_to_allure(bundle)
        return bundle.directory

    def _fail_with_diagnostics(self, live: LiveCluster, failure: Exception, label: str) -> RuntimeError:
        directory = self.diagnostics(live, label, summary=str(failure))
        return RuntimeError(f"{live.name}: {failure}\ndiagnostics: {directory}")


# --- helpers of both targets --------------------------------------------------------------------------


def mtu_routes(deployment: Deployment) -> list[tuple[ProbeEndpoint, ProbeEndpoint]]:
    """(sender, receiver) for the MTU check: one pod per node among the control pod and its MTU peers, in
    a ring by node name, so every node sends once to another node. Empty with fewer than two nodes."""
    candidates = [deployment.source_control, *deployment.mtu_peers]
    by_node: dict[str, ProbeEndpoint] = {}
    for key in candidates:
        endpoint = deployment.endpoints.get(key) if key is not None else None
        if endpoint is not None and endpoint.node is not None:
            by_node.setdefault(endpoint.node, endpoint)
    pods = [by_node[node] for node in sorted(by_node)]
    if len(pods) < 2:
        return []
    return [(pods[i], pods[(i + 1) % len(pods)]) for i in range(len(pods))]


def worst_route(observations: Sequence[MtuObservation]) -> MtuObservation:
    """One observation for the cluster: the smallest pod MTU and DF payload any route showed, and the bulk
    transfer failed if any route's did (could not run if one could not and none failed)."""
    worst = min(observations, key=lambda o: (o.largest_df_payload, o.pod_mtu))
    bulk = [o.bulk_ok for o in observations]
    failed = next((o for o in observations if o.bulk_ok is False), None)
    unknown = next((o for o in observations if o.bulk_ok is None), None)
    judged = failed or unknown or worst
    return replace(
        worst,
        pod_mtu=min(o.pod_mtu for o in observations),
        detail="; ".join(o.detail for o in observations),
        bulk_ok=False if False in bulk else None if None in bulk else True,
        bulk_detail=f"{judged.bulk_detail} ({judged.detail.split(';')[0]})",
    )


def _scenario_workload(pod: Pod, accounts: Iterable[ServiceAccount]) -> Workload:
    """The probe of a scenario pod: its labels, ports and service account, with that account's labels
    (the probe pods' deployment creates the account, as the oracle judged the pod with it)."""
    ports = tuple(Service(port.port, port.protocol, port.name) for port in pod.ports)
    account = next((a for a in accounts if (a.namespace, a.name) == (pod.namespace, pod.service_account)), None)
    return Workload(
        namespace=pod.namespace,
        name=pod.name,
        labels=pod.labels,
        ports=ports,
        service_account=pod.service_account,
        service_account_labels=account.labels if account else Labels(),
    )
