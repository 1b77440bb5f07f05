"""The per-direction pipeline and its explanations (calico-semantics.md §1.2, §1.7), end to end.

The hand-written case corpus (test_calico_cases.py) pins many single sentences; these tests pin the
evaluator's own contract around them: both directions and the outside world, what each `Decision`
says, bad probes, and non-strict evaluation.
"""

from __future__ import annotations

import ipaddress

import pytest

from calico_conformance.oracle.errors import LocatedError
from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.explain import NO_POLICY, OUTSIDE, PASSED_OUT
from calico_conformance.oracle.model import Direction, EntityRule, Policy, ResourceSet, Rule, ServiceMatch
from calico_conformance.oracle.selector import parse_selector
from calico_conformance.reachability import Flow
from tests.unit.evaluate_support import SOURCE, allowed, oracle_for, verdict

TIERED = """
    calicoVersion: "3.30"
    namespaces: [{name: shop}, {name: ops}]
    pods:
      - {name: web, namespace: shop, labels: {app: web}, ip: 10.244.0.10}
      - {name: db, namespace: shop, labels: {app: db}, ip: 10.244.0.11}
      - {name: probe, namespace: ops, labels: {app: probe}, ip: 10.244.0.12}
    resources:
      - apiVersion: projectcalico.org/v3
        kind: Tier
        metadata: {name: security}
        spec: {order: 100}
      - apiVersion: projectcalico.org/v3
        kind: GlobalNetworkPolicy
        metadata: {name: security.db}
        spec:
          tier: security
          order: 1
          selector: app == 'db'
          types: [Ingress, Egress]
          ingress:
            - action: Log
            - action: Deny
              source: {selector: app == 'probe'}
            - action: Pass
              source: {selector: app == 'web'}
          egress:
            - action: Deny
              destination: {nets: [192.0.2.0/24]}
      - apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: db-from-web-only, namespace: shop}
        spec:
          podSelector: {matchLabels: {app: db}}
          policyTypes: [Ingress]
          ingress:
            - from: [{podSelector: {matchLabels: {app: web}}}]
              ports: [{port: 5432}]
"""


@pytest.fixture(scope="module")
def tiered() -> Oracle:
    return oracle_for(TIERED)


def test_a_flow_needs_both_the_source_egress_and_the_destination_ingress(tiered: Oracle) -> None:
    """§1.1: traffic A->B must be allowed by A's egress pipeline and by B's ingress pipeline."""
    result = verdict(tiered, "shop/db", "shop/web")
    assert (result.allowed, result.egress.allowed, result.ingress.allowed) == (False, False, True)
    assert allowed(tiered, "shop/web", "ops/probe")  # neither side is selected by any policy


def test_deny_is_final_and_log_continues(tiered: Oracle) -> None:
    """§1.7: Log "processing continues with the next rule"; Deny is "immediate and final"."""
    decision = verdict(tiered, "ops/probe", "shop/db", 5432).ingress
    assert (decision.allowed, decision.tier, decision.rule_index, decision.action) == (
        False,
        "security",
        1,
        "Deny",
    )


def test_pass_moves_on_to_the_next_tier_that_applies(tiered: Oracle) -> None:
    """§1.7 Pass: "continue with the next tier that applies"; the KNP in default then decides."""
    assert verdict(tiered, "shop/web", "shop/db", 5432).ingress.tier == "default"
    assert allowed(tiered, "shop/web", "shop/db", 5432)
    denied = verdict(tiered, "shop/web", "shop/db", 6379).ingress
    assert (denied.allowed, denied.reason) == (False, "end of tier default")


def test_a_selected_endpoint_with_no_matching_rule_is_denied_at_the_end_of_the_tier(tiered: Oracle) -> None:
    """§1.2: the tier applies to db's egress (security.db has Egress), nothing matches -> end-of-tier deny."""
    decision = verdict(tiered, "shop/db", "ops/probe").egress
    assert (decision.allowed, decision.reason, decision.policy) == (
        False,
        "end of tier security",
        "GlobalNetworkPolicy security.db",
    )


