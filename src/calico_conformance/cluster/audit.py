"""Read-only audits of a live cluster: the values it really runs with, as `ClusterFacts`.

The kubeconfig target tests clusters it did not build, so it must learn their facts instead of assuming
the register's: the pod and service subnets from kubeadm's `ClusterConfiguration` (the `kubeadm-config`
ConfigMap, as the Tigera operator itself reads them), the IPPools Calico allocates from, the
Installation, the FelixConfiguration and the Calico version. Nothing here writes anything.

A fact that cannot be learned is an `AuditError`, never a silent fallback to the register: comparing
the register with itself would let the CIDR suite pass on a cluster that violates it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from typing import TYPE_CHECKING, Any

import yaml

from calico_conformance.targets.base import ClusterFacts

if TYPE_CHECKING:
    from calico_conformance.cluster.kube import KubeClient

IPNetwork = IPv4Network | IPv6Network
VERSION = re.compile(r"^v?(\d+)\.(\d+)")


class AuditError(RuntimeError):
    """A fact of a live cluster could not be determined; the message says which and why."""


@dataclass(frozen=True)
class KubeadmNetworking:
    pod_subnet: IPNetwork | None
    service_subnet: IPNetwork | None


@dataclass(frozen=True)
class ClusterAudit:
    """What was read from one live cluster."""

    cluster: str
    kubeadm: KubeadmNetworking | None  # None: no kubeadm-config (managed clusters)
    ip_pools: tuple[Mapping[str, Any], ...]
    installation: Mapping[str, Any] | None
    felix_configuration: Mapping[str, Any] | None
    calico_version: str | None  # as reported, e.g. v3.31.7
    network_mtu: int | None = None
    notes: tuple[str, ...] = field(default=())


def parse_kubeadm_networking(cluster_configuration: str) -> KubeadmNetworking:
    """podSubnet and serviceSubnet of a kubeadm ClusterConfiguration (YAML text of the ConfigMap)."""
    try:
        document = yaml.safe_load(cluster_configuration)
    except yaml.YAMLError as error:
        raise AuditError(f"kube-system/kubeadm-config ClusterConfiguration is not YAML: {error}") from None
    if not isinstance(document, dict):
        raise AuditError("kube-system/kubeadm-config ClusterConfiguration is not a mapping")
    networking = document.get("networking") or {}
    return KubeadmNetworking(
        _first_network(networking.get("podSubnet"), "podSubnet"),
        _first_network(networking.get("serviceSubnet"), "serviceSubnet"),
    )


def _first_network(value: Any, what: str) -> IPNetwork | None:
    """kubeadm allows a dual-stack list `v4,v6`; the register is IPv4, so the first entry counts."""
    if value in (None, ""):
        return None
    first = str(value).split(",")[0].strip()
    try:
        return ipaddress.ip_network(first, strict=True)
    except ValueError as error:
        raise AuditError(f"kubeadm-config networking.{what} {value!r} is not a network: {error}") from None


def pool_networks(ip_pools: Sequence[Mapping[str, Any]]) -> list[IPNetwork]:
    """The CIDRs of the enabled IPPools, in name order."""
    networks = []
    for pool in sorted(ip_pools, key=lambda p: str(p.get("metadata", {}).get("name"))):
        spec = pool.get("spec", {})
        if spec.get("disabled"):
            continue
        networks.append(ipaddress.ip_network(str(spec["cidr"]), strict=False))
    return networks


def major_minor(version: str | None) -> str | None:
    match = VERSION.match(version or "")
    return f"{int(match[1])}.{int(match[2])}" if match else None


def installation_calico_version(installation: Mapping[str, Any] | None) -> str | None:
    return ((installation or {}).get("status") or {}).get("calicoVersion")


def facts_from_audit(audit: ClusterAudit) -> ClusterFacts:
    """The live facts of a cluster; `AuditError` when subnets or the Calico version are unknowable."""
    pod_subnet = audit.kubeadm.pod_subnet if audit.kubeadm else None
    if pod_subnet is None:
        pools = pool_networks(audit.ip_pools)
        if len(pools) != 1:
            raise AuditError(
                f"{audit.cluster}: no kubeadm podSubnet, and {len(pools)} enabled IPPools: the pod subnet is unknown"
            )
        pod_subnet = pools[0]
    service_subnet = audit.kubeadm.service_subnet if audit.kubeadm else None
    if service_subnet is None:
        raise AuditError(
            f"{audit.cluster}: no kube-system/kubeadm-config serviceSubnet: the service subnet is unknown"
        )
    version = major_minor(audit.calico_version)
    if version is None:
        raise AuditError(
            f"{audit.cluster}: the Calico version is unknown (Installation status and ClusterInformation)"
        )
    return ClusterFacts(
        name=audit.cluster,
        pod_subnet=pod_subnet,
        service_subnet=service_subnet,
        calico_version=version,
        installation=dict(audit.installation or {}),
        network_mtu=audit.network_mtu,
        source="live",
    )


def describe(audit: ClusterAudit) -> str:
    """A few lines for the report and diagnostics: what the cluster really runs."""
    pools = ", ".join(
        f"{p.get('metadata', {}).get('name')}={p.get('spec', {}).get('cidr')}"
        f" vxlan={p.get('spec', {}).get('vxlanMode', '-')} ipip={p.get('spec', {}).get('ipipMode', '-')}"
        for p in audit.ip_pools
    )
    felix = (audit.felix_configuration or {}).get("spec", {})
    lines = [
        f"cluster {audit.cluster}: Calico {audit.calico_version or 'unknown'}",
        f"kubeadm podSubnet={audit.kubeadm.pod_subnet if audit.kubeadm else 'n/a'} "
        f"serviceSubnet={audit.kubeadm.service_subnet if audit.kubeadm else 'n/a'}",
        f"IPPools: {pools or 'none'}",
        f"Installation MTU: {((audit.installation or {}).get('status') or {}).get('mtu', 'unknown')}",
        f"FelixConfiguration: {', '.join(f'{k}={v}' for k, v in sorted(felix.items())) or 'defaults'}",
        *audit.notes,
    ]
    return "\n".join(lines)


CALICO_API = "projectcalico.org/v3"
CALICO_CRDS = "crd.projectcalico.org/v1"


def read_audit(kube: KubeClient, cluster: str, *, network_mtu: int | None) -> ClusterAudit:
    """Read (never write): kubeadm-config, IPPools, the Installation, FelixConfiguration, the version.

    The Calico objects are read through the Calico API server (`projectcalico.org/v3`) when the cluster
    runs one, and otherwise from the CRDs it stores them in (`crd.projectcalico.org/v1`, same kinds and
    shapes): an operator install without an APIServer, or a manifest install, still has its IPPools.
    """
    notes = []
    kubeadm_config = kube.get_named("v1", "ConfigMap", "kubeadm-config", "kube-system")
    kubeadm = None
    if kubeadm_config is not None:
        kubeadm = parse_kubeadm_networking(kubeadm_config.get("data", {}).get("ClusterConfiguration", ""))
    else:
        notes.append("no kube-system/kubeadm-config (not a kubeadm cluster)")
    installation = kube.get_named("operator.tigera.io/v1", "Installation", "default")
    calico = CALICO_API
    if "ippools" not in kube.served_resources("projectcalico.org", "v3"):
        calico = CALICO_CRDS
        notes.append(f"no Calico API server: Calico objects read from {CALICO_CRDS}")
    felix = kube.get_named(calico, "FelixConfiguration", "default")
    information = kube.get_named(calico, "ClusterInformation", "default")
    version = installation_calico_version(installation) or (information or {}).get("spec", {}).get(
        "calicoVersion"
    )
    pools = tuple(kube.list_objects(calico, "IPPool"))
    return ClusterAudit(cluster, kubeadm, pools, installation, felix, version, network_mtu, tuple(notes))
