"""The readiness judgements of the live waits, over object shapes as the API returns them.

The objects below are written by hand in the documented shapes (TigeraStatus conditions from
operator `api/v1/tigerastatus_types.go`, pod conditions, Calico's CNI pod annotations
as libcalico-go writes them); they test the judgement, not a cluster.
"""

from __future__ import annotations

from typing import Any

from calico_conformance.cluster.readiness import (
    CNI_CONTAINER_ID,
    CNI_POD_IP,
    CNI_POD_IPS,
    api_resources_served,
    calico_v3_resources,
    cni_annotations_cover,
    containers_ready,
    deployment_available,
    namespaces_gone,
    ready_pod_on_every_node,
    tigera_status_available,
)


def status(**conditions: tuple[str, str]) -> dict[str, Any]:
    return {
        "status": {
            "conditions": [
                {"type": kind, "status": value, "message": message}
                for kind, (value, message) in conditions.items()
            ]
        }
    }


def pod(
    namespace: str, name: str, node: str, *, ready: bool = False, containers: bool = False, ip: str = ""
) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"nodeName": node},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [
                {"type": "Ready", "status": str(ready)},
                {"type": "ContainersReady", "status": str(containers)},
            ],
        },
    }


def test_tigera_status_absent_is_not_ready_and_says_so() -> None:
    progress = tigera_status_available("calico", None)
    assert not progress.done
    assert "does not exist yet" in progress.detail


def test_tigera_status_available_is_ready() -> None:
    assert tigera_status_available("apiserver", status(Available=("True", ""), Degraded=("False", ""))).done


def test_tigera_status_degraded_is_not_ready_and_carries_the_operator_message() -> None:
    degraded = status(
        Available=("False", ""),
        Degraded=(
            "True",
            "IPPool 192.168.0.0/16 is not within the platform's configured pod network CIDR(s)",
        ),
    )

    progress = tigera_status_available("calico", degraded)

    assert not progress.done
    assert "Degraded=True (IPPool 192.168.0.0/16 is not within" in progress.detail


def test_available_but_degraded_is_not_ready() -> None:
    assert not tigera_status_available("calico", status(Available=("True", ""), Degraded=("True", "x"))).done


def test_deployment_available() -> None:
    assert deployment_available("tigera-operator", status(Available=("True", ""))).done
    waiting = deployment_available("tigera-operator", {"spec": {"replicas": 1}, "status": {}})
    assert not waiting.done
    assert "0/1 available" in waiting.detail


def test_calico_node_must_be_ready_on_every_node() -> None:
    nodes = ["cp", "w1", "w2"]
    pods = [
        pod("calico-system", "calico-node-a", "cp", ready=True),
        pod("calico-system", "calico-node-b", "w1", ready=True),
        pod("calico-system", "calico-node-c", "w2", ready=False),
    ]

    progress = ready_pod_on_every_node("calico-node", nodes, pods)

    assert not progress.done
    assert progress.detail == "calico-node not Ready on: w2"
    pods[2] = pod("calico-system", "calico-node-c", "w2", ready=True)
    assert ready_pod_on_every_node("calico-node", nodes, pods).done


def test_a_node_without_any_calico_node_pod_is_named() -> None:
    progress = ready_pod_on_every_node(
        "calico-node", ["w1", "w9"], [pod("calico-system", "n", "w1", ready=True)]
    )
    assert progress.detail == "calico-node not Ready on: w9"


def test_calico_api_needs_every_resource_and_tiers_from_329() -> None:
    assert "tiers" not in calico_v3_resources((3, 27))
    assert "tiers" in calico_v3_resources((3, 31))
    required = calico_v3_resources((3, 31))

    partial = api_resources_served(
        "projectcalico.org/v3", ["networkpolicies", "globalnetworkpolicies"], required
    )
    assert not partial.done
    assert "globalnetworksets" in partial.detail
    assert "tiers" in partial.detail
    assert api_resources_served("projectcalico.org/v3", [*required, "ippools"], required).done


def test_probe_pods_are_up_when_containers_are_ready_even_though_never_ready() -> None:
    # The never-set readiness gate keeps Ready False for ever; ContainersReady and an IP are the signal.
    pods = [pod("x", "a", "w1", ready=False, containers=True, ip="10.244.1.2")]
    assert containers_ready(["x/a"], pods).done


def test_probe_pods_missing_failed_or_without_ip_are_listed() -> None:
    failed = pod("x", "b", "w1", containers=False)
    failed["status"]["phase"] = "Failed"
    pods = [pod("x", "a", "w1", containers=True, ip=""), failed]

    progress = containers_ready(["x/a", "x/b", "x/c"], pods)

    assert not progress.done
    assert progress.detail == "not up: x/a (Running), x/b (Failed), x/c (not created)"


