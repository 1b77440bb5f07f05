"""Installing Calico through the Tigera operator: what is applied, in which order, rendered from the register.

The runbook's install (`seeds/000_*.txt`, calico-install.md §1) made exact and repeatable:

1. the CRDs, from their own `operator-crds.yaml` where the release ships them separately (3.30+);
   server-side apply, because the bundle is too large for client-side `kubectl apply`'s annotation and
   `kubectl create` fails on a reused cluster;
2. `tigera-operator.yaml` (its Deployment image rewritten for `--registry`);
3. the `Installation` rendered from the cluster's podSubnet — pool CIDR = podSubnet (the operator
   refuses a pool outside kubeadm's podSubnet, calico-install.md §7.1), blockSize 26, VXLAN,
   natOutgoing Enabled, nodeSelector all() — and the `APIServer`, so `projectcalico.org/v3` is served.

Everything here is pure: it returns manifests and `kubectl` steps; `cluster/calico.py` runs them and
waits for the result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any, Protocol

import yaml

from calico_conformance.cluster.images import installation_registry, rewrite_image
from calico_conformance.cluster.releases import CalicoRelease, calico_network_fields, release_for

OPERATOR_API = "operator.tigera.io/v1"
FIELD_MANAGER = "calico-conformance"
BLOCK_SIZE = 26  # the runbook's and the operator's IPv4 default
ENCAPSULATION = "VXLAN"  # runbook: the Hetzner network cannot carry BGP routes, so always encapsulate
NAT_OUTGOING = "Enabled"
NODE_SELECTOR = "all()"
# The CNI plugin holds a new pod's containers until felix has programmed its policy, for at most this long:
# without it a probe may start before its interface is programmed, and felix drops everything on such an
# interface (felix rules/dispatch.go), which looks exactly like a policy deny. The field is
# `spec.calicoNetwork.linuxPolicySetupTimeoutSeconds` of the operator shipped with Calico v3.31.7
# (tigera/operator v1.40.15 api/v1/installation_types.go:644-655; rendered into the CNI config and felix's
# FELIX_ENDPOINTSTATUSPATHPREFIX by pkg/render/node.go:664-667 and 1690-1697). The operator of v3.27.5
# (v1.32.12) has no such field, so it is set only where the release's Installation schema lists it.
POLICY_SETUP_TIMEOUT_S = 60
POLICY_SETUP_FIELD = "linuxPolicySetupTimeoutSeconds"
# CRDs the Installation and APIServer need; waited for (Established) before those objects are applied.
OPERATOR_CRDS = ("installations.operator.tigera.io", "apiservers.operator.tigera.io")


class PodNetwork(Protocol):
    """What rendering needs of a cluster: `register.ClusterSpec` has it."""

    @property
    def name(self) -> str: ...

    @property
    def pod_subnet(self) -> IPv4Network | IPv6Network: ...


def render_installation(
    cluster: PodNetwork,
    *,
    mtu: int | None = None,
    calico_version: str = "3.31",
    registry: str | None = None,
) -> dict[str, Any]:
    """The operator.tigera.io/v1 `Installation` named `default` for `cluster`.

    `mtu` sets `calicoNetwork.mtu` (unset = Calico detects it: host MTU minus 50 for VXLAN);
    `registry` pulls every Calico component from a mirror. `calico_version` must be a pinned release.
    """
    release = release_for(calico_version)  # an unpinned version is refused here, before anything is rendered
    pool: dict[str, Any] = {
        "cidr": str(cluster.pod_subnet),
        "blockSize": BLOCK_SIZE,
        "encapsulation": ENCAPSULATION,
        "natOutgoing": NAT_OUTGOING,
        "nodeSelector": NODE_SELECTOR,
    }
    network: dict[str, Any] = {"ipPools": [pool]}
    if mtu is not None:
        network["mtu"] = mtu
    if POLICY_SETUP_FIELD in calico_network_fields(release.tag):
        network[POLICY_SETUP_FIELD] = POLICY_SETUP_TIMEOUT_S
    spec: dict[str, Any] = {"calicoNetwork": network}
    mirror = installation_registry(registry)
    if mirror:
        spec["registry"] = mirror
    return {"apiVersion": OPERATOR_API, "kind": "Installation", "metadata": {"name": "default"}, "spec": spec}


def render_apiserver() -> dict[str, Any]:
    """The `APIServer` named `default`: it makes the operator run the Calico API server."""
    return {"apiVersion": OPERATOR_API, "kind": "APIServer", "metadata": {"name": "default"}, "spec": {}}


@dataclass(frozen=True)
class KubectlStep:
    """One `kubectl` invocation of the install (kubeconfig and context are added by the runner)."""

    description: str
    args: tuple[str, ...]
    stdin: bytes | None = None

    def __str__(self) -> str:
        return f"{self.description}: kubectl {' '.join(self.args)}"


def server_side_apply(source: str) -> tuple[str, ...]:
    return ("apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}", "-f", source)


def install_plan(
    cluster: PodNetwork,
    manifests: Mapping[str, Path],
    *,
    calico_version: str,
    mtu: int | None = None,
    registry: str | None = None,
    crd_timeout_s: float = 120.0,
) -> list[KubectlStep]:
    """The kubectl steps that install the pinned release on `cluster`, in order.

    `manifests` maps each pinned manifest name to its verified local file (`cluster/manifest_cache.py`).
    """
    release = release_for(calico_version)
    steps: list[KubectlStep] = []
    for manifest in release.manifests:
        path = manifests[manifest.name]
        if "operator" in manifest.contains and registry:
            content = operator_manifest_for_registry(path.read_text(), release, registry)
            steps.append(
                KubectlStep(
                    f"apply {manifest.name} (operator image from {registry})",
                    server_side_apply("-"),
                    content.encode(),
                )
            )
        else:
            steps.append(KubectlStep(f"apply {manifest.name}", server_side_apply(str(path))))
    steps.append(
        KubectlStep(
            "wait for the operator CRDs",
            (
                "wait",
                "--for=condition=Established",
                f"--timeout={int(crd_timeout_s)}s",
                *(f"crd/{name}" for name in OPERATOR_CRDS),
            ),
        )
    )
    resources = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            render_installation(cluster, mtu=mtu, calico_version=calico_version, registry=registry),
            render_apiserver(),
        ],
    }
    steps.append(
        KubectlStep(
            "apply the Installation and APIServer",
            server_side_apply("-"),
            json.dumps(resources, indent=1).encode(),
        )
    )
    return steps


def operator_manifest_for_registry(text: str, release: CalicoRelease, registry: str) -> str:
    """`tigera-operator.yaml` with the operator Deployment's images pulled from `registry`.

    Only container `image` fields change; everything else is re-emitted as parsed, so what runs is the
    verified upstream manifest apart from where its one image comes from.
    """
    documents = [document for document in yaml.safe_load_all(text) if document]
    rewritten = 0
    for document in documents:
        if document.get("kind") != "Deployment":
            continue
        for container in _containers(document):
            container["image"] = rewrite_image(container["image"], registry)
            rewritten += 1
    if not rewritten:
        raise ValueError(f"{release.tag} tigera-operator.yaml has no Deployment image to point at {registry}")
    return yaml.safe_dump_all(documents, sort_keys=False)


def _containers(deployment: Mapping[str, Any]) -> Sequence[dict[str, Any]]:
    pod_spec = deployment.get("spec", {}).get("template", {}).get("spec", {})
    return [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]
