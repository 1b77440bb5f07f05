"""Invariants of the oracle over random clusters (hypothesis), each following from calico-semantics.md.

The hand-written cases pin single rules; these properties hold for every policy set, so they catch what
no one thought to write a case for: the grouped all-pairs fast path drifting from the per-flow pipeline,
a dependence on the order manifests are listed in, a direction leaking into the other, an allow-all that
removes reachability, and any disagreement with Kubernetes' own NetworkPolicy semantics on clusters that
have only Kubernetes policies. Expected values come from construction or from the independent reference
model in `corpus_k8s_reference.py`, never from the oracle itself.
"""

from __future__ import annotations

import copy
from itertools import permutations
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calico_conformance.oracle.evaluate import Decision, Oracle, Verdict
from calico_conformance.oracle.model import Direction
from tests.unit.corpus_clusters import (
    LOWEST_DRAWN_TIER_ORDER,
    SERVICES,
    ClusterDraw,
    clusters,
    oracle_for,
    services,
)
from tests.unit.corpus_k8s_reference import KubernetesReference

PROPERTY_SETTINGS = settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NO_POLICY = "no policy applies"
LOCKDOWN_TIER = "lockdown"
LOCKDOWN_ORDER = 1  # below every drawn user tier, and below the built-in tiers (1000 and up)
assert LOCKDOWN_ORDER < LOWEST_DRAWN_TIER_ORDER

Service = tuple[int | None, str]


def pod_pairs(oracle: Oracle) -> list[tuple[str, str]]:
    return [(s.key, d.key) for s in oracle.pods for d in oracle.pods if s.key != d.key]


def verdict(oracle: Oracle, pair: tuple[str, str], service: Service) -> Verdict:
    return oracle.verdict(oracle.pod(pair[0]), oracle.pod(pair[1]), *service)


def decided_by(decision: Decision) -> tuple[Any, ...]:
    """What a decision says, without where it was written (locations shift when manifests move)."""
    return (
        decision.allowed,
        decision.reason,
        decision.tier,
        decision.policy,
        decision.rule_index,
        decision.action,
    )


def governs_only(manifest: dict[str, Any], direction: Direction) -> bool:
    """A policy manifest whose (always explicit, in these draws) types name only `direction`."""
    spec = manifest.get("spec") or {}
    if manifest["apiVersion"] == "networking.k8s.io/v1":
        types = spec.get("policyTypes")
    elif manifest["kind"] in ("NetworkPolicy", "GlobalNetworkPolicy"):
        types = spec.get("types")
    else:
        return False
    return bool(types == [direction.value])


# --- the fast path ----------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(clusters(), services(), st.data())
def test_grouped_all_pairs_equals_the_per_pair_verdicts(
    cluster: ClusterDraw, service: Service, data: st.DataObject
) -> None:
    """`all_pairs` groups pods no selector tells apart; it must answer exactly what `verdict` answers."""
    oracle = cluster.oracle()
    expected = {pair: verdict(oracle, pair, service).allowed for pair in pod_pairs(oracle)}
    assert oracle.all_pairs(*service) == expected

    subset = data.draw(st.lists(st.sampled_from(oracle.pods), unique_by=lambda p: p.key, min_size=2))
    chosen = {pod.key for pod in subset}
    assert oracle.all_pairs(*service, pods=subset) == {
        pair: allowed for pair, allowed in expected.items() if set(pair) <= chosen
    }


# --- nothing selects, nothing denies ----------------------------------------------------------------


@PROPERTY_SETTINGS
@given(clusters(max_policies=0), services())
def test_without_policies_everything_is_allowed(cluster: ClusterDraw, service: Service) -> None:
    """§1.2: with no policy in any tier, every flow reaches the namespace profile, which allows all."""
    oracle = cluster.oracle()
    assert all(oracle.all_pairs(*service).values())
    for pair in pod_pairs(oracle):
        result = verdict(oracle, pair, service)
        assert result.allowed, f"{pair}: {result}"
        assert (result.egress.reason, result.ingress.reason) == (NO_POLICY, NO_POLICY)


@PROPERTY_SETTINGS
@given(clusters(guard_exempt=True), services())
def test_a_pod_no_policy_selects_is_reachable_from_another(cluster: ClusterDraw, service: Service) -> None:
    """§1.2 (a): no policy in any tier selects the exempt pods (every drawn policy requires
    `!has(exempt)`), so between them both directions reach the profile: allowed."""
    oracle = cluster.oracle()
    for pair in permutations(cluster.exempt_pods, 2):
        result = verdict(oracle, pair, service)
        assert result.allowed, f"{pair}: {result}"
        assert (result.egress.reason, result.ingress.reason) == (NO_POLICY, NO_POLICY)