def test_a_crashing_agent_makes_the_wait_hopeless_at_once_with_its_exit_and_last_log_lines() -> None:
    # The kubelet's report of a restartPolicy Always container between two restarts (core/v1
    # ContainerStatus: waiting CrashLoopBackOff, lastState.terminated; FallbackToLogsOnError's message).
    crashing = pod("x", "rogue", "w1", containers=False, ip="10.244.1.9")
    crashing["status"]["containerStatuses"] = [{
        "name": "agent", "ready": False, "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 2, "reason": "Error",
                                     "message": "usage: agent.py ...\nagent.py serve: cannot listen: 53/tcp"}},
    }]  # fmt: skip
    pods = [pod("x", "a", "w1", containers=True, ip="10.244.1.2"), crashing]

    progress = containers_ready(["x/a", "x/rogue"], pods)

    assert (progress.done, progress.hopeless) == (False, True)
    assert progress.detail == (
        "x/rogue: container agent exited 2 (CrashLoopBackOff, restarts: 3): "
        "usage: agent.py ... agent.py serve: cannot listen: 53/tcp"
    )


def test_a_running_container_that_never_exited_is_not_hopeless() -> None:
    starting = pod("x", "a", "w1", containers=False, ip="10.244.1.2")
    starting["status"]["containerStatuses"] = [{"name": "agent", "restartCount": 0, "state": {"running": {}}}]
    progress = containers_ready(["x/a"], [starting])
    assert (progress.done, progress.hopeless) == (False, False)


def annotated(namespace: str, name: str, ip: str, annotations: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name, "annotations": annotations},
            "status": {"podIP": ip}}  # fmt: skip


def cni(*ips: str, container: str = "abcde12345") -> dict[str, str]:
    """The annotations Calico's CNI plugin writes, in the shape of projectcalico/calico v3.31.7
    libcalico-go/lib/backend/k8s/resources/workloadendpoint_test.go:147-149 (IPNetworks, comma-joined)."""
    return {
        "cni.projectcalico.org/podIP": f"{ips[0]}/32" if ips else "",
        "cni.projectcalico.org/podIPs": ",".join(f"{ip}/32" for ip in ips),
        "cni.projectcalico.org/containerID": container,
    }


def test_every_probe_pod_needs_calicos_cni_annotations_with_its_ip() -> None:
    expected = {"x/a": "10.244.1.2", "x/b": "10.244.2.3", "y/a": "10.244.1.4", "y/b": "10.244.1.5"}
    pods = [
        annotated("x", "a", "10.244.1.2", cni("10.244.1.2")),
        annotated("x", "b", "10.244.2.3", cni("10.244.9.9")),  # another IP: not this pod as it runs
        annotated("y", "a", "10.244.1.4", {}),  # another CNI, or Calico's has not patched it yet
        annotated("y", "b", "10.244.1.5", cni()),  # the CNI DEL empties podIP(s): torn down
    ]

    progress = cni_annotations_cover(expected, pods)

    assert not progress.done
    assert progress.detail == (
        "waiting for: x/b (Calico's CNI assigned 10.244.9.9/32, the pod has 10.244.2.3), "
        "y/a (no cni.projectcalico.org/podIP / cni.projectcalico.org/containerID annotation: not set up by "
        "Calico's CNI), y/b (no cni.projectcalico.org/podIP / cni.projectcalico.org/containerID annotation: "
        "not set up by Calico's CNI)"
    )
    pods = [annotated("x", "a", "10.244.1.2", cni("10.244.1.2")),
            annotated("x", "b", "10.244.2.3", cni("10.244.2.3")),
            annotated("y", "a", "10.244.1.4", cni("10.244.1.4")),
            annotated("y", "b", "10.244.1.5", cni("10.244.1.5"))]  # fmt: skip
    assert cni_annotations_cover(expected, pods).done


def test_the_annotation_names_are_calicos_own() -> None:
    # projectcalico/calico v3.31.7 libcalico-go/lib/backend/k8s/conversion/constants.go:30,33,41
    # (identical in v3.27.5 at 31,34,42).
    assert (CNI_POD_IP, CNI_POD_IPS, CNI_CONTAINER_ID) == (
        "cni.projectcalico.org/podIP", "cni.projectcalico.org/podIPs", "cni.projectcalico.org/containerID"
    )  # fmt: skip


def test_namespaces_gone() -> None:
    assert namespaces_gone(["cc-1-x"], ["default", "kube-system"]).done
    left = namespaces_gone(["cc-1-x", "cc-1-y"], ["cc-1-y"])
    assert not left.done
    assert left.detail == "still terminating: cc-1-y"
