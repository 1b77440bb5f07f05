"""The diagnostics bundle of a failed live check: what a Calico engineer asks for first, in one folder.

When a live wait times out or a live matrix disagrees, the run writes `reports/diagnostics/<run-id>/
<cluster>/<label>/` with the policies and tiers in force (Calico and Kubernetes), IPPools,
FelixConfiguration, the Installation and TigeraStatus, the probe pods with the annotations Calico's CNI
wrote on them (there is no WorkloadEndpoint API object to list), the nodes, the logs of calico-node on the
nodes involved and of the probe pods — and attaches every file to the Allure report.

The plan (which file comes from which `kubectl` command) is a pure function, tested here; collecting
runs each command and never raises: a command that fails (the API server is what broke, say) leaves
its error in `errors.txt` next to what could be collected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from calico_conformance.cluster.commands import (
    CommandFailed,
    CommandResult,
    KubeAccess,
    kubectl_get_yaml,
    kubectl_logs,
    run_command,
    shell_line,
)
from calico_conformance.cluster.probe_pods import ROLE_LABEL
from calico_conformance.cluster.served import is_served

# Fully qualified resource names: right after the Calico API server starts, kubectl's discovery cache
# may still resolve `networkpolicies` to the wrong group (calico-install.md §7.10). Only what the release
# serves is asked for (`cluster/served.py`): Calico 3.27 has no tiers.
CLUSTER_STATE: Mapping[str, str] = {
    "calico-networkpolicies.yaml": "networkpolicies.projectcalico.org",
    "calico-globalnetworkpolicies.yaml": "globalnetworkpolicies.projectcalico.org",
    "calico-tiers.yaml": "tiers.projectcalico.org",
    "calico-networksets.yaml": "networksets.projectcalico.org",
    "calico-globalnetworksets.yaml": "globalnetworksets.projectcalico.org",
    "kubernetes-networkpolicies.yaml": "networkpolicies.networking.k8s.io",
    "ippools.yaml": "ippools.projectcalico.org",
    "felixconfigurations.yaml": "felixconfigurations.projectcalico.org",
    "installation.yaml": "installations.operator.tigera.io",
    "tigerastatus.yaml": "tigerastatuses.operator.tigera.io",
    "nodes.yaml": "nodes",
    "calico-system-pods.yaml": "pods",
    "probe-pods.yaml": "pods",
}
GROUP_VERSIONS = {"": "v1", "projectcalico.org": "projectcalico.org/v3", "networking.k8s.io": "networking.k8s.io/v1",
                  "operator.tigera.io": "operator.tigera.io/v1"}  # fmt: skip
# The suite's own pods (probes, control, stand-ins), with Calico's CNI annotations (readiness.CNI_POD_IP).
PROBE_PODS_SELECTOR = ROLE_LABEL
CALICO_NAMESPACE = "calico-system"
CALICO_NODE_CONTAINER = "calico-node"
DIAGNOSTICS_TIMEOUT_S = 60.0

Runner = Callable[[Sequence[str]], CommandResult]


@dataclass(frozen=True)
class Artifact:
    """One file of the bundle and the command whose output it holds."""

    name: str
    argv: tuple[str, ...]


def bundle_dir(report_dir: Path, run_id: str, cluster: str, label: str) -> Path:
    """`<report dir>/diagnostics/<run id>/<cluster>/<label>`, the label made filesystem-safe."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")[:120] or "failure"
    return report_dir / "diagnostics" / run_id / cluster / safe


def served_state(release: str) -> dict[str, str]:
    """The CLUSTER_STATE entries whose resource `release` serves (file name -> qualified resource)."""
    entries = {}
    for name, qualified in CLUSTER_STATE.items():
        plural, _, group = qualified.partition(".")
        if is_served(release, GROUP_VERSIONS[group], plural):
            entries[name] = qualified
    return entries


def diagnostics_plan(
    access: KubeAccess,
    *,
    release: str,
    calico_node_pods: Mapping[str, str],
    nodes_involved: Iterable[str],
    probe_pods: Iterable[tuple[str, str]],
) -> list[Artifact]:
    """The files of a bundle: cluster state, calico-node logs of the nodes involved, probe pod logs.

    `release` is the Calico tag (only what it serves is listed); `calico_node_pods` maps node name -> calico-node pod name; `probe_pods` are (namespace, pod).
    """
    scope = {"calico-system-pods.yaml": {"namespace": CALICO_NAMESPACE},
             "probe-pods.yaml": {"selector": PROBE_PODS_SELECTOR}}  # fmt: skip
    artifacts = [
        Artifact(name, tuple(kubectl_get_yaml(access, resource, **scope.get(name, {}))))
        for name, resource in served_state(release).items()
    ]
    for node in sorted(set(nodes_involved)):
        pod = calico_node_pods.get(node)
        if pod is not None:
            argv = kubectl_logs(access, CALICO_NAMESPACE, pod, container=CALICO_NODE_CONTAINER)
            artifacts.append(Artifact(f"calico-node-{node}.log", tuple(argv)))
    for namespace, pod in sorted(set(probe_pods)):
        artifacts.append(
            Artifact(f"probe-{namespace}-{pod}.log", tuple(kubectl_logs(access, namespace, pod)))
        )
    return artifacts


@dataclass(frozen=True)
class Bundle:
    directory: Path
    files: tuple[Path, ...]
    errors: tuple[str, ...]


def _run(argv: Sequence[str]) -> CommandResult:
    return run_command(argv, timeout_s=DIAGNOSTICS_TIMEOUT_S)


def collect(directory: Path, plan: Sequence[Artifact], *, summary: str = "", run: Runner = _run) -> Bundle:
    """Write every artifact of `plan` into `directory`; failures go to `errors.txt`. Never raises for one."""
    directory.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    errors: list[str] = []
    if summary:
        path = directory / "summary.txt"
        path.write_text(summary if summary.endswith("\n") else summary + "\n")
        files.append(path)
    for artifact in plan:
        try:
            result = run(artifact.argv)
        except CommandFailed as failure:
            errors.append(f"{artifact.name}: {failure}")
            continue
        path = directory / artifact.name
        path.write_text(result.stdout)
        files.append(path)
    commands = directory / "commands.txt"
    commands.write_text("".join(f"{a.name}: {shell_line(a.argv)}\n" for a in plan))
    files.append(commands)
    if errors:
        path = directory / "errors.txt"
        path.write_text("\n".join(errors) + "\n")
        files.append(path)
    return Bundle(directory, tuple(files), tuple(errors))


def attach_to_allure(bundle: Bundle) -> bool:
    """Attach every file of the bundle to the current Allure test, when allure-pytest is active."""
    try:
        import allure
    except ImportError:
        return False
    for path in bundle.files:
        allure.attach.file(  # type: ignore[no-untyped-call]
            str(path), name=f"diagnostics/{path.name}", attachment_type=allure.attachment_type.TEXT
        )
    return True
