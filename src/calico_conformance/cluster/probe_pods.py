"""The objects a live run creates for probing: namespaces, the agent ConfigMap and one pod per workload.

Each workload of the tenancy layout becomes a `nicolaka/netshoot` pod with the workload's labels that
runs `agent.py serve` (mounted from a ConfigMap) on the workload's ports plus the layout's canary
ports, so a probe to any of them reaches a listening server and only policy can stop it. Pods are
pinned to nodes round-robin (`spec.nodeName`), so every matrix has same-node and cross-node pairs. A
workload that runs as its own service account (a probe-surface stranger) gets that ServiceAccount,
labelled as the oracle assumes, in its namespace.

Every probe pod carries a readiness gate that nothing ever sets. Its `Ready` condition therefore stays
False for its whole life, so it is never a Service endpoint and never receives real traffic — which
matters when a probe stands in for `kube-system/kube-dns` (it has the label the kube-dns Service
selects) or runs in a customer's existing namespace (`--probe-existing-namespaces`). The suite waits on
`ContainersReady` instead (`cluster/readiness.py`). Every object carries the run's labels, which the
cleanup and the leak check select on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from calico_conformance.tenancy.layout import Service, Workload
from calico_conformance.tenancy.model import DEFAULT_SERVICE_ACCOUNT

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "calico-conformance"
RUN_LABEL = "calico-conformance.io/run"
ROLE_LABEL = "calico-conformance.io/role"
NEVER_READY_GATE = "calico-conformance.io/never-ready"  # a pod condition nothing ever sets
AGENT_MOUNT = "/opt/calico-conformance"
AGENT_FILE = "agent.py"
CONTAINER = "agent"
HOST_IP_ENV = "HOST_IP"


NET_RAW = "NET_RAW"


def run_labels(run_id: str, role: str) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY, RUN_LABEL: run_id, ROLE_LABEL: role}


def run_selector(run_id: str) -> str:
    """The label selector of everything one run created."""
    return f"{MANAGED_BY_LABEL}={MANAGED_BY},{RUN_LABEL}={run_id}"


@dataclass(frozen=True)
class ProbePod:
    """One workload's probe: where it runs and what it serves."""

    workload: str  # layout key, namespace/name
    namespace: str
    pod_name: str
    labels: Mapping[str, str]
    services: tuple[Service, ...]  # the workload's ports plus the canary ports, each once
    node: str
    role: str = "probe"  # the ROLE_LABEL value: "control" for the positive-control source
    dns_services: tuple[Service, ...] = ()  # answered as a rogue resolver (cluster/stand_ins.py)
    dns_answer: str | None = None  # the address every A query gets on `dns_services`
    host_network: bool = False  # in the node's network namespace: an address outside the pod network
    service_account: str = DEFAULT_SERVICE_ACCOUNT  # spec.serviceAccountName
    service_account_labels: Mapping[str, str] = field(default_factory=dict)  # of that ServiceAccount

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.pod_name}"

    @property
    def own_account(self) -> bool:
        """Whether the run must provide the pod's ServiceAccount (every namespace has `default`)."""
        return self.service_account != DEFAULT_SERVICE_ACCOUNT


def plan_probe_pods(
    workloads: Sequence[Workload],
    nodes: Sequence[str],
    *,
    canary: Sequence[Service] = (),
    pod_name_prefix: str = "",
    namespaces: Mapping[str, str] | None = None,
    roles: Mapping[str, str] | None = None,
) -> list[ProbePod]:
    """One probe pod per workload, spread over `nodes` round-robin in layout order.

    `namespaces` maps a layout namespace to the cluster namespace its probes run in (run-id-named
    stand-ins on shared clusters); unmapped namespaces are used as named. `roles` gives a workload key
    another role label than "probe" (the control source's policies select it by "control").

    Within a namespace, consecutive workloads land on different nodes, and each namespace starts one node
    further than the one before: the layout puts the sentinel first in every namespace, so a plain
    round-robin over the whole list would put every sentinel on the same node and no sentinel <->
    sentinel or outsider -> sentinel flow would ever cross nodes (policy is enforced on different hooks
    for same-node and cross-node traffic).
    """
    if not nodes:
        raise ValueError("no schedulable node to place probe pods on")
    pods = []
    ordinal: dict[str, int] = {}  # namespace -> its place among the namespaces, in layout order
    position: dict[str, int] = {}  # namespace -> workloads of it placed so far
    for workload in workloads:
        offset = ordinal.setdefault(workload.namespace, len(ordinal))
        index = offset + position.get(workload.namespace, 0)
        position[workload.namespace] = position.get(workload.namespace, 0) + 1
        # One listener per port and protocol; the workload's own (named) entry wins over the canary's.
        by_port: dict[tuple[int | None, str], Service] = {}
        for service in (*workload.ports, *canary):
            by_port.setdefault((service.port, service.protocol), service)
        services = tuple(by_port.values())
        pods.append(
            ProbePod(
                workload=workload.key,
                namespace=(namespaces or {}).get(workload.namespace, workload.namespace),
                pod_name=f"{pod_name_prefix}{workload.name}",
                labels=dict(workload.labels),
                services=services,
                node=nodes[index % len(nodes)],
                role=(roles or {}).get(workload.key, "probe"),
                service_account=workload.service_account,
                service_account_labels=workload.service_account_labels.as_dict(),
            )
        )
    return pods


def same_node_pairs(pods: Sequence[ProbePod]) -> tuple[int, int]:
    """(same-node pairs, cross-node pairs) among ordered pairs of distinct pods."""
    same = cross = 0
    for source in pods:
        for destination in pods:
            if source is destination:
                continue
            if source.node == destination.node:
                same += 1
            else:
                cross += 1
    return same, cross


