"""Putting a tenancy layout on a live cluster: namespaces, policies, the control tier and probe pods.

The result is a `Deployment`: for every layout workload that has a probe, the runner's endpoint
(`namespace/pod` exec handle, pod IP, node); the control source, if any; and for every namespace that
could not be probed, why; and the stand-ins for the layout's other DNS servers and outside addresses
(`cluster/stand_ins.py`). It is plain JSON state, so xdist workers share the one deployment the first
worker made (`cluster/run_once.py`).

The control source is a probe pod in its own namespace that a dedicated first tier lets reach every
pod (`control_tier_manifests`): the positive control for services no flow of a matrix is expected to
reach, so a deny is only believed where the server provably answers. The tier's rules match traffic
from that pod only and Pass everything else, so no flow under test changes. It needs tiers (Calico
3.29+) and is cluster-scoped (on shared clusters: `--allow-cluster-scoped`); without it such flows
are `error`, never a deny.

The same pod is every source's source control (`Deployment.source_control`, `probe.runner`): the tier
also lets every pod reach it, so a source that cannot reach it in a round cannot send at all, and its
denies of that round are `error`. Without tiers (Calico 3.27, or no `--allow-cluster-scoped`) the pod
still stands in a namespace of the run's own that no policy of the run selects: sources whose egress
the policies under test leave open reach it; the others' denies are `error`, never a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from calico_conformance.cluster.inventory import ObjectRef
from calico_conformance.cluster.kube import TRANSIENT_ERRORS, KubeClient
from calico_conformance.cluster.probe_pods import (
    ROLE_LABEL,
    RUN_LABEL,
    ProbePod,
    render_agent_configmap,
    render_probe_pod,
    render_service_account,
    run_labels,
)
from calico_conformance.cluster.readiness import cni_annotations_cover, containers_ready
from calico_conformance.cluster.stand_ins import STAND_IN_ROLES, StandIns
from calico_conformance.cluster.waits import Progress, Timeouts, wait_for
from calico_conformance.oracle.loader_document import TIERS_SINCE
from calico_conformance.probe.runner import ProbeEndpoint
from calico_conformance.tenancy.layout import Service, Workload

CONTROL_WORKLOAD = "control"
MTU_PEER_WORKLOAD = "mtu-peer"  # the control pod's partners for the MTU check, in the same policy-free namespace
CONTROL_ROLE = "control"
CONTROL_TIER_ORDER = 1  # before the user tiers: its Allow must decide first for control traffic
CALICO_KINDS_FIRST = ("Tier", "GlobalNetworkSet", "NetworkSet", "GlobalNetworkPolicy", "NetworkPolicy")


def control_namespace(run_id: str) -> str:
    return f"cc-{run_id}-control"


def control_key(run_id: str) -> str:
    return f"{control_namespace(run_id)}/{CONTROL_WORKLOAD}"


def control_tier_name(run_id: str) -> str:
    return f"cc-{run_id}-control"


def control_tier_manifests(run_id: str) -> list[dict[str, Any]]:
    """The first tier: traffic from this run's control pod is allowed everywhere; the rest is Passed."""
    tier = control_tier_name(run_id)
    control = f"{ROLE_LABEL} == '{CONTROL_ROLE}' && {RUN_LABEL} == '{run_id}'"
    labels = run_labels(run_id, "control")
    api = "projectcalico.org/v3"
    return [
        {"apiVersion": api, "kind": "Tier", "metadata": {"name": tier, "labels": labels},
         "spec": {"order": CONTROL_TIER_ORDER, "defaultAction": "Pass"}},
        {"apiVersion": api, "kind": "GlobalNetworkPolicy",
         "metadata": {"name": f"{tier}.control-reaches-every-pod", "labels": labels},
         "spec": {"tier": tier, "order": 1, "selector": "all()", "types": ["Ingress"],
                  "ingress": [{"action": "Allow", "source": {"selector": control}}, {"action": "Pass"}]}},
        {"apiVersion": api, "kind": "GlobalNetworkPolicy",
         "metadata": {"name": f"{tier}.control-may-send", "labels": labels},
         "spec": {"tier": tier, "order": 2, "selector": control, "types": ["Egress"],
                  "egress": [{"action": "Allow"}]}},
        # The source control: every pod may reach the control pod, and it hears everyone. Ordered so
        # that the all() policies' Pass comes after the control pod's own Allow in each direction.
        {"apiVersion": api, "kind": "GlobalNetworkPolicy",
         "metadata": {"name": f"{tier}.control-hears-every-pod", "labels": labels},
         "spec": {"tier": tier, "order": 0, "selector": control, "types": ["Ingress"],
                  "ingress": [{"action": "Allow"}]}},
        {"apiVersion": api, "kind": "GlobalNetworkPolicy",
         "metadata": {"name": f"{tier}.every-pod-reaches-control", "labels": labels},
         "spec": {"tier": tier, "order": 3, "selector": "all()", "types": ["Egress"],
                  "egress": [{"action": "Allow", "destination": {"selector": control}}, {"action": "Pass"}]}},
    ]  # fmt: skip