# --- how the directions combine ---------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(clusters(), services())
def test_a_flow_is_allowed_exactly_when_source_egress_and_destination_ingress_are(
    cluster: ClusterDraw, service: Service
) -> None:
    """§1.1: A->B must be allowed by A's egress pipeline and by B's ingress pipeline."""
    oracle = cluster.oracle()
    for pair in pod_pairs(oracle):
        result = verdict(oracle, pair, service)
        assert result.egress.direction is Direction.EGRESS
        assert result.ingress.direction is Direction.INGRESS
        assert result.allowed == (result.egress.allowed and result.ingress.allowed), f"{pair}: {result}"


@PROPERTY_SETTINGS
@given(clusters(), services(), st.sampled_from(list(Direction)))
def test_a_direction_ignores_policies_that_do_not_govern_it(
    cluster: ClusterDraw, service: Service, direction: Direction
) -> None:
    """§1.6: if `types` lacks a direction, the policy does not apply in it (not even as end-of-tier)."""
    other = Direction.EGRESS if direction is Direction.INGRESS else Direction.INGRESS
    pruned = copy.deepcopy(cluster.data)
    pruned["resources"] = [m for m in pruned["resources"] if not governs_only(m, other)]
    before, after = cluster.oracle(), oracle_for(pruned)
    side = "ingress" if direction is Direction.INGRESS else "egress"
    for pair in pod_pairs(before):
        was = getattr(verdict(before, pair, service), side)
        now = getattr(verdict(after, pair, service), side)
        assert decided_by(now) == decided_by(was), f"{pair} {direction}: {was} became {now}"


# --- adding policy ----------------------------------------------------------------------------------


ALLOW_ALL_INGRESS = {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]}


@PROPERTY_SETTINGS
@given(clusters(min_knps=1), services(), st.data())
def test_adding_an_allow_all_knp_never_removes_reachability(
    cluster: ClusterDraw, service: Service, data: st.DataObject
) -> None:
    """§1.5/§1.7: a KNP only adds Allow rules at order 1000 of the default tier; an allow-all one can only
    turn denials into allows for its namespace, never the reverse."""
    namespace = data.draw(st.sampled_from(cluster.namespaces_with_knps))
    grown = copy.deepcopy(cluster.data)
    grown["resources"].append(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-all-ingress", "namespace": namespace},
            "spec": copy.deepcopy(ALLOW_ALL_INGRESS),
        }
    )
    before = cluster.oracle().all_pairs(*service)
    after = oracle_for(grown).all_pairs(*service)
    lost = sorted(pair for pair, allowed in before.items() if allowed and not after[pair])
    assert not lost, f"adding an allow-all KNP to {namespace} removed {lost}"


@PROPERTY_SETTINGS
@given(clusters(), services(), st.sampled_from(("deny-rule", "no-rules", "log-then-deny")))
def test_a_deny_all_tier_ahead_of_every_other_denies_every_pod_pair(
    cluster: ClusterDraw, service: Service, shape: str
) -> None:
    """§1.2/§1.3: a first tier whose all() policy governs both directions and never passes decides every
    pod's egress and ingress: by its Deny rule, or by its end-of-tier deny when it has no rule."""
    rules = {
        "deny-rule": [{"action": "Deny"}],
        "no-rules": [],
        "log-then-deny": [{"action": "Log"}, {"action": "Deny"}],
    }[shape]
    locked = copy.deepcopy(cluster.data)
    locked["resources"] += [
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "Tier",
            "metadata": {"name": LOCKDOWN_TIER},
            "spec": {"order": LOCKDOWN_ORDER},
        },
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "GlobalNetworkPolicy",
            "metadata": {"name": f"{LOCKDOWN_TIER}.deny-all"},
            "spec": {
                "tier": LOCKDOWN_TIER,
                "selector": "all()",
                "types": ["Ingress", "Egress"],
                "ingress": copy.deepcopy(rules),
                "egress": copy.deepcopy(rules),
            },
        },
    ]
    oracle = oracle_for(locked)
    assert not any(oracle.all_pairs(*service).values())
    for pair in pod_pairs(oracle):
        result = verdict(oracle, pair, service)
        for decision in (result.egress, result.ingress):
            assert not decision.allowed, f"{pair}: {result}"
            assert decision.tier == LOCKDOWN_TIER, f"{pair}: {result}"


