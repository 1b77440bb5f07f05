"""Scenarios on live targets: model policies rendered back to manifests, and run-id renaming.

The round trip is checked through the project's own loader: a policy rendered from the model must
load back to the same model object, so what a live cluster is given is what the oracle evaluated.
Renaming is checked on the reference shapes (Kubernetes namespaceSelectors, Calico selectors, tiers).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from calico_conformance.cluster.live import _scenario_workload
from calico_conformance.cluster.render_policy import Renames, render_policy, scenario_manifests
from calico_conformance.cluster.scratch import rename_manifest, scratch_renames
from calico_conformance.oracle.loader import load_manifest_text
from calico_conformance.oracle.scenario import scenario_from_data
from calico_conformance.suite.tier_scenarios import TIER_SCENARIOS

CALICO_POLICY = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.deny-outside}
spec:
  tier: security
  order: 10
  selector: app == 'web'
  namespaceSelector: kubernetes.io/metadata.name == 'x'
  types: [Ingress, Egress]
  ingress:
    - action: Deny
      protocol: TCP
      source: {nets: [192.0.2.0/24], notPorts: [22, "1000:2000"]}
      destination: {ports: [http, 8080]}
    - action: Pass
  egress:
    - action: Allow
      protocol: ICMP
      icmp: {type: 8}
      destination: {namespaceSelector: "kubernetes.io/metadata.name == 'y'", selector: "has(db)"}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100, defaultAction: Pass}
"""


def test_rendered_calico_policies_load_back_to_the_same_model() -> None:
    resources = load_manifest_text(CALICO_POLICY, "policy.yaml")
    scenario = scenario_from_data(
        {"namespaces": [{"name": "x"}], "pods": [], "resources": [], "probes": []}, "<s>"
    )
    rendered = scenario_manifests(dataclasses.replace(scenario, resources=resources))
    text = "\n---\n".join(json.dumps(manifest) for manifest in rendered)

    reloaded = load_manifest_text(text, "rendered.yaml")

    assert reloaded.policies == resources.policies
    assert reloaded.tiers == resources.tiers


@pytest.mark.parametrize("tier_scenario", TIER_SCENARIOS, ids=[s.name for s in TIER_SCENARIOS])
def test_tier_scenarios_survive_rendering(tier_scenario: Any) -> None:
    scenario = scenario_from_data(tier_scenario.scenario_data("3.31"), f"<{tier_scenario.name}>")
    text = "\n---\n".join(json.dumps(manifest) for manifest in scenario_manifests(scenario))

    reloaded = load_manifest_text(text, "rendered.yaml")

    assert reloaded.tiers == scenario.resources.tiers
    # Kubernetes policies are applied as the objects they were written as, Calico ones re-rendered.
    assert sorted(reloaded.policies, key=lambda p: p.felix_key) == sorted(
        scenario.resources.policies, key=lambda p: p.felix_key
    )
    knps = [m for m in scenario_manifests(scenario) if m["apiVersion"] == "networking.k8s.io/v1"]
    assert len(knps) == sum(1 for p in scenario.resources.policies if p.kind == "KubernetesNetworkPolicy")


def test_a_model_without_its_manifest_renders_the_calico_equivalent() -> None:
    scenario = scenario_from_data(TIER_SCENARIOS[-1].scenario_data("3.31"), "<s>")
    knp = next(p for p in scenario.resources.policies if p.kind == "KubernetesNetworkPolicy")
    rendered = render_policy(dataclasses.replace(knp, manifest=None))
    assert rendered["apiVersion"] == "projectcalico.org/v3"
    assert rendered["metadata"]["name"] == f"k8s-{knp.name}"
    (twin,) = load_manifest_text(json.dumps(rendered), "twin.yaml").policies
    assert (twin.tier, twin.order, twin.selector, twin.types, twin.ingress) == (
        knp.tier,
        knp.order,
        knp.selector,
        knp.types,
        knp.ingress,
    )