def agent_configmap_name(agent_source: str, run_id: str) -> str:
    """Named by run and content: two runs sharing a namespace (kubeconfig target) never collide, and a
    changed agent never meets pods of an older one."""
    return f"cc-{run_id}-agent-{hashlib.sha256(agent_source.encode()).hexdigest()[:10]}"


def render_namespace(name: str, labels: Mapping[str, str], run_id: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {**labels, **run_labels(run_id, "namespace")}},
    }


def render_service_account(pod: ProbePod, run_id: str) -> dict[str, Any]:
    """The ServiceAccount a stranger probe runs as, with the labels policies read as `pcsa.<key>`."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": pod.service_account,
            "namespace": pod.namespace,
            "labels": {**pod.service_account_labels, **run_labels(run_id, "service-account")},
        },
        "automountServiceAccountToken": False,
    }


def render_agent_configmap(namespace: str, agent_source: str, run_id: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": agent_configmap_name(agent_source, run_id),
            "namespace": namespace,
            "labels": run_labels(run_id, "agent"),
        },
        "data": {AGENT_FILE: agent_source},
    }


def serve_command(pod: ProbePod) -> list[str]:
    # The identity is the layout's workload key, whatever the pod and namespace are called on the
    # cluster (run-id names on shared clusters): it is what the runner compares answers against.
    namespace, _, name = pod.workload.partition("/")
    identity = {"pod": name, "namespace": namespace, "node": pod.node}
    command = [
        "python3",
        f"{AGENT_MOUNT}/{AGENT_FILE}",
        "serve",
        "--identity",
        json.dumps(identity, sort_keys=True),
    ]
    dns_served = {(service.port, service.protocol) for service in pod.dns_services}
    for protocol in ("TCP", "UDP", "SCTP"):
        # A port the pod resolves DNS on is served by the DNS listener, which answers probes too (the
        # agent's `answer_dns_stream`/`dns_datagram_loop`); a second listener on it cannot bind.
        ports = sorted(
            {s.port for s in pod.services if s.protocol == protocol and (s.port, protocol) not in dns_served}
        )
        if ports:
            command += [f"--{protocol.lower()}", ",".join(str(port) for port in ports)]
    for protocol in ("UDP", "TCP"):
        ports = sorted({service.port for service in pod.dns_services if service.protocol == protocol})
        if ports:
            command += [f"--dns-{protocol.lower()}", ",".join(str(port) for port in ports)]
    if pod.dns_services:
        assert pod.dns_answer is not None, f"{pod.key}: DNS ports need an answer address"
        command += ["--dns-answer", pod.dns_answer]
    if pod.host_network:
        # Only the node's own address: a node's loopback or other interfaces may already hold these ports
        # (a local resolver on 53), and the stand-in must answer where the flows are sent. The kubelet
        # expands $(HOST_IP) from the container's environment (the downward API's status.hostIP).
        command += ["--bind", f"$({HOST_IP_ENV})"]
    return command


def _container_ports(services: Sequence[Service]) -> list[dict[str, Any]]:
    ports = []
    seen: set[tuple[int, str]] = set()
    for service in services:
        if (service.port, service.protocol) in seen:
            continue  # one entry per port and protocol (a rogue DNS port is both a canary and DNS)
        seen.add((service.port, service.protocol))
        entry: dict[str, Any] = {"containerPort": service.port, "protocol": service.protocol}
        if service.name:
            entry["name"] = service.name  # policies may match named ports (calico-semantics.md)
        ports.append(entry)
    return ports


def render_probe_pod(pod: ProbePod, *, image: str, agent_source: str, run_id: str) -> dict[str, Any]:
    """The pod manifest: the workload's labels, the agent serving its ports, never Ready by design."""
    tcp_ports = [s.port for s in (*pod.services, *pod.dns_services) if s.protocol == "TCP"]
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": serve_command(pod),
        "ports": _container_ports((*pod.services, *pod.dns_services)),
        "volumeMounts": [{"name": "agent", "mountPath": AGENT_MOUNT, "readOnly": True}],
        # An agent that exits (a port it cannot bind) says why in its status, which the readiness wait
        # reports at once (`readiness.crashed_container`): the end of its log, as the kubelet takes it
        # with this policy (kubernetes/api v0.32.2 core/v1/types.go:2667, 2903-2909).
        "terminationMessagePolicy": "FallbackToLogsOnError",
        # ICMP probes open a raw socket. Container runtimes differ in whether NET_RAW is in their default
        # set (CRI-O's has dropped it), so it is asked for explicitly. Pod Security "baseline" does not
        # allow adding it: on a namespace that enforces baseline or restricted the pods are refused at
        # creation, a visible error rather than ICMP probes that silently cannot run.
        "securityContext": {"capabilities": {"add": [NET_RAW]}},
    }
    if pod.host_network:
        container["env"] = [{"name": HOST_IP_ENV, "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}]
    if tcp_ports:
        # The kubelet's check is host -> local pod traffic, which Calico never polices (calico-install.md
        # §7.6): it proves the agent listens even under default-deny.
        container["readinessProbe"] = {"tcpSocket": {"port": tcp_ports[0]}, "periodSeconds": 2}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod.pod_name,
            "namespace": pod.namespace,
            "labels": {**pod.labels, **run_labels(run_id, pod.role)},
            "annotations": {"calico-conformance.io/workload": pod.workload},
        },
        "spec": {
            "nodeName": pod.node,
            "serviceAccountName": pod.service_account,  # policies may select by account (pcsa. labels)
            "readinessGates": [{"conditionType": NEVER_READY_GATE}],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "containers": [container],
            "volumes": [{"name": "agent", "configMap": {"name": agent_configmap_name(agent_source, run_id)}}],
            **({"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet"} if pod.host_network else {}),
        },
    }
