"""Deploying a layout on a live cluster: the control tier, policy documents as applied, node choice,
state shared across workers, the end-of-run journals, and the live targets' refusals on this machine.

The control tier's promise — it lets the control pod reach every pod and changes no other flow — is
checked with the project's policy oracle over the reference policy set, Calico semantics as
calico-semantics.md states them. That it holds in felix is only observed on a live cluster.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from calico_conformance.cluster.deploy import (
    CONTROL_ROLE,
    Deployment,
    control_key,
    control_namespace,
    control_tier_manifests,
    control_workload,
    mtu_peer_key,
    mtu_peer_workload,
    read_policy_manifests,
    source_control_service,
    worker_nodes,
)
from calico_conformance.cluster.finish import journal_inventories
from calico_conformance.cluster.probe_pods import plan_probe_pods, render_probe_pod
from calico_conformance.cluster.run_once import STATE_ROOT_ENV
from calico_conformance.config import RunConfig
from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.loader import load_manifest_text, load_manifests
from calico_conformance.oracle.model import Labels, Namespace, Pod
from calico_conformance.probe.runner import ProbeEndpoint
from calico_conformance.reachability import Flow
from calico_conformance.tenancy.layout import TenancyLayout, load_layout
from calico_conformance.tenancy.workloads import layout_namespaces, layout_pods

REPO = Path(__file__).resolve().parents[2]
RUN = "r1"


@pytest.fixture(scope="module")
def layout() -> TenancyLayout:
    return load_layout(REPO / "policies" / "tenancy.yaml")


def rendered_control_pod(layout: TenancyLayout) -> dict[str, object]:
    """The control probe pod exactly as the live targets render it (labels included)."""
    control = control_workload(RUN, layout.canary_services)
    (pod,) = plan_probe_pods(
        [control], ["w1"], canary=layout.canary_services, roles={control_key(RUN): CONTROL_ROLE}
    )
    return render_probe_pod(pod, image="netshoot", agent_source="", run_id=RUN)


def oracles(layout: TenancyLayout) -> tuple[Oracle, Oracle, list[Pod]]:
    reference = load_manifests([REPO / "policies" / "reference"])
    control_text = "\n---\n".join(json.dumps(m) for m in control_tier_manifests(RUN))
    with_control = reference.merged(load_manifest_text(control_text, "control-tier"))
    pods = list(layout_pods(layout, IPv4Network("10.244.0.0/16")))
    spec = rendered_control_pod(layout)
    metadata = spec["metadata"]
    assert isinstance(metadata, dict)
    control_pod = Pod(metadata["name"], metadata["namespace"], IPv4Network("10.244.0.0/16")[250],
                      labels=Labels.of(metadata["labels"]))  # fmt: skip
    namespaces = [*layout_namespaces(layout),
                  Namespace(control_namespace(RUN), Labels.of({"kubernetes.io/metadata.name": control_namespace(RUN)}))]  # fmt: skip
    everyone = [*pods, control_pod]
    before = Oracle(namespaces=namespaces, pods=everyone, resources=reference)
    after = Oracle(namespaces=namespaces, pods=everyone, resources=with_control)
    return before, after, pods


def test_the_control_tier_changes_no_flow_between_layout_workloads(layout: TenancyLayout) -> None:
    before, after, pods = oracles(layout)
    services = {
        (s.port, s.protocol) for w in layout.all_workloads for s in (*w.ports, *layout.canary_services)
    }
    changed = [
        flow
        for source in pods
        for destination in pods
        if source is not destination
        for port, protocol in sorted(services)
        for flow in [Flow(source.key, destination.key, port, protocol)]
        if before.verdict_for(flow).allowed != after.verdict_for(flow).allowed
    ]
    assert changed == []


def test_only_the_pod_rendered_as_control_is_selected_by_the_control_tier(layout: TenancyLayout) -> None:
    labels = rendered_control_pod(layout)["metadata"]["labels"]  # type: ignore[index]
    assert labels["calico-conformance.io/role"] == "control"
    (probe,) = plan_probe_pods(layout.workloads[:1], ["w1"])
    assert (
        render_probe_pod(probe, image="i", agent_source="", run_id=RUN)["metadata"]["labels"][
            "calico-conformance.io/role"
        ]
        == "probe"
    )


def test_the_control_pod_reaches_every_layout_workload_on_every_port(layout: TenancyLayout) -> None:
    before, after, pods = oracles(layout)
    blocked_before = 0
    for destination in pods:
        for service in (*layout.workload(destination.key).ports, *layout.canary_services):
            flow = Flow(control_key(RUN), destination.key, service.port, service.protocol)
            assert after.verdict_for(flow).allowed, str(after.verdict_for(flow))
            blocked_before += not before.verdict_for(flow).allowed
    assert blocked_before > 0  # without the tier the default-deny policies would block the control


def test_policy_documents_are_applied_tiers_first_as_projectcalico_v3(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "apiVersion: crd.projectcalico.org/v1\nkind: GlobalNetworkPolicy\nmetadata: {name: sec.x}\nspec: {tier: sec}\n"
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: d, namespace: x}\nspec: {podSelector: {}}\n"
    )
    (tmp_path / "b.yaml").write_text(
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: sec}\nspec: {order: 1}\n"
    )

    manifests = read_policy_manifests([tmp_path])

    assert [m["kind"] for m in manifests] == ["Tier", "GlobalNetworkPolicy", "NetworkPolicy"]
    assert manifests[1]["apiVersion"] == "projectcalico.org/v3"  # never written to the internal CRDs
    assert type(manifests[1]) is dict
    assert type(manifests[1]["metadata"]) is dict


def test_probes_go_to_workers_or_to_every_node_when_there_is_none() -> None:
    nodes = [{"metadata": {"name": "cp", "labels": {"node-role.kubernetes.io/control-plane": ""}}},
             {"metadata": {"name": "w2", "labels": {}}}, {"metadata": {"name": "w1"}}]  # fmt: skip
    assert worker_nodes(nodes) == ["w1", "w2"]
    assert worker_nodes(nodes[:1]) == ["cp"]


def test_deployment_state_round_trips_through_json() -> None:
    deployment = Deployment(
        {"x/a": ProbeEndpoint("cc-x/a", "10.244.1.2", "w1")}, "c/control", {"y": "why"}, ""
    )

    assert Deployment.from_state(json.loads(json.dumps(deployment.to_state()))) == deployment


def test_journals_of_every_worker_make_one_inventory_per_cluster(tmp_path: Path) -> None:
    lines = [
        {
            "cluster": "finland",
            "apiVersion": "v1",
            "kind": "Namespace",
            "name": "cc-r1-control",
            "namespace": None,
            "uid": "u1",
        },
        {"cluster": "germany", "apiVersion": "v1", "kind": "Pod", "name": "p", "namespace": "n", "uid": "u2"},
        {
            "cluster": "finland",
            "apiVersion": "v1",
            "kind": "Pod",
            "name": "q",
            "namespace": "cc-r1-control",
            "uid": "u3",
        },
    ]
    (tmp_path / "inventory-101.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines[:2]))
    (tmp_path / "inventory-202.jsonl").write_text(json.dumps(lines[2]) + "\n\n")

    inventories = journal_inventories(tmp_path, RUN)

    assert sorted(inventories) == ["finland", "germany"]
    assert [str(ref) for ref in inventories["finland"].created] == [
        "Namespace cc-r1-control",
        "Pod cc-r1-control/q",
    ]
    assert inventories["finland"].created[1].uid == "u3"


def run_config(tmp_path: Path, target: str, version: str = "3.31") -> RunConfig:
    return RunConfig(
        target=target, clusters=("finland",), policies=REPO / "policies" / "reference",
        layout=REPO / "policies" / "tenancy.yaml", kind_configs=REPO / "kind-configs", calico_version=version,
        probe_timeout_s=1.0, converge_timeout_s=5.0, report_dir=tmp_path, contexts={"finland": "staging-fi"},
        run_id=RUN,
    )  # fmt: skip


def test_the_kind_target_refuses_this_machine_before_creating_anything(
    tmp_path: Path, layout: TenancyLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    from calico_conformance.cluster.targets import KindTarget
    from calico_conformance.cluster.tools import missing_tools

    monkeypatch.setenv(STATE_ROOT_ENV, str(tmp_path / "state"))
    if not missing_tools(("kind",)):
        pytest.skip("kind is installed here: the refusal is for machines without it")

    with pytest.raises(pytest.UsageError) as refused:
        KindTarget(run_config(tmp_path, "kind"), layout, load_manifests([REPO / "policies" / "reference"]))

    message = str(refused.value)
    assert "missing:" in message
    assert "  kind: creates the clusters from kind-configs/; go install sigs.k8s.io/kind@" in message
    assert message.endswith("to check a policy set without a cluster use --target=static")
    assert not (tmp_path / "state").exists()  # nothing was created, not even the run's state directory


def test_a_live_target_refuses_an_unpinned_calico_version(
    tmp_path: Path, layout: TenancyLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    from calico_conformance.cluster.targets import KubeconfigTarget
    from calico_conformance.cluster.tools import missing_tools

    if missing_tools(("kubectl",)):
        pytest.skip("kubectl is not installed here")
    monkeypatch.setenv(STATE_ROOT_ENV, str(tmp_path / "state"))

    with pytest.raises(pytest.UsageError, match=r"no pinned Calico release for --calico-version 3\.29"):
        KubeconfigTarget(
            run_config(tmp_path, "kubeconfig", "3.29"),
            layout,
            load_manifests([REPO / "policies" / "reference"]),
        )


def test_the_reference_policy_set_passes_the_schemas_of_the_default_release() -> None:
    from calico_conformance.cluster.deploy import policy_schema_problems

    assert policy_schema_problems(REPO / "policies" / "reference", "3.31") == []


def test_a_tiered_policy_set_on_a_release_without_tiers_is_one_clear_refusal() -> None:
    from calico_conformance.cluster.deploy import policy_schema_problems

    (problem,) = policy_schema_problems(REPO / "policies" / "reference", "3.27")
    assert "uses tiers (" in problem
    assert "which Calico v3.27.5 does not have (tiers arrived in 3.29)" in problem


def test_schema_problems_name_the_document(tmp_path: Path) -> None:
    from calico_conformance.cluster.deploy import policy_schema_problems

    (tmp_path / "p.yaml").write_text(
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\n"
        "spec: {selector: all(), ingress: [{source: {}}]}\n"
    )
    assert policy_schema_problems(tmp_path, "3.31") == [
        f"{tmp_path}: NetworkPolicy p: spec.ingress[0]: 'action' is a required property"
    ]


def test_every_layout_workload_reaches_the_control_pod_through_the_control_tier(layout: TenancyLayout) -> None:
    # The source control (issue 9, item 3): kube-dns, whose every pod-to-pod flow the reference policies
    # deny, still reaches the control pod, so a round in which it cannot is a source that cannot send.
    before, after, pods = oracles(layout)
    port, protocol = source_control_service(layout.canary_services)
    unreachable_before = 0
    for source in pods:
        flow = Flow(source.key, control_key(RUN), port, protocol)
        assert after.verdict_for(flow).allowed, str(after.verdict_for(flow))
        unreachable_before += not before.verdict_for(flow).allowed
    assert unreachable_before > 0  # the reference policies' egress denies would block it otherwise


def test_a_deployment_keeps_its_source_control_across_workers() -> None:
    deployment = Deployment({}, None, source_control="cc-r1-control/control", source_control_service=(9999, "TCP"))
    restored = Deployment.from_state(json.loads(json.dumps(deployment.to_state())))
    assert restored.source_control_probe() == ("cc-r1-control/control", 9999, "TCP")
    assert Deployment({}, None).source_control_probe() is None


def test_the_mtu_peer_stands_beside_the_control_pod_on_another_node(layout: TenancyLayout) -> None:
    # Issue 9, item 6: the MTU is measured between these two, in the run's own namespace, which the
    # reference policy sets (tiered and tierless) do not select: no control tier is needed for it.
    canary = layout.canary_services
    workloads = [*layout.all_workloads, control_workload(RUN, canary), mtu_peer_workload(RUN, canary)]
    pods = {pod.workload: pod for pod in plan_probe_pods(workloads, ["w1", "w2"])}
    assert pods[control_key(RUN)].node != pods[mtu_peer_key(RUN)].node
    assert pods[mtu_peer_key(RUN)].namespace == control_namespace(RUN)
    pool = IPv4Network("10.244.0.0/16")
    control = Pod("control", control_namespace(RUN), pool[250], labels=Labels.of({"app": "control"}))
    peer = Pod("mtu-peer", control_namespace(RUN), pool[251], labels=Labels.of({"app": "mtu-peer"}))
    namespaces = [*layout_namespaces(layout),
                  Namespace(control_namespace(RUN), Labels.of({"kubernetes.io/metadata.name": control_namespace(RUN)}))]  # fmt: skip
    for policies in ("reference", "reference-v3.27"):  # neither selects the run's own namespace
        oracle = Oracle(namespaces=namespaces, pods=[control, peer],
                        resources=load_manifests([REPO / "policies" / policies]))  # fmt: skip
        for service in canary:
            flow = Flow(control.key, peer.key, service.port, service.protocol)
            assert oracle.verdict_for(flow).allowed, (policies, str(oracle.verdict_for(flow)))
