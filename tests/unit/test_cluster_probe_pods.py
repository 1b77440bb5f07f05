"""Probe pod specs: the never-set readiness gate on every pod, the agent from a ConfigMap, the ports
served, same-node and cross-node pairs, images from a mirror — over the real tenancy layout.

Whether the kubelet keeps such a pod out of Service endpoints is Kubernetes' documented behaviour for
readiness gates; it is not observed here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from tests.unit.cluster_fake_api import ServedFakeApi

from calico_conformance.cluster.deploy import provide_service_accounts
from calico_conformance.cluster.images import NETSHOOT_IMAGE, rewrite_image
from calico_conformance.cluster.probe_pods import (
    AGENT_FILE,
    NEVER_READY_GATE,
    RUN_LABEL,
    ProbePod,
    agent_configmap_name,
    plan_probe_pods,
    render_agent_configmap,
    render_namespace,
    render_probe_pod,
    render_service_account,
    same_node_pairs,
    serve_command,
)
from calico_conformance.cluster.stand_ins import stand_in_pods
from calico_conformance.oracle.model import Labels
from calico_conformance.tenancy.layout import Service, TenancyLayout, Workload, load_layout

REPO = Path(__file__).resolve().parents[2]
AGENT = (REPO / "src" / "calico_conformance" / "probe" / "agent.py").read_text()
NODES = ("finland-worker", "finland-worker2")


@pytest.fixture(scope="module")
def layout() -> TenancyLayout:
    return load_layout(REPO / "policies" / "tenancy.yaml")


def rendered(layout: TenancyLayout, image: str = NETSHOOT_IMAGE) -> list[dict]:  # type: ignore[type-arg]
    pods = plan_probe_pods(layout.workloads, NODES, canary=layout.canary_services)
    return [render_probe_pod(pod, image=image, agent_source=AGENT, run_id="r1") for pod in pods]


def test_every_probe_pod_carries_the_never_set_readiness_gate(layout: TenancyLayout) -> None:
    specs = rendered(layout)
    stand_ins = stand_in_pods(layout, "cc-r1-control", NODES, outside_echo=True)
    specs += [render_probe_pod(pod, image=NETSHOOT_IMAGE, agent_source=AGENT, run_id="r1") for pod in stand_ins]

    assert len(specs) == len(layout.workloads) + 1 + len(NODES)  # + the rogue DNS pod, an echo per node
    for spec in specs:
        assert spec["spec"]["readinessGates"] == [{"conditionType": NEVER_READY_GATE}], spec["metadata"][
            "name"
        ]


def test_the_kube_dns_stand_in_has_the_kube_dns_label_and_still_the_gate(layout: TenancyLayout) -> None:
    # The reason for the gate: this pod matches the kube-dns Service's selector.
    (stand_in,) = [
        s
        for s in rendered(layout)
        if s["metadata"]["namespace"] == "kube-system" and s["metadata"]["name"] == "kube-dns"
    ]
    assert stand_in["metadata"]["labels"]["k8s-app"] == "kube-dns"
    assert stand_in["spec"]["readinessGates"] == [{"conditionType": NEVER_READY_GATE}]


def test_pods_have_the_workload_labels_and_the_run_labels(layout: TenancyLayout) -> None:
    ledger = next(s for s in rendered(layout) if s["metadata"]["name"] == "ledger")

    assert ledger["metadata"]["namespace"] == "royal-bank"
    assert ledger["metadata"]["labels"]["app"] == "ledger"
    assert ledger["metadata"]["labels"][RUN_LABEL] == "r1"
    assert ledger["metadata"]["annotations"]["calico-conformance.io/workload"] == "royal-bank/ledger"


def test_the_agent_serves_the_workload_ports_and_the_canary_ports(layout: TenancyLayout) -> None:
    collector = next(s for s in rendered(layout) if s["metadata"]["name"] == "log-collector")
    container = collector["spec"]["containers"][0]

    command = container["command"]
    assert command[:3] == ["python3", f"/opt/calico-conformance/{AGENT_FILE}", "serve"]
    assert command[command.index("--tcp") + 1] == "5044,9200,9999"  # beats, admin, canary
    assert command[command.index("--udp") + 1] == "9999"
    identity = json.loads(command[command.index("--identity") + 1])
    assert identity == {
        "pod": "log-collector",
        "namespace": "platform",
        "node": collector["spec"]["nodeName"],
    }
    assert {"containerPort": 5044, "protocol": "TCP", "name": "beats"} in container["ports"]
    assert {"containerPort": 9999, "protocol": "UDP"} in container["ports"]


def test_the_agent_comes_from_the_configmap_named_by_its_content(layout: TenancyLayout) -> None:
    spec = rendered(layout)[0]
    configmap = render_agent_configmap("royal-bank", AGENT, "r1")

    assert spec["spec"]["volumes"] == [
        {"name": "agent", "configMap": {"name": configmap["metadata"]["name"]}}
    ]
    assert configmap["data"] == {AGENT_FILE: AGENT}
    assert agent_configmap_name(AGENT, "r1") != agent_configmap_name(AGENT + "# changed\n", "r1")


def test_two_runs_never_share_an_agent_configmap() -> None:
    # Two concurrent kubeconfig runs probing the same existing namespace would otherwise write, and delete,
    # one ConfigMap between them (issue 9, item 10).
    assert agent_configmap_name(AGENT, "r1") != agent_configmap_name(AGENT, "r2")
    assert agent_configmap_name(AGENT, "r1").startswith("cc-r1-agent-")
    assert render_agent_configmap("x", AGENT, "r2")["metadata"]["name"] == agent_configmap_name(AGENT, "r2")


def test_probe_pods_ask_for_net_raw_and_pass_the_pod_schema(layout: TenancyLayout) -> None:
    from calico_conformance.cluster.schemas import validate_manifest

    for spec in rendered(layout):
        (container,) = spec["spec"]["containers"]
        assert container["securityContext"] == {"capabilities": {"add": ["NET_RAW"]}}
        assert validate_manifest(spec) == []


def test_pods_spread_over_nodes_so_the_matrix_has_same_and_cross_node_pairs(layout: TenancyLayout) -> None:
    pods = plan_probe_pods(layout.workloads, NODES, canary=layout.canary_services)

    assert {pod.node for pod in pods} == set(NODES)
    same, cross = same_node_pairs(pods)
    assert same > 0
    assert cross > 0
    assert [pod.node for pod in pods[:4]] == [NODES[0], NODES[1], NODES[1], NODES[0]]  # each namespace shifts


def _flow_kind(layout: TenancyLayout, source: ProbePod, destination: ProbePod) -> tuple[str, str, str]:
    """(source, destination, relation): sentinel / workload / outsider, and same or other namespace."""

    def category(pod: ProbePod) -> str:
        namespace, name = pod.workload.split("/")
        if layout.outsider is not None and namespace == layout.outsider.name:
            return "outsider"
        sentinel = layout.all_namespaces[0].workloads[0].name  # the layout puts the sentinel first
        return "sentinel" if name == sentinel else "workload"

    same = source.workload.split("/")[0] == destination.workload.split("/")[0]
    return category(source), category(destination), "same namespace" if same else "other namespace"


def test_every_kind_of_layout_flow_has_a_cross_node_instance(layout: TenancyLayout) -> None:
    # Issue 9, item 9: with the sentinel first in every namespace, a plain round-robin put every
    # sentinel on the first worker: sentinel <-> sentinel and outsider -> sentinel never crossed nodes.
    pods = plan_probe_pods(layout.all_workloads, NODES, canary=layout.canary_services)
    kinds: dict[tuple[str, str, str], set[bool]] = {}
    for source in pods:
        for destination in pods:
            if source is not destination:
                kinds.setdefault(_flow_kind(layout, source, destination), set()).add(source.node != destination.node)
    assert ("sentinel", "sentinel", "other namespace") in kinds
    assert ("outsider", "sentinel", "other namespace") in kinds
    assert sorted(kind for kind, crossing in kinds.items() if True not in crossing) == []


def test_one_node_gives_only_same_node_pairs_and_no_node_is_an_error(layout: TenancyLayout) -> None:
    assert same_node_pairs(plan_probe_pods(layout.workloads[:3], ["only"]))[1] == 0
    with pytest.raises(ValueError, match="no schedulable node"):
        plan_probe_pods(layout.workloads, [])


def test_registry_rewrites_the_probe_image(layout: TenancyLayout) -> None:
    image = rewrite_image(NETSHOOT_IMAGE, "mirror.example.com:5000")
    spec = rendered(layout, image=image)[0]

    assert spec["spec"]["containers"][0]["image"] == (
        "mirror.example.com:5000/nicolaka/netshoot:v0.13@sha256:"
        "a20c2531bf35436ed3766cd6cfe89d352b050ccc4d7005ce6400adf97503da1b"
    )


def test_the_netshoot_image_is_pinned_by_digest() -> None:
    assert "@sha256:" in NETSHOOT_IMAGE
    assert len(NETSHOOT_IMAGE.split("@sha256:")[1]) == 64


def test_existing_namespace_probes_get_a_run_prefixed_name(layout: TenancyLayout) -> None:
    pods = plan_probe_pods(layout.workloads, NODES, pod_name_prefix="cc-r1-")
    assert all(pod.pod_name.startswith("cc-r1-") for pod in pods)
    assert pods[0].workload == layout.workloads[0].key  # the identity stays the workload's


def test_serve_command_leaves_out_protocols_without_ports() -> None:
    pod = plan_probe_pods(
        [load_layout(REPO / "policies" / "tenancy.yaml").workloads[0]], ["n"], canary=[Service(9999, "UDP")]
    )[0]
    command = serve_command(pod)
    assert "--sctp" not in command


def test_namespace_has_its_layout_labels_and_the_run_labels() -> None:
    namespace = render_namespace("cc-r1-x", {"team": "a"}, "r1")
    assert namespace["metadata"]["labels"]["team"] == "a"
    assert namespace["metadata"]["labels"][RUN_LABEL] == "r1"


# --- strangers that run as a service account the policy set names ------------------------------------------

BATCH_ACCOUNT = Labels.of({"team": "batch"})


def _batch_stranger() -> Workload:
    return Workload(
        "customer-a",
        "stranger-as-batch",
        Labels.of({"debug": "true"}),
        (Service(8080, "TCP", "http"),),
        service_account="batch",
        service_account_labels=BATCH_ACCOUNT,
    )


def test_a_stranger_probe_runs_as_its_account_and_the_rest_as_default(layout: TenancyLayout) -> None:
    pods = plan_probe_pods([*layout.workloads, _batch_stranger()], NODES)
    specs = {pod.workload: render_probe_pod(pod, image=NETSHOOT_IMAGE, agent_source=AGENT, run_id="r1") for pod in pods}
    assert specs["customer-a/stranger-as-batch"]["spec"]["serviceAccountName"] == "batch"
    assert {spec["spec"]["serviceAccountName"] for key, spec in specs.items() if key != "customer-a/stranger-as-batch"} == {"default"}
    (stranger,) = [pod for pod in pods if pod.own_account]
    account = render_service_account(stranger, "r1")
    assert (account["kind"], account["metadata"]["name"], account["metadata"]["namespace"]) == (
        "ServiceAccount",
        "batch",
        "customer-a",
    )
    assert account["metadata"]["labels"]["team"] == "batch"  # what the policies read as pcsa.team
    assert account["metadata"]["labels"][RUN_LABEL] == "r1"  # the cleanup and the leak check see it


class AccountApi(ServedFakeApi):
    """ServiceAccounts only, behind the served-resources check: enough for the provisioning decision."""

    def __init__(self, existing: dict[tuple[str, str], dict[str, str]]) -> None:
        super().__init__("v3.31.7")
        for (namespace, name), labels in existing.items():
            super().create({"apiVersion": "v1", "kind": "ServiceAccount",
                            "metadata": {"name": name, "namespace": namespace, "labels": labels}})  # fmt: skip
        self.created: list[dict[str, Any]] = []

    def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        self.created.append(dict(manifest))
        return super().create(manifest)


def test_a_missing_account_is_created_once_and_recorded(layout: TenancyLayout) -> None:
    pods = plan_probe_pods([*layout.workloads, _batch_stranger(), _batch_stranger()], NODES)
    api, recorded = AccountApi({}), []
    provide_service_accounts(api, pods, run_id="r1", record=recorded.append)
    assert [(m["metadata"]["namespace"], m["metadata"]["name"]) for m in api.created] == [("customer-a", "batch")]  # type: ignore[index]
    assert [m["metadata"]["name"] for m in recorded] == [m["metadata"]["name"] for m in api.created]


def test_an_existing_account_with_the_labels_is_used_and_one_without_is_refused(layout: TenancyLayout) -> None:
    pods = plan_probe_pods([_batch_stranger()], NODES)
    same = AccountApi({("customer-a", "batch"): {"team": "batch", "owner": "ops"}})
    provide_service_accounts(same, pods, run_id="r1")
    assert same.created == []
    other = AccountApi({("customer-a", "batch"): {"team": "etl"}})
    with pytest.raises(RuntimeError, match=r"ServiceAccount customer-a/batch already exists without the labels \{'team': 'batch'\}"):
        provide_service_accounts(other, pods, run_id="r1")
    assert other.created == []
