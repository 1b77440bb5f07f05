"""One cluster stand-in, whole: API server, kubelet on two lab nodes, exec, policy programming, faults.

`standin_cluster()` builds it (as root: it needs network namespaces and nftables), seeds what a
kubeadm cluster running Calico holds before anyone tests it (two worker Nodes, the `default` and
`kube-system` namespaces, kubeadm's ClusterConfiguration with the register's subnets, the
Installation, IPPool, FelixConfiguration and ClusterInformation Calico's operator writes), writes an
ordinary kubeconfig, yields, and tears everything down however the body ends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from standin_apiserver import StandinApi, StandinHttpServer, write_kubeconfig
from standin_exec import ExecEndpoint
from standin_kubelet import Kubelet
from standin_served import ServedApi
from standin_store import Obj, ObjectStore

from calico_conformance.probe.netns_lab import VXLAN_MTU, plan_lab, run

REPO = Path(__file__).resolve().parents[2]
# The nodes' own addresses: outside every registered cluster's pod and service CIDR (kind-configs/),
# as a kind node's address is, so a hostNetwork pod (the outside echo) stands for "outside the pod
# network" to policy and to the live code's checks. They exist only inside the stand-in's namespaces.
UNDERLAY_NET = "10.250.0"
CALICO_VERSION = "v3.31.7"


@dataclass
class Faults:
    """The stand-in's fault switches; tests flip them before or during a run."""

    ignored_policies: set[str] = field(default_factory=set)  # `kind/namespace/name` never programmed
    programming_delay_s: float = 0.0  # Felix lag: policy changes take effect this long after the apply
    new_pod_programming_delay_s: float = 0.0  # > 0: a new pod sends nothing until programmed this much later
    hang_exec: bool = False  # exec upgrades are never answered
    never_ready: set[str] = field(default_factory=set)  # workload names (pod name or its `-<name>` suffix)
    vxlan_mtu: dict[str, int] = field(default_factory=dict)  # node -> lowered VXLAN MTU


@dataclass
class StandinCluster:
    context: str
    kubeconfig: Path
    api: StandinApi
    kubelet: Kubelet
    exec_endpoint: ExecEndpoint
    faults: Faults
    lab: Any
    register_cluster: str
    programmer: Any = None

    @property
    def store(self) -> ObjectStore:
        return self.api.store

    def lab_set_vxlan_mtu(self, node: str, mtu: int) -> None:
        """The fault switch for one node's VXLAN MTU, while the cluster runs."""
        self.faults.vxlan_mtu[node] = mtu
        run(["ip", "-n", self.lab.nodes[node].netns, "link", "set", "vxlan0", "mtu", str(mtu)])

    def everything(self) -> list[str]:
        """`kind namespace/name` of every namespace, pod and configmap: what a leak check lists."""
        found = []
        for plural in ("namespaces", "pods", "configmaps", "serviceaccounts"):
            for obj in self.store.items("v1", plural):
                found.append(f"{plural} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}")
        for plural in (
            "tiers",
            "networkpolicies",
            "globalnetworkpolicies",
            "networksets",
            "globalnetworksets",
        ):
            for obj in self.store.items("projectcalico.org/v3", plural):
                found.append(f"{plural} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}")
        return found