def mtu_peer_key(run_id: str, index: int = 0) -> str:
    return f"{control_namespace(run_id)}/{MTU_PEER_WORKLOAD}-{index}"


def mtu_peer_workloads(run_id: str, canary: Sequence[Service], nodes: int) -> list[Workload]:
    """Plain probe pods beside the control pod, planned right after it so that, with it, they stand on
    every node: the MTU is measured from each of them to one on another node (every node's tunnel
    sends), in the run's own namespace that no policy of the run selects, so it needs no tier and says
    nothing about policy (Calico 3.27 included)."""
    from calico_conformance.oracle.model import Labels

    return [
        Workload(
            namespace=control_namespace(run_id),
            name=f"{MTU_PEER_WORKLOAD}-{index}",
            labels=Labels.of({"app": MTU_PEER_WORKLOAD}),
            ports=tuple(canary),
        )
        for index in range(max(1, nodes - 1))
    ]


def source_control_service(canary: Sequence[Service]) -> tuple[int, str]:
    """The control pod's canary service the source controls probe: TCP first (it proves a handshake)."""
    ordered = sorted(canary, key=lambda service: service.protocol != "TCP")
    if not ordered:
        raise ValueError("the layout has no canary service for the control pod to listen on")
    return ordered[0].port, ordered[0].protocol


def control_workload(run_id: str, canary: Sequence[Service]) -> Workload:
    from calico_conformance.oracle.model import Labels

    return Workload(
        namespace=control_namespace(run_id),
        name=CONTROL_WORKLOAD,
        labels=Labels.of({"app": CONTROL_WORKLOAD}),
        ports=tuple(canary),
    )


