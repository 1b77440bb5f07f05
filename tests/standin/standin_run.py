"""Running the user-facing suites against a stand-in cluster: provisioning it as an operator would,
and the `pytest suites --target=kubeconfig` command line `make nightly` uses.

Provisioning is what the kubeconfig target expects of an existing cluster: the layout's namespaces
with their labels, and the reference policy set applied with `kubectl apply --server-side` (the
target tests the cluster's own policies; it never applies them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from standin_cluster import REPO, StandinCluster

from calico_conformance.cluster.deploy import read_policy_manifests
from calico_conformance.tenancy.layout import load_layout

KUBECTL_TIMEOUT_S = 60
SUITES_TIMEOUT_S = 1500  # the whole run, bounded; the goal is far below (benchmarks/bench_standin.py)


def provision(cluster: StandinCluster, policies: Path = REPO / "policies" / "reference") -> None:
    """The layout's namespaces (labelled) and the policy set, as the cluster's operator applies them."""
    layout = load_layout(REPO / "policies" / "tenancy.yaml")
    outsider = layout.outsider.name if layout.outsider else None
    manifests: list[dict[str, object]] = []
    for namespace in layout.all_namespaces:
        if namespace.name == outsider:
            continue  # the target makes its own run-id namespace for it
        labels = {k: v for k, v in namespace.labels.items() if k != "kubernetes.io/metadata.name"}
        manifests.append(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace.name, "labels": labels}}
        )
    manifests.extend(read_policy_manifests([policies]))
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    for (
        manifest
    ) in manifests:  # one by one: tiers before their policies, as read_policy_manifests orders them
        # --validate=false: the stand-in serves no OpenAPI documents, which strict validation downloads.
        applied = subprocess.run(
            ["kubectl", "apply", "--server-side", "--validate=false", "--field-manager=operator", "-f", "-"],
            input=json.dumps(manifest), env=env, capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_S, check=False,
        )  # fmt: skip
        if applied.returncode != 0:
            raise RuntimeError(
                f"provisioning the stand-in: kubectl apply {manifest.get('kind')}: {applied.stderr}"
            )


def suites_command(cluster: StandinCluster, reports: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "pytest", str(REPO / "suites"), "-q", "-p", "no:cacheprovider",
        "--target=kubeconfig", f"--context={cluster.register_cluster}={cluster.context}",
        f"--clusters={cluster.register_cluster}", "--probe-existing-namespaces", "--allow-cluster-scoped",
        f"--report-dir={reports}", f"--junitxml={reports / 'junit.xml'}", f"--alluredir={reports / 'allure-results'}",
        *extra,
    ]  # fmt: skip


def suites_env(cluster: StandinCluster) -> dict[str, str]:
    """The environment of a suites run: the stand-in's kubeconfig, this checkout's code, and the
    stand-in helpers importable (for `-p standin_timeouts`)."""
    path = os.pathsep.join([str(REPO / "src"), str(Path(__file__).resolve().parent)])
    return {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "PYTHONPATH": path}


def run_suites(
    cluster: StandinCluster, reports: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the suites against `cluster`, waiting at most SUITES_TIMEOUT_S."""
    env = {**suites_env(cluster), **(env or {})}
    return subprocess.run(
        suites_command(cluster, reports, *extra), cwd=REPO, env=env, capture_output=True, text=True,
        timeout=SUITES_TIMEOUT_S, check=False,
    )  # fmt: skip