def test_traffic_to_an_outside_address_is_judged_on_the_pod_side_only(tiered: Oracle) -> None:
    result = verdict(tiered, "shop/web", "192.0.2.7", 443)
    assert result.allowed
    assert result.ingress.reason == OUTSIDE
    assert result.egress.reason == NO_POLICY


def test_traffic_from_an_outside_address_is_judged_on_the_destination(tiered: Oracle) -> None:
    """Only security.db's Log matches an unknown source, so its tier ends in deny before the KNP."""
    result = verdict(tiered, "203.0.113.9", "shop/db", 5432)
    assert (result.allowed, result.egress.reason, result.ingress.reason) == (
        False,
        OUTSIDE,
        "end of tier security",
    )


def test_an_ip_literal_that_is_a_pods_ip_is_that_pod(tiered: Oracle) -> None:
    """felix sees addresses, not names: 10.244.0.12 is ops/probe, so security.db's Deny applies."""
    by_ip = verdict(tiered, "10.244.0.12", "shop/db", 5432)
    by_name = verdict(tiered, "ops/probe", "shop/db", 5432)
    assert by_ip == by_name


def test_a_pass_out_of_the_last_tier_reaches_the_allowing_profile() -> None:
    """§1.2: "(b) the last applicable tier ends in Pass (explicit Pass rule ...) -> allow"."""
    oracle = oracle_for(
        """
        namespaces: [{name: x}]
        pods: [{name: a, namespace: x}, {name: b, namespace: x}]
        resources:
          - apiVersion: projectcalico.org/v3
            kind: GlobalNetworkPolicy
            metadata: {name: hand-over}
            spec:
              selector: all()
              ingress: [{action: Pass}]
        """
    )
    decision = verdict(oracle, "x/a", "x/b").ingress
    assert (decision.allowed, decision.reason, decision.action, decision.tier) == (
        True,
        PASSED_OUT,
        "Pass",
        "default",
    )
    assert "passed out of the last tier" in str(decision)


def test_explanations_name_tier_policy_rule_action_and_line(tiered: Oracle) -> None:
    text = str(verdict(tiered, "ops/probe", "shop/db", 5432))
    assert text.startswith("denied: Egress allowed: no policy applies (namespace profile allows); ")
    assert (
        "Ingress denied by tier security, GlobalNetworkPolicy security.db rule 1 (Deny) at case.yaml:" in text
    )


def test_the_end_of_tier_explanation_names_the_first_selecting_policy(tiered: Oracle) -> None:
    text = str(verdict(tiered, "shop/web", "shop/db", 6379).ingress)
    assert text.startswith(
        "Ingress denied: end of tier default: a policy selects the endpoint but no rule matched"
    )
    assert "KubernetesNetworkPolicy shop/db-from-web-only at case.yaml:" in text


def test_expected_matrix_carries_the_verdict_as_the_reason(tiered: Oracle) -> None:
    flow = Flow("ops/probe", "shop/db", 5432, "TCP")
    matrix = tiered.expected_matrix([flow])
    assert matrix[flow].allowed is False
    assert matrix[flow].why == str(tiered.verdict_for(flow))


def test_verdict_accepts_pods_and_addresses(tiered: Oracle) -> None:
    web, db = tiered.pod("shop/web"), tiered.pod("shop/db")
    assert tiered.verdict(web, db, 5432, "TCP") == verdict(tiered, "shop/web", "shop/db", 5432)
    assert tiered.verdict(web, ipaddress.ip_address("192.0.2.1"), 80, "TCP").ingress.reason == OUTSIDE


@pytest.mark.parametrize(
    ("flow", "complaint"),
    [
        (Flow("shop/web", "shop/nope", 80, "TCP"), "no pod 'shop/nope'"),
        (Flow("192.0.2.1", "198.51.100.1", 80, "TCP"), "neither 192.0.2.1 nor 198.51.100.1 is a pod"),
        (Flow("shop/web", "shop/db", 80, "HTTP"), "unknown protocol 'HTTP'"),
        (Flow("shop/web", "shop/db", None, "TCP"), "a TCP probe needs a port"),
        (Flow("shop/web", "shop/db", 70000, "UDP"), "a UDP probe needs a port between 1 and 65535"),
        (Flow("shop/web", "shop/db", 8, "ICMP"), "an ICMP probe has no port"),
        (Flow("shop/web", "2001:db8::1", 80, "TCP"), "different IP versions"),
    ],
)
def test_bad_flows_are_refused_clearly(tiered: Oracle, flow: Flow, complaint: str) -> None:
    with pytest.raises(LocatedError, match=complaint.replace("(", r"\(")):
        tiered.verdict_for(flow)


