"""What "ready" means for each wait of a live run, as pure functions over API objects.

Each function looks at objects as the API returns them (plain dicts) and answers with a `Progress`:
done or not, and in words what is still missing. `cluster/calico.py` fetches the objects and hands
these to `wait_for`; the tests feed them recorded object shapes, so the judgement is tested without a
cluster. The signals are the ones calico-install.md §6 lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from calico_conformance.cluster.waits import Progress, hopeless
from calico_conformance.oracle.loader_document import TIERS_SINCE

Object = Mapping[str, Any]

# projectcalico.org/v3 resources the suite creates or reads; served only once the Calico API server
# runs. `tiers` joins them from Calico 3.29 on.
CALICO_V3_RESOURCES = ("networkpolicies", "globalnetworkpolicies", "networksets", "globalnetworksets")


def condition(obj: Object | None, kind: str) -> Mapping[str, Any] | None:
    """The status condition of type `kind`, or None."""
    for entry in (obj or {}).get("status", {}).get("conditions", None) or ():
        if entry.get("type") == kind:
            return dict(entry)
    return None


def is_true(obj: Object | None, kind: str) -> bool:
    found = condition(obj, kind)
    return found is not None and str(found.get("status")) == "True"


def tigera_status_available(name: str, status: Object | None) -> Progress:
    """TigeraStatus `name` reports Available=True (the operator creates it only after the CRs exist)."""
    if status is None:
        return Progress(False, f"TigeraStatus {name} does not exist yet")
    if is_true(status, "Available") and not is_true(status, "Degraded"):
        return Progress(True, f"TigeraStatus {name} Available")
    seen = []
    for kind in ("Degraded", "Progressing", "Available"):
        found = condition(status, kind)
        if found is not None:
            message = found.get("message") or found.get("reason") or ""
            seen.append(f"{kind}={found.get('status')}" + (f" ({message})" if message else ""))
    return Progress(False, f"TigeraStatus {name}: {', '.join(seen) or 'no conditions yet'}")


def deployment_available(name: str, deployment: Object | None) -> Progress:
    if deployment is None:
        return Progress(False, f"Deployment {name} does not exist yet")
    if is_true(deployment, "Available"):
        return Progress(True, f"Deployment {name} Available")
    status = deployment.get("status", {})
    wanted = deployment.get("spec", {}).get("replicas", 1)
    return Progress(False, f"Deployment {name}: {status.get('availableReplicas', 0)}/{wanted} available")


def _node_of(pod: Object) -> str:
    return str(pod.get("spec", {}).get("nodeName") or "")


def _pod_name(pod: Object) -> str:
    metadata = pod.get("metadata", {})
    return f"{metadata.get('namespace')}/{metadata.get('name')}"


def ready_pod_on_every_node(what: str, nodes: Iterable[str], pods: Sequence[Object]) -> Progress:
    """Every node runs a Ready pod of `pods` (e.g. calico-node, whose readiness is felix's own check)."""
    ready_nodes = {_node_of(pod) for pod in pods if is_true(pod, "Ready")}
    missing = sorted(set(nodes) - ready_nodes)
    if not missing:
        return Progress(True, f"{what} Ready on every node")
    return Progress(False, f"{what} not Ready on: {', '.join(missing)}")


def api_resources_served(group_version: str, served: Iterable[str], required: Iterable[str]) -> Progress:
    """Discovery for `group_version` lists every `required` resource (plural names)."""
    missing = sorted(set(required) - set(served))
    if not missing:
        return Progress(True, f"{group_version} served")
    return Progress(False, f"{group_version} does not serve {', '.join(missing)} yet")


def calico_v3_resources(calico_minor: tuple[int, int]) -> tuple[str, ...]:
    return (*CALICO_V3_RESOURCES, "tiers") if calico_minor >= TIERS_SINCE else CALICO_V3_RESOURCES


def containers_ready(expected: Iterable[str], pods: Sequence[Object]) -> Progress:
    """Every expected pod (`namespace/name`) has its containers ready and an IP.

    Probe pods carry a readiness gate that is never set (`cluster/probe_pods.py`), so their `Ready`
    condition stays False by design; `ContainersReady` is the signal that the agent is up.
    """
    by_name = {_pod_name(pod): pod for pod in pods}
    waiting = []
    crashed = [f"{name}: {why}" for name in sorted(expected) if (why := crashed_container(by_name.get(name)))]
    if crashed:
        return hopeless("; ".join(crashed))
    for name in sorted(expected):
        pod = by_name.get(name)
        if pod is None:
            waiting.append(f"{name} (not created)")
        elif pod.get("status", {}).get("phase") in ("Failed", "Succeeded"):
            waiting.append(f"{name} ({pod['status']['phase']})")
        elif not is_true(pod, "ContainersReady") or not pod.get("status", {}).get("podIP"):
            waiting.append(f"{name} ({pod.get('status', {}).get('phase', 'unknown phase')})")
    if not waiting:
        return Progress(True, "every probe pod's agent is up")
    return Progress(False, f"not up: {', '.join(waiting)}")


def crashed_container(pod: Object | None) -> str | None:
    """Why a container of `pod` has exited (so the agent will not come up by waiting), or None.

    Read from the core/v1 ContainerStatus (kubernetes/api v0.32.2 core/v1/types.go:3082 `state`, 3087
    `lastState`, 3100 `restartCount`): a terminated `state` (restartPolicy Never), or a
    `lastState.terminated` once the kubelet restarts it (it reports `waiting: CrashLoopBackOff` between
    restarts). The agent exits only when it cannot serve (a port it cannot bind, a bad argument), which
    a restart does not change. The message is the end of its log: probe pods ask for
    `terminationMessagePolicy: FallbackToLogsOnError` (`cluster/probe_pods.py`).
    """
    for status in (pod or {}).get("status", {}).get("containerStatuses") or ():
        state, last = status.get("state") or {}, status.get("lastState") or {}
        ended = state.get("terminated") or last.get("terminated")
        if ended:
            waiting = (state.get("waiting") or {}).get("reason")
            message = " ".join(str(ended.get("message") or "").split())
            return (
                f"container {status.get('name')} exited {ended.get('exitCode')}"
                + (f" ({waiting}, restarts: {status.get('restartCount', 0)})" if waiting else "")
                + (f": {message[-400:]}" if message else "")
            )
    return None


# What Calico's CNI plugin writes on a pod once it has created the pod's endpoint (the WorkloadEndpoint
# is no API object: `projectcalico.org/v3` serves no `workloadendpoints`, apiserver/pkg/registry/
# projectcalico/rest/storage_calico.go). projectcalico/calico v3.31.7 libcalico-go/lib/backend/k8s/
# conversion/constants.go:30,33,41 (v3.27.5: 31,34,42); written by calcCNIAnnotations in
# libcalico-go/lib/backend/k8s/resources/workloadendpoint.go:132-138 (v3.27.5: 123-129) as the
# endpoint's IPNetworks ("10.244.1.5/32", comma-joined for podIPs); the CNI DEL empties podIP(s)
# (workloadendpoint.go:155-156).
CNI_POD_IP = "cni.projectcalico.org/podIP"
CNI_POD_IPS = "cni.projectcalico.org/podIPs"
CNI_CONTAINER_ID = "cni.projectcalico.org/containerID"


def cni_annotations_cover(expected: Mapping[str, str], pods: Sequence[Object]) -> Progress:
    """Calico's CNI plugin has set up every pod of `expected` (`namespace/name` -> pod IP) with that IP.

    Its annotations carry the IP it assigned and the container it networked; a pod whose annotations are
    missing, empty (torn down) or name another IP was not networked by Calico as the pod now runs.
    """
    by_name = {_pod_name(pod): pod for pod in pods}
    missing = []
    for key, ip in sorted(expected.items()):
        annotations = (by_name.get(key, {}).get("metadata", {}) or {}).get("annotations") or {}
        assigned = {str(net).split("/")[0] for net in str(annotations.get(CNI_POD_IPS, "")).split(",") if net}
        first = str(annotations.get(CNI_POD_IP, "")).split("/")[0]
        if key not in by_name:
            missing.append(f"{key} (no such pod)")
        elif not first or not annotations.get(CNI_CONTAINER_ID):
            missing.append(f"{key} (no {CNI_POD_IP} / {CNI_CONTAINER_ID} annotation: not set up by Calico's CNI)")
        elif ip != first and ip not in assigned:
            missing.append(f"{key} (Calico's CNI assigned {annotations.get(CNI_POD_IPS) or first}, the pod has {ip})")
    if not missing:
        return Progress(True, "Calico's CNI set up every probe pod")
    return Progress(False, f"waiting for: {', '.join(missing)}")


def namespaces_gone(names: Iterable[str], existing: Iterable[str]) -> Progress:
    left = sorted(set(names) & set(existing))
    return Progress(not left, f"still terminating: {', '.join(left)}" if left else "gone")
