"""Pods of the cluster stand-in are network namespaces whose container really runs, and exec into them
speaks the client's real channel protocol.

Expected values: the probe pod manifests are the live code's own (`cluster/probe_pods.py`); the
annotations are Calico's CNI plugin's (constants.go, cited in `standin_kubelet`); what the agent
reports is compared with the layout's identity and the address the API server returned, never with
itself.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from standin_cluster import StandinCluster
from tenacity import Retrying, stop_after_delay, wait_fixed

from calico_conformance.cluster.deploy import start_probe_pods
from calico_conformance.cluster.inventory import ObjectRef
from calico_conformance.cluster.kube import KubeClient
from calico_conformance.cluster.probe_pods import (
    plan_probe_pods,
    render_agent_configmap,
    render_namespace,
    render_probe_pod,
)
from calico_conformance.cluster.readiness import containers_ready, is_true
from calico_conformance.cluster.waits import Timeouts, WaitHopeless
from calico_conformance.oracle.model import Labels
from calico_conformance.probe.jobs import connect_job
from calico_conformance.probe.kube_executor import KubeExecutor, stream_exec
from calico_conformance.tenancy.layout import Service, Workload

RELEASE = "v3.31.7"  # the stand-in serves what this pinned release serves
AGENT = Path(__file__).resolve().parents[2] / "src" / "calico_conformance" / "probe" / "agent.py"
RUN = "t1"
WAIT_S = 30


def deploy_two(cluster: StandinCluster, tmp_path: Path) -> tuple[KubeClient, list[dict[str, object]]]:
    kube = KubeClient(
        cluster.kubeconfig, cluster.context, discovery_cache=tmp_path / "discovery.json", release=RELEASE
    )
    agent = AGENT.read_text()
    kube.create(render_namespace("tenant", {}, RUN))
    kube.create(render_agent_configmap("tenant", agent, RUN))
    workloads = [
        Workload("tenant", name, Labels.of({"app": name}), (Service(8080, "TCP", "http"),))
        for name in ("a", "b")
    ]
    for pod in plan_probe_pods(workloads, ["node1", "node2"]):
        kube.create(render_probe_pod(pod, image="unused", agent_source=agent, run_id=RUN))
    for attempt in Retrying(stop=stop_after_delay(WAIT_S), wait=wait_fixed(0.2), reraise=True):
        with attempt:
            pods = kube.pods("tenant")
            assert containers_ready(["tenant/a", "tenant/b"], pods).done, pods
    return kube, pods


def test_a_pod_gets_an_address_the_cni_annotations_and_stays_unready_behind_its_gate(
    standin_cluster: StandinCluster, tmp_path: Path
) -> None:
    _, pods = deploy_two(standin_cluster, tmp_path)
    for pod in pods:
        ip = pod["status"]["podIP"]  # type: ignore[index]
        annotations = pod["metadata"]["annotations"]  # type: ignore[index]
        assert ip.startswith("10.244.")
        assert annotations["cni.projectcalico.org/podIP"] == f"{ip}/32"
        assert annotations["cni.projectcalico.org/podIPs"] == f"{ip}/32"
        assert len(annotations["cni.projectcalico.org/containerID"]) == 64
        assert is_true(pod, "ContainersReady")
        assert not is_true(pod, "Ready")  # the readiness gate nothing sets


def test_exec_runs_the_agent_in_the_source_pod_across_nodes(
    standin_cluster: StandinCluster, tmp_path: Path
) -> None:
    kube, pods = deploy_two(standin_cluster, tmp_path)
    by_name = {p["metadata"]["name"]: p for p in pods}  # type: ignore[index]
    executor = KubeExecutor(stream_exec(kube.core))
    b_ip = by_name["b"]["status"]["podIP"]  # type: ignore[index]
    [result] = executor.run_batch(
        "tenant/a", [connect_job("j", b_ip, 8080, "TCP", timeout_s=1)], deadline_s=20
    )
    assert result["verdict"] == "allowed"
    assert result["identity"] == {"namespace": "tenant", "pod": "b", "node": "node2"}


def test_deleting_the_namespace_removes_its_pods_and_their_network_namespaces(
    standin_cluster: StandinCluster, tmp_path: Path
) -> None:
    kube, _ = deploy_two(standin_cluster, tmp_path)
    netns = {s.netns for s in standin_cluster.kubelet.sandboxes.values()}
    kube.delete(ObjectRef("v1", "Namespace", "tenant", None))
    for attempt in Retrying(stop=stop_after_delay(WAIT_S), wait=wait_fixed(0.2), reraise=True):
        with attempt:
            assert kube.get_named("v1", "Namespace", "tenant") is None
    left = set(
        subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout.split()
    )
    assert not netns & left
    assert [e for e in standin_cluster.everything() if "tenant" in e] == []


def test_a_probe_pod_whose_agent_exits_fails_the_deploy_at_once_with_the_agents_words(
    standin_cluster: StandinCluster, tmp_path: Path
) -> None:
    """The live deploy (`start_probe_pods`) against a pod whose agent exits at once (its ConfigMap holds an agent that
    refuses to serve, as one does that cannot bind its ports): the wait
        ends within seconds, not after `probe_pods_ready_s`, and says what the agent said (its log's end,
        carried by the kubelet as the termination message under FallbackToLogsOnError)."""
    kube = KubeClient(
        standin_cluster.kubeconfig,
        standin_cluster.context,
        discovery_cache=tmp_path / "d.json",
        release=RELEASE,
    )
    kube.create(render_namespace("tenant", {}, RUN))
    workload = Workload("tenant", "broken", Labels.of({"app": "broken"}), (Service(8080, "TCP"),))
    [planned] = plan_probe_pods([workload], ["node1"])
    broken_agent = "import sys\nsys.exit('agent.py serve: cannot listen: broken on purpose')\n"
    started = time.monotonic()
    with pytest.raises(WaitHopeless) as raised:
        start_probe_pods(
            kube, [planned], image="unused", agent_source=broken_agent, run_id=RUN, timeouts=Timeouts()
        )
    took = time.monotonic() - started
    assert took < 20, f"{took:.0f}s: the wait polled on instead of giving up"
    assert "tenant/broken: container agent exited 1 (CrashLoopBackOff" in str(raised.value)
    assert str(raised.value).endswith("agent.py serve: cannot listen: broken on purpose")  # its own words
