"""Every manifest a live run would apply is valid against Calico's CRD schemas and Kubernetes' own.

Calico kinds against the schemas vendored from the pinned releases (`data/calico/<tag>/schemas/`),
core kinds against `kubernetes-validate` (strict, Kubernetes 1.31): the Installation and APIServer of
every registered cluster, the reference policy set, the control tier, the tier scenarios and the
upstream netpol catalogue's policies as the live targets render them, the namespaces, agent ConfigMaps
and probe pods. The negative cases at the end show the validation is not vacuous: each breaks one
thing a real API server refuses.

What the API server would additionally refuse (selector syntax, policy names in tiers) is checked by
the oracle's loader, not here; whether a real cluster accepts these objects is only proven live.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from calico_conformance.cluster.deploy import (
    control_namespace,
    control_tier_manifests,
    control_workload,
    read_policy_manifests,
)
from calico_conformance.cluster.images import NETSHOOT_IMAGE
from calico_conformance.cluster.install import render_apiserver, render_installation
from calico_conformance.cluster.probe_pods import (
    plan_probe_pods,
    render_agent_configmap,
    render_namespace,
    render_probe_pod,
    render_service_account,
)
from calico_conformance.cluster.releases import RELEASES
from calico_conformance.cluster.render_policy import scenario_manifests
from calico_conformance.cluster.schemas import validate_manifest
from calico_conformance.cluster.scratch import rename_manifest, scratch_renames
from calico_conformance.cluster.stand_ins import probe_canary, stand_in_pods
from calico_conformance.oracle.model import Labels
from calico_conformance.oracle.scenario import scenario_from_data
from calico_conformance.suite.tier_scenarios import TIER_SCENARIOS
from calico_conformance.tenancy.layout import TenancyLayout, load_layout
from calico_conformance.tenancy.register import ClusterSpec, load_register
from calico_conformance.tenancy.surface import ProbeSurface, widen_layout

REPO = Path(__file__).resolve().parents[2]
AGENT = (REPO / "src" / "calico_conformance" / "probe" / "agent.py").read_text()
RUN = "a1b2c3d4"


@pytest.fixture(scope="module")
def layout() -> TenancyLayout:
    return load_layout(REPO / "policies" / "tenancy.yaml")


@pytest.fixture(scope="module")
def register() -> tuple[ClusterSpec, ...]:
    return load_register(REPO / "kind-configs")


def assert_valid(manifest: dict[str, Any], calico_version: str = "3.31") -> None:
    __tracebackhide__ = True
    errors = validate_manifest(manifest, calico_version=calico_version)
    name = f"{manifest.get('kind')} {manifest.get('metadata', {}).get('name')}"
    assert errors == [], f"{name} (Calico {calico_version}): " + "; ".join(errors)


@pytest.mark.parametrize("version", sorted(RELEASES))
def test_installation_and_apiserver_of_every_registered_cluster(
    version: str, register: tuple[ClusterSpec, ...], layout: TenancyLayout
) -> None:
    assert register, "the register is empty"
    for cluster in register:
        network = layout.networks.get(cluster.name)
        mtu = network.calico_mtu if network else None
        assert_valid(render_installation(cluster, mtu=mtu, calico_version=version), version)
        assert_valid(
            render_installation(cluster, calico_version=version, registry="mirror.example.com"), version
        )
    assert_valid(render_apiserver(), version)


def test_the_reference_policy_set_as_applied() -> None:
    manifests = read_policy_manifests([REPO / "policies" / "reference"])
    assert manifests, "no policies read from policies/reference"
    kinds = {manifest["kind"] for manifest in manifests}
    assert {"Tier", "NetworkPolicy"} <= kinds
    for manifest in manifests:
        assert_valid(manifest)


def test_tiers_are_refused_on_327_where_calico_has_none() -> None:
    tier = next(m for m in read_policy_manifests([REPO / "policies" / "reference"]) if m["kind"] == "Tier")
    (error,) = validate_manifest(tier, calico_version="3.27")
    assert error.startswith("no Tier schema in crd.projectcalico.org for Calico v3.27.5")


def test_the_control_tier() -> None:
    for manifest in control_tier_manifests(RUN):
        assert_valid(manifest)


@pytest.mark.parametrize("scenario", TIER_SCENARIOS, ids=[s.name for s in TIER_SCENARIOS])
def test_tier_scenarios_as_a_live_target_renders_and_renames_them(scenario: Any) -> None:
    parsed = scenario_from_data(scenario.scenario_data("3.31"), f"<{scenario.name}>")
    renames = scratch_renames(
        RUN,
        scenario.name,
        [ns.name for ns in parsed.namespaces],
        [tier.name for tier in parsed.resources.tiers],
    )
    for manifest in scenario_manifests(parsed):
        renamed = rename_manifest(manifest, renames)
        assert_valid(renamed)
        assert renamed["metadata"].get("namespace", f"cc-{RUN}-").startswith(f"cc-{RUN}-")


def test_upstream_netpol_catalogue_policies_as_renamed_for_scratch_namespaces() -> None:
    catalogue = yaml.safe_load((REPO / "tests" / "data" / "k8s-netpol-cases.yaml").read_text())
    checked = 0
    for case in catalogue["cases"]:
        renames = scratch_renames(RUN, case["id"], ["x", "y", "z"])
        for step in case["steps"]:
            if step["action"] != "create_policy" or "{podIP" in yaml.safe_dump(step["policy"]):
                continue  # tcp-35's ipBlock needs live pod IPs: rendered at run time
            renamed = rename_manifest(step["policy"], renames)
            assert_valid(renamed)
            assert (
                renamed["metadata"]["namespace"]
                == f"cc-{RUN}-{case['id']}-{step['policy']['metadata']['namespace']}"
            )
            checked += 1
    assert checked >= 25


def test_namespaces_configmaps_and_probe_pods(layout: TenancyLayout) -> None:
    for namespace in layout.all_namespaces:
        assert_valid(render_namespace(namespace.name, namespace.labels.as_dict(), RUN))
        assert_valid(render_agent_configmap(namespace.name, AGENT, RUN))
    workloads = [*layout.all_workloads, control_workload(RUN, layout.canary_services)]
    nodes = ["finland-worker", "finland-worker2"]
    pods = plan_probe_pods(workloads, nodes, canary=probe_canary(layout))
    stand_ins = stand_in_pods(layout, control_namespace(RUN), nodes, outside_echo=True, pod_name_prefix="cc-r1-")
    assert {pod.role for pod in stand_ins} == {"rogue-dns", "outside-echo"}  # both kinds are validated
    for pod in [*pods, *stand_ins]:
        assert_valid(render_probe_pod(pod, image=NETSHOOT_IMAGE, agent_source=AGENT, run_id=RUN))


def test_stranger_service_accounts_and_the_probe_pods_that_run_as_them(layout: TenancyLayout) -> None:
    surface = ProbeSurface((), (), stranger_accounts=("batch",), stranger_account_labels=Labels.of({"team": "batch"}))
    pods = plan_probe_pods(widen_layout(layout, surface).all_workloads, ["finland-worker", "finland-worker2"])
    strangers = [pod for pod in pods if pod.own_account]
    assert {pod.namespace for pod in strangers} == {namespace.name for namespace in layout.all_namespaces}
    for pod in strangers:
        assert_valid(render_service_account(pod, RUN))
        assert_valid(render_probe_pod(pod, image=NETSHOOT_IMAGE, agent_source=AGENT, run_id=RUN))


# --- the validation is not vacuous --------------------------------------------------------------------


def test_an_unknown_installation_field_is_refused(register: tuple[ClusterSpec, ...]) -> None:
    installation = render_installation(register[0])
    installation["spec"]["calicoNetwork"]["ipPools"][0]["natOutgoin"] = "Enabled"

    errors = validate_manifest(installation)

    assert errors == [
        "spec.calicoNetwork.ipPools[0]: Additional properties are not allowed ('natOutgoin' was unexpected)"
    ]


def test_a_wrong_encapsulation_and_a_missing_cidr_are_refused(register: tuple[ClusterSpec, ...]) -> None:
    installation = render_installation(register[0])
    pool = installation["spec"]["calicoNetwork"]["ipPools"][0]
    pool["encapsulation"] = "VXLANAlways"
    del pool["cidr"]

    errors = validate_manifest(installation)

    assert "spec.calicoNetwork.ipPools[0]: 'cidr' is a required property" in errors
    assert any(
        error.startswith("spec.calicoNetwork.ipPools[0].encapsulation: 'VXLANAlways' is not one of")
        for error in errors
    )


def test_a_misspelt_label_map_is_refused() -> None:
    manifest = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkSet",
        "metadata": {"name": "outside", "lables": {"a": "b"}},
        "spec": {"nets": ["192.0.2.0/24"]},
    }
    assert validate_manifest(manifest) == [
        "metadata: Additional properties are not allowed ('lables' was unexpected)"
    ]


def test_a_calico_rule_without_action_is_refused() -> None:
    manifest = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": "x"},
        "spec": {"selector": "all()", "ingress": [{"source": {"selector": "a == 'b'"}}]},
    }
    assert validate_manifest(manifest) == ["spec.ingress[0]: 'action' is a required property"]


def test_a_probe_pod_with_a_bad_field_is_refused(layout: TenancyLayout) -> None:
    (pod,) = plan_probe_pods(layout.workloads[:1], ["n"])
    manifest = render_probe_pod(pod, image=NETSHOOT_IMAGE, agent_source=AGENT, run_id=RUN)
    manifest["spec"]["readinessGate"] = manifest["spec"].pop("readinessGates")

    (error,) = validate_manifest(manifest)
    assert "readinessGate" in error


def test_a_kubernetes_policy_with_a_bad_port_type_is_refused() -> None:
    manifest = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": "x"},
        "spec": {
            "podSelector": {},
            "ingress": [{"ports": [{"port": 80, "protocol": "TCP", "endPort": "90"}]}],
        },
    }
    (error,) = validate_manifest(manifest)
    assert "endPort" in error


def test_a_service_account_with_a_bad_field_is_refused(layout: TenancyLayout) -> None:
    surface = ProbeSurface((), (), stranger_accounts=("batch",))
    (pod, *_) = [pod for pod in plan_probe_pods(widen_layout(layout, surface).all_workloads, ["n"]) if pod.own_account]
    manifest = render_service_account(pod, RUN)
    manifest["automountServiceAccountTokens"] = manifest.pop("automountServiceAccountToken")

    (error,) = validate_manifest(manifest)
    assert "automountServiceAccountTokens" in error