def test_scratch_names_carry_the_run_id_and_the_case() -> None:
    renames = scratch_renames("r1", "tcp-03", ["x", "y"], ["security"])
    assert renames.namespaces == {"x": "cc-r1-tcp-03-x", "y": "cc-r1-tcp-03-y"}
    assert renames.tiers == {"security": "cc-r1-tcp-03-security"}
    long = scratch_renames(
        "r1", "Pass delegates to the next tier <tier scenario>", ["conformance-tiers-client"]
    )
    assert all(len(name) <= 63 for name in long.namespaces.values())


def test_kubernetes_namespace_selectors_are_renamed_structurally() -> None:
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow", "namespace": "x"},
        "spec": {
            "podSelector": {"matchLabels": {"pod": "a"}},
            "ingress": [{"from": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "y"}}},
                {"namespaceSelector": {"matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["y", "z"]},
                    {"key": "ns", "operator": "In", "values": ["x"]},
                ]}},
            ]}],
        },
    }  # fmt: skip

    renamed = rename_manifest(policy, Renames({"x": "cc-x", "y": "cc-y", "z": "cc-z"}))

    assert renamed["metadata"]["namespace"] == "cc-x"
    peers = renamed["spec"]["ingress"][0]["from"]
    assert peers[0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "cc-y"}
    assert peers[1]["namespaceSelector"]["matchExpressions"][0]["values"] == ["cc-y", "cc-z"]
    assert peers[1]["namespaceSelector"]["matchExpressions"][1]["values"] == ["x"]  # another key: untouched
    assert renamed["spec"]["podSelector"] == {"matchLabels": {"pod": "a"}}
    assert policy["metadata"]["namespace"] == "x"  # the input is not changed


def test_calico_selectors_tiers_and_tiered_names_are_renamed() -> None:
    policy = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "NetworkPolicy",
        "metadata": {"name": "first.deny-client", "namespace": "server"},
        "spec": {"tier": "first", "selector": "app == 'server'",
                 "ingress": [{"action": "Deny", "source": {"namespaceSelector": 'kubernetes.io/metadata.name == "client"'}}]},
    }  # fmt: skip
    renames = Renames({"server": "cc-server", "client": "cc-client"}, {"first": "cc-first"})

    renamed = rename_manifest(policy, renames)

    assert renamed["metadata"] == {"name": "cc-first.deny-client", "namespace": "cc-server"}
    assert renamed["spec"]["tier"] == "cc-first"
    assert (
        renamed["spec"]["selector"] == "app == 'cc-server'"
    )  # textual: a quoted value equal to a namespace name is renamed too (the documented caveat)
    assert (
        renamed["spec"]["ingress"][0]["source"]["namespaceSelector"]
        == 'kubernetes.io/metadata.name == "cc-client"'
    )
    tier = rename_manifest(
        {"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": "first"}}, renames
    )
    assert tier["metadata"]["name"] == "cc-first"


def test_an_omitted_policy_selector_is_not_rendered_as_all() -> None:
    text = """\
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: by-account}
spec:
  serviceAccountSelector: role == 'batch'
  types: [Ingress]
"""
    (policy,) = load_manifest_text(text, "p.yaml").policies
    rendered = render_policy(policy)
    assert "selector" not in rendered["spec"]
    written = load_manifest_text(text.replace("  types:", "  selector: all()\n  types:"), "q.yaml")
    assert render_policy(written.policies[0])["spec"]["selector"] == "all()"


def test_a_scenario_pod_s_probe_runs_as_its_service_account_with_its_labels() -> None:
    # The oracle judges the pod with its account's labels (pcsa.team); the live probe must run as it too.
    data = {
        "namespaces": [{"name": "x"}],
        "pods": [{"name": "job", "namespace": "x", "serviceAccount": "batch"}, {"name": "web", "namespace": "x"}],
        "resources": [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "batch", "namespace": "x", "labels": {"team": "batch"}}}
        ],
    }
    scenario = scenario_from_data(data, "<accounts>")
    job, web = (_scenario_workload(pod, scenario.service_accounts) for pod in scenario.pods)
    assert (job.service_account, dict(job.service_account_labels)) == ("batch", {"team": "batch"})
    assert (web.service_account, dict(web.service_account_labels)) == ("default", {})
