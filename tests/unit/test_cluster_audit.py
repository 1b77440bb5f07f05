"""Read-only audits of a live cluster turned into facts, from object shapes written here by hand.

The kubeadm `ClusterConfiguration` text is the documented kubeadm v1beta3 shape (the one kind writes);
IPPools and the Installation status follow projectcalico.org/v3 and operator.tigera.io/v1. Reading
them from a real API server is only done live.
"""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Any

import pytest

from calico_conformance.cluster.audit import (
    AuditError,
    ClusterAudit,
    KubeadmNetworking,
    describe,
    facts_from_audit,
    major_minor,
    parse_kubeadm_networking,
)

KIND_CLUSTER_CONFIGURATION = """\
apiServer:
  certSANs: [localhost, 127.0.0.1]
apiVersion: kubeadm.k8s.io/v1beta3
clusterName: germany
kind: ClusterConfiguration
kubernetesVersion: v1.31.4
networking:
  dnsDomain: cluster.local
  podSubnet: 10.245.0.0/16
  serviceSubnet: 10.97.0.0/16
"""


def pool(name: str, cidr: str, *, disabled: bool = False) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"cidr": cidr, "vxlanMode": "Always", "disabled": disabled}}


def audit(**changes: Any) -> ClusterAudit:
    base: dict[str, Any] = {
        "cluster": "germany",
        "kubeadm": parse_kubeadm_networking(KIND_CLUSTER_CONFIGURATION),
        "ip_pools": (pool("default-ipv4-ippool", "10.245.0.0/16"),),
        "installation": {"spec": {"calicoNetwork": {}}, "status": {"calicoVersion": "v3.31.7", "mtu": 1450}},
        "felix_configuration": {"spec": {"bpfEnabled": False}},
        "calico_version": "v3.31.7",
        "network_mtu": 1500,
    }
    base.update(changes)
    return ClusterAudit(**base)


def test_kubeadm_subnets_are_read_from_the_cluster_configuration() -> None:
    assert parse_kubeadm_networking(KIND_CLUSTER_CONFIGURATION) == KubeadmNetworking(
        IPv4Network("10.245.0.0/16"), IPv4Network("10.97.0.0/16")
    )


def test_dual_stack_kubeadm_subnets_take_the_ipv4_one() -> None:
    text = "networking: {podSubnet: '10.244.0.0/16,fd00:10:244::/56', serviceSubnet: 10.96.0.0/16}"
    assert parse_kubeadm_networking(text).pod_subnet == IPv4Network("10.244.0.0/16")


def test_bad_kubeadm_configuration_is_an_audit_error() -> None:
    with pytest.raises(AuditError, match=r"networking\.podSubnet '10\.244\.0\.1/16' is not a network"):
        parse_kubeadm_networking("networking: {podSubnet: 10.244.0.1/16}")
    with pytest.raises(AuditError, match="not YAML"):
        parse_kubeadm_networking("networking: [")


def test_facts_are_live_values() -> None:
    facts = facts_from_audit(audit())

    assert facts.source == "live"
    assert (facts.pod_subnet, facts.service_subnet) == (
        IPv4Network("10.245.0.0/16"),
        IPv4Network("10.97.0.0/16"),
    )
    assert facts.calico_version == "3.31"
    assert facts.network_mtu == 1500
    assert facts.installation["status"]["mtu"] == 1450


def test_without_kubeadm_the_single_enabled_pool_is_the_pod_subnet_but_services_are_unknown() -> None:
    pools = (pool("old", "192.168.0.0/16", disabled=True), pool("new", "10.99.0.0/16"))
    with pytest.raises(AuditError, match="service subnet is unknown"):
        facts_from_audit(audit(kubeadm=None, ip_pools=pools))


def test_unknowable_facts_are_errors_never_the_register() -> None:
    with pytest.raises(AuditError, match="2 enabled IPPools: the pod subnet is unknown"):
        facts_from_audit(
            audit(
                kubeadm=KubeadmNetworking(None, IPv4Network("10.97.0.0/16")),
                ip_pools=(pool("a", "10.1.0.0/16"), pool("b", "10.2.0.0/16")),
            )
        )
    with pytest.raises(AuditError, match="the Calico version is unknown"):
        facts_from_audit(audit(calico_version=None))


def test_version_and_description() -> None:
    assert major_minor("v3.27.5") == "3.27"
    assert major_minor("3.31") == "3.31"
    assert major_minor("master") is None
    text = describe(audit())
    assert "Calico v3.31.7" in text
    assert "IPPools: default-ipv4-ippool=10.245.0.0/16 vxlan=Always ipip=-" in text
    assert "FelixConfiguration: bpfEnabled=False" in text


def _pool(api_version: str, cidr: str) -> dict[str, object]:
    return {"apiVersion": api_version, "kind": "IPPool", "metadata": {"name": "default-ipv4-ippool"},
            "spec": {"cidr": cidr, "blockSize": 26}}  # fmt: skip


@pytest.mark.parametrize("release", ["v3.31.7", "v3.27.5"])
def test_without_the_calico_api_server_the_audit_reads_the_crds(release: str) -> None:
    # crd.projectcalico.org/v1 ippools, felixconfigurations and clusterinformations are in both releases'
    # CRD manifests (cluster/data/served-resources); projectcalico.org/v3 exists only with the API server.
    from tests.unit.cluster_fake_api import ServedFakeApi

    from calico_conformance.cluster.audit import read_audit

    bare = ServedFakeApi(release, calico_api_server=False)
    bare.create(_pool("crd.projectcalico.org/v1", "10.244.0.0/16"))
    audit = read_audit(bare, "finland", network_mtu=None)  # type: ignore[arg-type]
    assert [pool["spec"]["cidr"] for pool in audit.ip_pools] == ["10.244.0.0/16"]
    assert "no Calico API server: Calico objects read from crd.projectcalico.org/v1" in audit.notes
    assert ("projectcalico.org/v3", "IPPool") not in bare.asked

    served = ServedFakeApi(release)
    served.create(_pool("projectcalico.org/v3", "10.245.0.0/16"))
    audit = read_audit(served, "germany", network_mtu=None)  # type: ignore[arg-type]
    assert [pool["spec"]["cidr"] for pool in audit.ip_pools] == ["10.245.0.0/16"]
    assert audit.notes == ("no kube-system/kubeadm-config (not a kubeadm cluster)",)
