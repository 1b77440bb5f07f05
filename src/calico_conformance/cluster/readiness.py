"""What "ready" means for each wait of a live run, as pure functions over API objects.

Each function looks at objects as the API returns them (plain dicts) and answers with a `Progress`:
done or not, and in words what is still missing. `cluster/calico.py` fetches the objects and hands
these to `wait_for`; the tests feed them recorded object shapes, so the judgement is tested without a
cluster. The signals are the ones calico-install.md §6 lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from calico_conformance.cluster.waits import Progress
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


def workload_endpoints_cover(expected: Mapping[str, str], endpoints: Sequence[Object]) -> Progress:
    """A WorkloadEndpoint exists for every pod of `expected` (`namespace/name` -> pod IP), with that IP.

    Calico programs policy for a pod once its WorkloadEndpoint exists; probing before that measures
    the CNI's start-up, not the policy.
    """
    found: dict[str, set[str]] = {}
    for endpoint in endpoints:
        spec = endpoint.get("spec", {})
        key = f"{endpoint.get('metadata', {}).get('namespace')}/{spec.get('pod')}"
        addresses = {str(net).split("/")[0] for net in spec.get("ipNetworks", ()) or ()}
        found.setdefault(key, set()).update(addresses)
    missing = []
    for key, ip in sorted(expected.items()):
        if key not in found:
            missing.append(f"{key} (no WorkloadEndpoint)")
        elif ip not in found[key]:
            missing.append(f"{key} (WorkloadEndpoint without {ip})")
    if not missing:
        return Progress(True, "a WorkloadEndpoint for every probe pod")
    return Progress(False, f"waiting for: {', '.join(missing)}")


def namespaces_gone(names: Iterable[str], existing: Iterable[str]) -> Progress:
    left = sorted(set(names) & set(existing))
    return Progress(not left, f"still terminating: {', '.join(left)}" if left else "gone")