@dataclass(frozen=True)
class Deployment:
    endpoints: Mapping[str, ProbeEndpoint]  # workload key -> where its probe runs
    control: str | None  # workload key of the control source, None when there is none
    unprobed: Mapping[str, str] = field(default_factory=dict)  # layout namespace -> why it has no probes
    no_control_reason: str = ""
    stand_ins: StandIns = field(default_factory=StandIns)  # rogue DNS and outside echo (stand_ins.py)
    source_control: str | None = None  # workload key every source must reach each round (the control pod)
    source_control_service: tuple[int, str] | None = None  # (port, protocol) it listens on
    mtu_peers: tuple[str, ...] = ()  # workload keys of the control pod's MTU partners (mtu_peer_workloads)

    @property
    def all_endpoints(self) -> dict[str, ProbeEndpoint]:
        """The workloads' probes and the stand-ins: every destination a probed flow may have."""
        return {**self.endpoints, **self.stand_ins.endpoints}

    def to_state(self) -> dict[str, Any]:
        return {
            "endpoints": {key: [e.handle, e.ip, e.node] for key, e in self.endpoints.items()},
            "control": self.control,
            "unprobed": dict(self.unprobed),
            "no_control_reason": self.no_control_reason,
            "stand_ins": self.stand_ins.to_state(),
            "source_control": self.source_control,
            "source_control_service": list(self.source_control_service or ()) or None,
            "mtu_peers": list(self.mtu_peers),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Deployment:
        endpoints = {
            key: ProbeEndpoint(handle, ip, node) for key, (handle, ip, node) in state["endpoints"].items()
        }
        return cls(
            endpoints,
            state.get("control"),
            dict(state.get("unprobed", {})),
            state.get("no_control_reason", ""),
            StandIns.from_state(state.get("stand_ins", {})),
            state.get("source_control"),
            (int(state["source_control_service"][0]), str(state["source_control_service"][1]))
            if state.get("source_control_service")
            else None,
            tuple(state.get("mtu_peers", ())),
        )

    def source_control_probe(self) -> tuple[str, int | None, str] | None:
        """The runner's `source_control` service, or None when the deployment has no control pod."""
        if self.source_control is None or self.source_control_service is None:
            return None
        return (self.source_control, *self.source_control_service)


def read_policy_manifests(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """The policy set's documents as written, Calico kinds ordered so tiers exist before their policies.

    `crd.projectcalico.org/v1` documents are applied as `projectcalico.org/v3` (same kind and shape):
    Calico's docs forbid writing the internal CRDs directly (calico-install.md §5). A tenancy layout
    kept beside the set (`policies/tenancy.yaml` under `--policies policies`) is not a manifest: left out.
    """
    from calico_conformance.oracle.loader import manifest_files
    from calico_conformance.oracle.yamlsrc import load_file
    from calico_conformance.tenancy.layout import API_VERSION as LAYOUT_API_VERSION

    documents: list[dict[str, Any]] = []
    for path in manifest_files(paths):
        for document in load_file(path):
            if isinstance(document, dict) and document.get("apiVersion") != LAYOUT_API_VERSION:
                manifest = _plain(document)
                if manifest.get("apiVersion") == "crd.projectcalico.org/v1":
                    manifest["apiVersion"] = "projectcalico.org/v3"
                documents.append(manifest)

    def rank(manifest: Mapping[str, Any]) -> int:
        kind = str(manifest.get("kind"))
        return CALICO_KINDS_FIRST.index(kind) if kind in CALICO_KINDS_FIRST else len(CALICO_KINDS_FIRST)

    return sorted(documents, key=rank)


def policy_schema_problems(policies: Path, calico_version: str) -> list[str]:
    """`<dir>: <kind> <name>: <error>` for every policy document the schemas refuse."""
    from calico_conformance.cluster.releases import release_for
    from calico_conformance.cluster.schemas import validate_manifest

    manifests = read_policy_manifests([policies])
    release = release_for(calico_version)
    tiers = [str(m.get("metadata", {}).get("name")) for m in manifests if m.get("kind") == "Tier"]
    if tiers and release.minor < TIERS_SINCE:
        return [
            f"{policies}: the policy set uses tiers ({', '.join(tiers)}), which Calico {release.tag} does not have "
            f"(tiers arrived in 3.29): install a tiered release (--calico-version 3.31) or test a policy set "
            f"without tiers"
        ]
    problems = []
    for manifest in manifests:
        for error in validate_manifest(manifest, calico_version=calico_version):
            problems.append(
                f"{policies}: {manifest.get('kind')} {manifest.get('metadata', {}).get('name')}: {error}"
            )
    return problems


def _plain(value: Any) -> Any:
    """Located YAML containers as plain dicts and lists, for the API client's serializer."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def worker_nodes(nodes: Sequence[Mapping[str, Any]]) -> list[str]:
    """Names of the nodes probes may run on: the workers, or every node when there is no worker."""
    names = sorted(node["metadata"]["name"] for node in nodes)
    workers = [
        node["metadata"]["name"]
        for node in nodes
        if "node-role.kubernetes.io/control-plane" not in (node["metadata"].get("labels") or {})
    ]
    return sorted(workers) or names


def start_probe_pods(
    kube: KubeClient,
    pods: Sequence[ProbePod],
    *,
    image: str,
    agent_source: str,
    run_id: str,
    timeouts: Timeouts,
    record: Callable[[Mapping[str, Any]], object] = lambda obj: None,
    create_configmaps: bool = True,
) -> dict[str, ProbeEndpoint]:
    """Create the agent ConfigMaps, the ServiceAccounts stranger probes run as and the probe pods, wait
    for the agents and for Calico's CNI to have set every pod-network probe up (its pod annotations,
    `readiness.cni_annotations_cover`). On Calico 3.31 the Installation sets
    `linuxPolicySetupTimeoutSeconds` (`install.py`), so the CNI holds each container until felix has
    programmed its policy; before that release the source-side control of `probe.runner` is what keeps an
    unprogrammed interface's drops from counting as denies.

    Returns workload key -> runner endpoint. `record` sees every created object (the inventory).
    """
    if create_configmaps:
        for namespace in sorted({pod.namespace for pod in pods}):
            record(kube.create(render_agent_configmap(namespace, agent_source, run_id)))
    provide_service_accounts(kube, pods, run_id=run_id, record=record)
    for pod in pods:
        record(kube.create(render_probe_pod(pod, image=image, agent_source=agent_source, run_id=run_id)))
    expected = [pod.key for pod in pods]
    namespaces = sorted({pod.namespace for pod in pods})

    def live_pods() -> list[dict[str, Any]]:
        return [p for ns in namespaces for p in kube.pods(ns, f"{RUN_LABEL}={run_id}")]

    wait_for(
        "probe pods' agents",
        lambda: containers_ready(expected, live_pods()),
        timeout_s=timeouts.probe_pods_ready_s,
        interval_s=timeouts.poll_interval_s,
        retry_on=TRANSIENT_ERRORS,
    )
    by_key = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p for p in live_pods()}
    ips = {pod.key: str(by_key[pod.key]["status"]["podIP"]) for pod in pods}
    # A hostNetwork pod (the outside echo) is no workload of Calico's: its CNI never sets it up.
    on_pod_network = {pod.key: ips[pod.key] for pod in pods if not pod.host_network}
    wait_for(
        "Calico's CNI annotations on every probe pod",
        lambda: cni_annotations_cover(on_pod_network, live_pods()),
        timeout_s=timeouts.workload_endpoints_s,
        interval_s=timeouts.poll_interval_s,
        retry_on=TRANSIENT_ERRORS,
    )
    return {pod.workload: ProbeEndpoint(pod.key, ips[pod.key], pod.node) for pod in pods}


class AccountApi(Protocol):
    """What providing ServiceAccounts needs of the API (`KubeClient` has it)."""

    def get_named(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Mapping[str, Any] | None: ...

    def create(self, manifest: Mapping[str, Any]) -> Mapping[str, Any]: ...


def provide_service_accounts(
    kube: AccountApi,
    pods: Sequence[ProbePod],
    *,
    run_id: str,
    record: Callable[[Mapping[str, Any]], object] = lambda obj: None,
) -> None:
    """Create the ServiceAccount of every pod that runs as its own account, before the pods need it.

    An account of that name may exist already (a customer's `batch` in an existing namespace, or a
    reused cluster's): it is used only when it carries every label the probe's account has, because
    those are all the account labels the policy set reads (`probe_surface`) and what the oracle
    assumed. Otherwise the stranger would stand for an account nobody has, so that is a RuntimeError.
    """
    wanted: dict[tuple[str, str], ProbePod] = {}
    for pod in pods:
        if pod.own_account:
            wanted.setdefault((pod.namespace, pod.service_account), pod)
    for (namespace, name), pod in sorted(wanted.items()):
        existing = kube.get_named("v1", "ServiceAccount", name, namespace)
        if existing is None:
            record(kube.create(render_service_account(pod, run_id)))
            continue
        labels = (existing.get("metadata") or {}).get("labels") or {}
        missing = {key: value for key, value in pod.service_account_labels.items() if labels.get(key) != value}
        if missing:
            raise RuntimeError(
                f"ServiceAccount {namespace}/{name} already exists without the labels {missing} the probe "
                f"{pod.workload} runs with (its labels: {dict(labels)}); remove or relabel it, or probe "
                "elsewhere"
            )


def delete_probe_pods(kube: KubeClient, namespaces: Iterable[str], timeouts: Timeouts) -> None:
    """Remove every suite-managed probe pod left in `namespaces` (a reused kind cluster), and wait."""
    selector = f"{ROLE_LABEL} in ({','.join(('probe', CONTROL_ROLE, *STAND_IN_ROLES))})"
    stale = [p for ns in namespaces for p in kube.pods(ns, selector)]
    for pod in stale:
        kube.delete(ObjectRef("v1", "Pod", pod["metadata"]["name"], pod["metadata"]["namespace"]))
    names = {f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in stale}

    def gone() -> Progress:
        left = {
            f"{p['metadata']['namespace']}/{p['metadata']['name']}"
            for ns in namespaces
            for p in kube.pods(ns, selector)
        }
        still = sorted(left & names)
        return Progress(not still, f"still terminating: {', '.join(still)}")

    if names:
        wait_for(
            "stale probe pods to go",
            gone,
            timeout_s=timeouts.object_deleted_s,
            interval_s=timeouts.poll_interval_s,
            retry_on=TRANSIENT_ERRORS,
        )