def _seed(api: StandinApi, register: dict[str, Any], nodes: list[str]) -> None:
    served = api.served

    def create(group_version: str, plural: str, namespace: str | None, body: Obj) -> None:
        resource = served.lookup(group_version, plural)
        assert resource is not None, (
            f"the stand-in seeds {group_version} {plural}, which the release does not serve"
        )
        api.create(resource, namespace, body)

    for node in nodes:
        create("v1", "nodes", None, {"metadata": {"name": node, "labels": {"kubernetes.io/hostname": node}}})
    for namespace in ("default", "kube-system"):
        create("v1", "namespaces", None, {"metadata": {"name": namespace}})
    networking = register["networking"]
    cluster_configuration = yaml.safe_dump({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration",
                                            "networking": {"podSubnet": networking["podSubnet"],
                                                           "serviceSubnet": networking["serviceSubnet"]}})  # fmt: skip
    create("v1", "configmaps", "kube-system", {"metadata": {"name": "kubeadm-config"},
                                               "data": {"ClusterConfiguration": cluster_configuration}})  # fmt: skip
    pool = networking["podSubnet"]
    create("operator.tigera.io/v1", "installations", None, {
        "metadata": {"name": "default"},
        "spec": {"calicoNetwork": {"mtu": VXLAN_MTU, "ipPools": [{
            # As the runbook installs it, after the operator's defaulting fills in the rest.
            "cidr": pool, "encapsulation": "VXLAN", "blockSize": 26, "natOutgoing": "Enabled", "nodeSelector": "all()",
        }]}},
        "status": {"calicoVersion": CALICO_VERSION, "mtu": VXLAN_MTU, "variant": "Calico"},
    })  # fmt: skip
    create("projectcalico.org/v3", "ippools", None, {"metadata": {"name": "default-ipv4-ippool"},
                                                     "spec": {"cidr": pool, "vxlanMode": "Always", "ipipMode": "Never"}})  # fmt: skip
    create("projectcalico.org/v3", "felixconfigurations", None, {"metadata": {"name": "default"}, "spec": {}})
    create("projectcalico.org/v3", "clusterinformations", None,
           {"metadata": {"name": "default"}, "spec": {"calicoVersion": CALICO_VERSION, "datastoreType": "kubernetes"}})  # fmt: skip


@contextmanager
def standin_cluster(workdir: Path, *, register_cluster: str = "finland", context: str = "standin",
                    faults: Faults | None = None, enforce: bool = True) -> Iterator[StandinCluster]:  # fmt: skip
    """Build a stand-in cluster for `register_cluster` (its subnets from kind-configs/), yield, tear down."""
    faults = faults or Faults()
    register = yaml.safe_load((REPO / "kind-configs" / f"{register_cluster}.yaml").read_text())
    lab = plan_lab([], underlay_net=UNDERLAY_NET)
    stopping = threading.Event()
    server: StandinHttpServer | None = None
    kubelet: Kubelet | None = None
    programmer = None
    try:
        lab.build()
        for node, mtu in faults.vxlan_mtu.items():
            run(["ip", "-n", lab.nodes[node].netns, "link", "set", "vxlan0", "mtu", str(mtu)])
        api = StandinApi(ServedApi.load(CALICO_VERSION), ObjectStore())
        _seed(api, register, list(lab.nodes))
        if enforce:
            from standin_policy import PolicyProgrammer

            programmer = PolicyProgrammer(api.store, lab, faults)
        kubelet = Kubelet(
            api.store, lab, workdir,
            never_ready=lambda pod: _named(pod["metadata"]["name"], faults.never_ready),
            new_pod_delay_s=lambda: faults.new_pod_programming_delay_s,
            on_network_change=programmer.pods_changed if programmer else (lambda: None),
        )  # fmt: skip
        endpoint = ExecEndpoint(
            lambda ns, name: _pid(kubelet, ns, name), stopping, hang=lambda: faults.hang_exec
        )
        api.exec_handler = endpoint
        api.log_reader = kubelet.read_log
        server = StandinHttpServer(api)
        server.start()
        kubeconfig = workdir / "kubeconfig"
        write_kubeconfig(str(kubeconfig), server.url, context)
        if programmer is not None:
            programmer.kubelet = kubelet
            programmer.start()
        kubelet.start()
        yield StandinCluster(
            context, kubeconfig, api, kubelet, endpoint, faults, lab, register_cluster, programmer
        )
    finally:
        stopping.set()
        if server is not None:
            server.stop()
        if kubelet is not None:
            kubelet.stop()
        if programmer is not None:
            programmer.stop()
        lab.teardown()


def _pid(kubelet: Kubelet, namespace: str, name: str) -> int | None:
    sandbox = kubelet.sandbox(namespace, name)
    if sandbox is None or sandbox.process is None or sandbox.process.poll() is not None:
        return None
    return sandbox.process.pid


def _named(pod: str, names: set[str]) -> bool:
    """Whether `pod` is one of `names`, also under a run-id prefix (`cc-<run>-<name>`)."""
    return any(pod == name or pod.endswith(f"-{name}") for name in names)
