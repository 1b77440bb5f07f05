"""The stand-in enforces applied policies in nftables with the oracle's verdicts (by construction: see
`standin_policy`), on the source's node for egress and the destination's for ingress.

The expectations are the NetworkPolicy semantics of the Kubernetes API (a policy selecting a pod for
Ingress with no rules isolates it), stated here, not read back from the oracle.
"""

from __future__ import annotations

from pathlib import Path

from standin_cluster import StandinCluster
from tenacity import Retrying, stop_after_delay, wait_fixed
from test_standin_pods import deploy_two

from calico_conformance.cluster.inventory import ObjectRef
from calico_conformance.probe.jobs import connect_job
from calico_conformance.probe.kube_executor import KubeExecutor, stream_exec

DENY_B = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "isolate-b", "namespace": "tenant"},
    "spec": {"podSelector": {"matchLabels": {"app": "b"}}, "policyTypes": ["Ingress"]},
}


def test_an_applied_policy_is_enforced_and_its_removal_too(
    standin_cluster: StandinCluster, tmp_path: Path
) -> None:
    kube, pods = deploy_two(standin_cluster, tmp_path)
    b_ip = next(p["status"]["podIP"] for p in pods if p["metadata"]["name"] == "b")  # type: ignore[index]
    executor = KubeExecutor(stream_exec(kube.core))

    def verdict() -> str:
        [result] = executor.run_batch(
            "tenant/a", [connect_job("j", b_ip, 8080, "TCP", timeout_s=0.5)], deadline_s=20
        )
        return str(result["verdict"])

    assert verdict() == "allowed"
    kube.create(DENY_B)
    for attempt in Retrying(stop=stop_after_delay(20), wait=wait_fixed(0.2), reraise=True):
        with attempt:
            assert verdict() == "dropped"
    kube.delete(ObjectRef("networking.k8s.io/v1", "NetworkPolicy", "isolate-b", "tenant"))
    for attempt in Retrying(stop=stop_after_delay(20), wait=wait_fixed(0.2), reraise=True):
        with attempt:
            assert verdict() == "allowed"
    assert standin_cluster.programmer.errors == []


def test_with_the_new_pod_fault_an_unprogrammed_pod_can_neither_send_nor_be_reached(
    standin_cluster: StandinCluster, tmp_path: Path
) -> None:
    standin_cluster.faults.new_pod_programming_delay_s = 3600.0  # never programmed during the test
    kube, pods = deploy_two(standin_cluster, tmp_path)
    b_ip = next(p["status"]["podIP"] for p in pods if p["metadata"]["name"] == "b")  # type: ignore[index]
    executor = KubeExecutor(stream_exec(kube.core))
    [result] = executor.run_batch(
        "tenant/a", [connect_job("j", b_ip, 8080, "TCP", timeout_s=0.5)], deadline_s=20
    )
    assert result["verdict"] == "dropped"  # no policy at all: only the unprogrammed interface drops it
