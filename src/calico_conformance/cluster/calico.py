"""Running the Calico install on a live cluster and waiting until Calico really works there.

`install.install_plan` says what to apply; this module applies it with kubectl and then waits, each
wait bounded by its own field of `Timeouts`, for the signals of calico-install.md §6: the operator
Deployment available, TigeraStatus `calico` and `apiserver` Available, a Ready calico-node on every
node, and `projectcalico.org/v3` served (so tiers and Calico policies can be created). A wait that
times out raises `WaitTimeout` saying what it saw last; the caller attaches the diagnostics bundle.
Exercised by live runs only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from calico_conformance.cluster.commands import KubeAccess, kubectl, run_command
from calico_conformance.cluster.install import PodNetwork, install_plan
from calico_conformance.cluster.kube import TRANSIENT_ERRORS, KubeClient
from calico_conformance.cluster.readiness import (
    api_resources_served,
    calico_v3_resources,
    deployment_available,
    ready_pod_on_every_node,
    tigera_status_available,
)
from calico_conformance.cluster.releases import release_for
from calico_conformance.cluster.waits import Progress, Timeouts, progress, timed, wait_for

Log = Callable[[str], None]


def install_calico(
    access: KubeAccess,
    kube: KubeClient,
    cluster: PodNetwork,
    manifests: dict[str, Path],
    *,
    calico_version: str,
    timeouts: Timeouts,
    mtu: int | None = None,
    registry: str | None = None,
    log: Log = progress,
) -> None:
    """Apply the pinned release to `cluster` and return once Calico is ready there."""
    with timed(f"{cluster.name}: installing Calico {release_for(calico_version).tag}", log=log):
        _install(access, kube, cluster, manifests, calico_version=calico_version, timeouts=timeouts, mtu=mtu,
                 registry=registry, log=log)  # fmt: skip


def _install(
    access: KubeAccess,
    kube: KubeClient,
    cluster: PodNetwork,
    manifests: dict[str, Path],
    *,
    calico_version: str,
    timeouts: Timeouts,
    mtu: int | None,
    registry: str | None,
    log: Log,
) -> None:
    steps = install_plan(
        cluster,
        manifests,
        calico_version=calico_version,
        mtu=mtu,
        registry=registry,
        crd_timeout_s=timeouts.crds_established_s,
    )
    for step in steps:
        with timed(f"{cluster.name}: {step.description}", log=log):
            run_command(kubectl(access, *step.args), timeout_s=timeouts.kubectl_s, stdin=step.stdin)
    wait_for_calico(
        kube,
        calico_version=calico_version,
        timeouts=timeouts,
        log=lambda text: log(f"{cluster.name}: {text}"),
    )


def wait_for_calico(
    kube: KubeClient, *, calico_version: str, timeouts: Timeouts, log: Log = progress
) -> None:
    """Return when Calico is ready on every node and its API is served; `WaitTimeout` otherwise."""
    release = release_for(calico_version)
    interval = timeouts.poll_interval_s

    def operator() -> Progress:
        deployment = kube.get_named("apps/v1", "Deployment", "tigera-operator", "tigera-operator")
        return deployment_available("tigera-operator/tigera-operator", deployment)

    wait_for(
        "the tigera-operator Deployment",
        operator,
        timeout_s=timeouts.operator_ready_s,
        interval_s=interval,
        retry_on=TRANSIENT_ERRORS,
        log=log,
    )
    for name in ("calico", "apiserver"):
        wait_for(
            f"TigeraStatus {name} Available",
            lambda name=name: tigera_status_available(  # type: ignore[misc]
                name, kube.get_named("operator.tigera.io/v1", "TigeraStatus", name)
            ),
            timeout_s=timeouts.tigera_status_s,
            interval_s=interval,
            retry_on=TRANSIENT_ERRORS,
            log=log,
        )

    def calico_nodes() -> Progress:
        nodes = [node["metadata"]["name"] for node in kube.nodes()]
        return ready_pod_on_every_node(
            "calico-node", nodes, kube.pods("calico-system", "k8s-app=calico-node")
        )

    wait_for(
        "a Ready calico-node on every node",
        calico_nodes,
        timeout_s=timeouts.calico_node_ready_s,
        interval_s=interval,
        retry_on=TRANSIENT_ERRORS,
        log=log,
    )

    required = calico_v3_resources(release.minor)

    def calico_api() -> Progress:
        return api_resources_served(
            "projectcalico.org/v3", kube.served_resources("projectcalico.org", "v3"), required
        )

    wait_for(
        "projectcalico.org/v3 to be served",
        calico_api,
        timeout_s=timeouts.calico_api_s,
        interval_s=interval,
        retry_on=TRANSIENT_ERRORS,
        log=log,
    )