# --- what must not matter ---------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(clusters(), services(), st.sampled_from(("pass-rule", "default-action-pass", "log-then-pass")))
def test_a_first_tier_that_passes_everything_changes_no_verdict(
    cluster: ClusterDraw, service: Service, shape: str
) -> None:
    """§1.2: Pass continues with the next tier that applies, else the profile, exactly where the flow would
    have started without the tier; so a tier that passes every packet is invisible in the outcome."""
    rules = {
        "pass-rule": [{"action": "Pass"}],
        "default-action-pass": [],
        "log-then-pass": [{"action": "Log"}, {"action": "Pass"}],
    }[shape]
    passing = copy.deepcopy(cluster.data)
    passing["resources"] += [
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "Tier",
            "metadata": {"name": LOCKDOWN_TIER},
            "spec": {
                "order": LOCKDOWN_ORDER,
                "defaultAction": "Pass" if shape == "default-action-pass" else "Deny",
            },
        },
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "GlobalNetworkPolicy",
            "metadata": {"name": f"{LOCKDOWN_TIER}.pass-all"},
            "spec": {
                "tier": LOCKDOWN_TIER,
                "selector": "all()",
                "types": ["Ingress", "Egress"],
                "ingress": copy.deepcopy(rules),
                "egress": copy.deepcopy(rules),
            },
        },
    ]
    assert oracle_for(passing).all_pairs(*service) == cluster.oracle().all_pairs(*service)


@PROPERTY_SETTINGS
@given(clusters(), services(), st.data())
def test_log_rules_change_no_verdict(cluster: ClusterDraw, service: Service, data: st.DataObject) -> None:
    """§1.7: after a Log action processing continues with the next rule; inserting Log rules anywhere
    leaves every outcome as it was."""
    logged = copy.deepcopy(cluster.data)
    for manifest in logged["resources"]:
        if manifest["apiVersion"] != "projectcalico.org/v3" or manifest["kind"] == "Tier":
            continue
        for direction in ("ingress", "egress"):
            rules = manifest["spec"].get(direction)
            if rules is not None:
                position = data.draw(
                    st.integers(0, len(rules)), label=f"{manifest['metadata']['name']} {direction}"
                )
                rules.insert(position, {"action": "Log"})
    assert oracle_for(logged).all_pairs(*service) == cluster.oracle().all_pairs(*service)


@PROPERTY_SETTINGS
@given(clusters(), services(), st.randoms(use_true_random=False))
def test_the_order_manifests_are_listed_in_does_not_matter(
    cluster: ClusterDraw, service: Service, random: Any
) -> None:
    """§1.3/§1.4: felix sorts tiers and policies by order and name; file order is no tie-break."""
    shuffled = copy.deepcopy(cluster.data)
    random.shuffle(shuffled["resources"])
    before, after = cluster.oracle(), oracle_for(shuffled)
    for pair in pod_pairs(before):
        was, now = verdict(before, pair, service), verdict(after, pair, service)
        assert decided_by(now.egress) == decided_by(was.egress), f"{pair}: {was} became {now}"
        assert decided_by(now.ingress) == decided_by(was.ingress), f"{pair}: {was} became {now}"


# --- Kubernetes NetworkPolicy as Kubernetes defines it ----------------------------------------------


@settings(PROPERTY_SETTINGS, max_examples=100)
@given(clusters(kubernetes_only=True, min_knps=1, max_policies=5, min_pods=4))
def test_kubernetes_only_clusters_follow_the_kubernetes_api_semantics(cluster: ClusterDraw) -> None:
    """With only KNPs, Calico's conversion (§1.5) must reduce to the Kubernetes API's own semantics:
    isolation by selection, union of allows, peers and ports as documented. Every service is judged,
    so each drawn cluster is checked as thoroughly as it can be."""
    oracle = cluster.oracle()
    reference = KubernetesReference(cluster.data, {pod.key: pod.ip for pod in oracle.pods})
    for service in SERVICES:
        for pair in pod_pairs(oracle):
            result = verdict(oracle, pair, service)
            expected = reference.allowed(*pair, *service)
            assert result.allowed == expected, (
                f"{pair} {service}: Kubernetes semantics say {'allowed' if expected else 'denied'}, oracle: {result}"
            )