def test_all_pairs_leaves_out_self_pairs_and_agrees_with_verdicts(tiered: Oracle) -> None:
    pairs = tiered.all_pairs(5432, "TCP")
    keys = [pod.key for pod in tiered.pods]
    assert set(pairs) == {(a, b) for a in keys for b in keys if a != b}
    assert pairs == {pair: verdict(tiered, *pair, 5432).allowed for pair in pairs}


def test_non_strict_evaluation_records_what_it_cannot_judge_and_carries_on() -> None:
    """The linter's mode: a services rule is recorded and left out instead of raising."""
    rule = Rule("Deny", destination=EntityRule(services=ServiceMatch("kube-dns", "kube-system")))
    policy = Policy(
        kind="GlobalNetworkPolicy",
        name="dns",
        namespace=None,
        tier="default",
        order=None,
        selector=parse_selector("all()"),
        types=frozenset({Direction.EGRESS}),
        egress=(rule, Rule("Allow")),
    )
    resources = ResourceSet(policies=(policy,))
    with pytest.raises(LocatedError, match="services rules are not supported"):
        Oracle(namespaces=(), pods=(), resources=resources)
    lenient = Oracle(namespaces=(), pods=(), resources=resources, strict=False)
    assert [error.why for error in lenient.problems] == [
        "services rules are not supported by the oracle: it has no Service/EndpointSlice model to resolve them from"
    ]
    (compiled,) = lenient.tiers[[tier.name for tier in lenient.tiers].index("default")].policies
    assert [rule.index for rule in compiled.egress] == [1]  # explanations keep the written index


def test_scenario_source_is_the_location_file() -> None:
    oracle = oracle_for(TIERED)
    location = verdict(oracle, "ops/probe", "shop/db", 5432).ingress.location
    assert location is not None
    assert location.file == SOURCE


LONG_ACCOUNT = "robot-" + "r" * 57  # 63 characters: its pods carry no projectcalico.org/serviceaccount


@pytest.mark.parametrize(
    ("selector_line", "applies"),
    [
        pytest.param("", True, id="selector-absent"),
        pytest.param("selector: ''", True, id="selector-empty"),
        pytest.param("selector: all()", False, id="selector-all"),
    ],
)
def test_a_global_policys_service_account_selector_rewrites_only_a_written_selector(
    selector_line: str, applies: bool
) -> None:
    """`globalnetworkpolicyprocessor.go` appends `pcsa.<serviceAccountSelector>` to the selector *as
    written* ("" when absent: the appended part stands alone) and then replaces every `all()` by
    `has(projectcalico.org/serviceaccount)` (§2.2 "Policy-level selectors"). So a written `all()` keeps
    out the pods without that label (§2.3: account names of 63+ characters) and an absent one does not."""
    oracle = oracle_for(
        f"""
        calicoVersion: "3.30"
        namespaces: [{{name: shop}}]
        pods:
          - {{name: robot, namespace: shop, ip: 10.244.0.10, serviceAccount: {LONG_ACCOUNT}}}
          - {{name: client, namespace: shop, ip: 10.244.0.11}}
        resources:
          - apiVersion: v1
            kind: ServiceAccount
            metadata: {{name: {LONG_ACCOUNT}, namespace: shop, labels: {{trusted: "yes"}}}}
          - apiVersion: projectcalico.org/v3
            kind: GlobalNetworkPolicy
            metadata: {{name: trusted-deny-ingress}}
            spec:
              {selector_line or "order: 1"}
              serviceAccountSelector: trusted == 'yes'
              types: [Ingress]
        """
    )
    assert allowed(oracle, "shop/client", "shop/robot") is not applies
    assert oracle.all_pairs(80, "TCP")[("shop/client", "shop/robot")] is not applies
