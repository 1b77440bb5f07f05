"""CIDR allocation: the register's ranges never overlap, and each cluster's Installation follows it.

Overlapping pod or service ranges cause routing failures in the VPN tunnels between the clusters
(runbook, "CIDR allocation per cluster"). The register (`kind-configs/`) is the one place the ranges are
written; the Installation each cluster gets is rendered from it and must carry the runbook's IP pool
(cidr = podSubnet, blockSize 26, VXLAN, natOutgoing Enabled, nodeSelector all()) and be valid against
Calico's own CRD schema. Live targets also compare the cluster's real ranges with the register.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from calico_conformance.config import RunConfig
from calico_conformance.targets.base import ClusterFacts, Target
from calico_conformance.targets.static import NO_DATAPLANE
from calico_conformance.tenancy.register import ClusterSpec

pytestmark = [pytest.mark.conformance, pytest.mark.cidr]

# The runbook's IP pool, written out here rather than taken from the renderer under test.
RUNBOOK_POOL: Mapping[str, Any] = {
    "blockSize": 26,
    "encapsulation": "VXLAN",
    "natOutgoing": "Enabled",
    "nodeSelector": "all()",
}
CROSS_NODE_WORKERS = 2  # probes pin pods to two different workers to cross the encapsulation


def test_ranges_do_not_overlap(cluster_spec: ClusterSpec, cluster_register: tuple[ClusterSpec, ...]) -> None:
    """The cluster's pod and service ranges overlap each other and no range of another cluster."""
    mine = [("pod", cluster_spec.pod_subnet), ("service", cluster_spec.service_subnet)]
    theirs = [
        (f"{other.name} {kind}", network, other)
        for other in cluster_register
        for kind, network in (("pod", other.pod_subnet), ("service", other.service_subnet))
        if other.name != cluster_spec.name
    ]
    overlaps = []
    if cluster_spec.pod_subnet.overlaps(cluster_spec.service_subnet):
        overlaps.append(f"its own pod {cluster_spec.pod_subnet} and service {cluster_spec.service_subnet} ranges")
    for kind, network in mine:
        for label, other_network, other in theirs:
            if network.overlaps(other_network):
                overlaps.append(f"{kind} {network} overlaps {label} {other_network} ({other.config_path})")
    assert not overlaps, f"{cluster_spec.name} ({cluster_spec.config_path}): " + "; ".join(overlaps)


def test_installation_pool_follows_register(cluster_spec: ClusterSpec, cluster_facts: ClusterFacts) -> None:
    """The Installation has one IP pool: the register's podSubnet with the runbook's settings."""
    pools = cluster_facts.installation.get("spec", {}).get("calicoNetwork", {}).get("ipPools") or []
    assert len(pools) == 1, f"{cluster_spec.name}: expected one IP pool, the Installation has {len(pools)}"
    wanted = {"cidr": str(cluster_spec.pod_subnet), **RUNBOOK_POOL}
    wrong = {key: pools[0].get(key) for key, value in wanted.items() if pools[0].get(key) != value}
    assert not wrong, f"{cluster_spec.name}: IP pool differs from the register and runbook: has {wrong}, wants " + str(
        {key: wanted[key] for key in wrong}
    )


def test_installation_valid_against_calico_schema(
    cluster: str, cluster_facts: ClusterFacts, run_config: RunConfig
) -> None:
    """The rendered Installation passes the operator's CRD schema of the pinned Calico release."""
    from calico_conformance.cluster.releases import release_for
    from calico_conformance.cluster.schemas import validate_manifest

    try:
        release_for(run_config.calico_version)
    except ValueError as unpinned:
        pytest.skip(f"no vendored schema to validate against: {unpinned}")
    # A live Installation carries the operator's `status`; the vendored schemas leave `status` out on
    # purpose (the server owns it, cluster/vendor.py), so only what was rendered is validated.
    rendered = {key: value for key, value in cluster_facts.installation.items() if key != "status"}
    errors = validate_manifest(rendered, calico_version=run_config.calico_version)
    assert errors == [], f"{cluster}: the Installation is invalid:\n" + "\n".join(errors)


def test_kind_config_leaves_cni_to_calico(cluster_spec: ClusterSpec) -> None:
    """kind installs no CNI of its own, and there are workers enough to cross nodes."""
    workers = cluster_spec.nodes.count("worker")
    assert cluster_spec.disable_default_cni, (
        f"{cluster_spec.config_path}: networking.disableDefaultCNI must be true, or kindnet races Calico"
    )
    assert workers >= CROSS_NODE_WORKERS, (
        f"{cluster_spec.config_path}: {workers} worker(s); cross-node probes need {CROSS_NODE_WORKERS}"
    )


def test_cluster_ranges_match_register(
    cluster_spec: ClusterSpec, cluster_facts: ClusterFacts, target: Target
) -> None:
    """A live cluster really uses the register's pod and service ranges."""
    if not target.has_dataplane:
        pytest.skip(f"{NO_DATAPLANE}; on it the facts are the register itself")
    assert (cluster_facts.pod_subnet, cluster_facts.service_subnet) == (
        cluster_spec.pod_subnet,
        cluster_spec.service_subnet,
    ), f"{cluster_spec.name}: cluster uses {cluster_facts.pod_subnet} / {cluster_facts.service_subnet}"
