"""The lint flow table decides every flow exactly as `Oracle.verdict` does.

Every inventory-based finding is read from the table, so the table must be the oracle: for each pod,
direction, transport and peer of the sample, its outcome is compared with the oracle's own decision for
that flow (allowed, and which tier, policy and rule decided). Policy sets: the reference set, and the
fixtures that exercise Pass, Log, end-of-tier denies and rule order.
"""

from __future__ import annotations

from itertools import product
from pathlib import Path

import pytest

from calico_conformance.lint.flows import (
    END_OF_TIER,
    NO_POLICY,
    PASSED_OUT,
    RULE,
    TIER_PASSES,
    FlowTable,
    Outcome,
)
from calico_conformance.lint.inventory import Inventory
from calico_conformance.oracle.explain import Decision
from calico_conformance.oracle.loader import load_manifests
from calico_conformance.oracle.model import Direction
from calico_conformance.tenancy.layout import load_layout

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = sorted((ROOT / "policies" / "reference").glob("*.yaml"))
FIXTURES = ROOT / "tests" / "data" / "lint"
POLICY_SETS = {
    "reference": REFERENCE,
    "tier-without-pass": [*REFERENCE, FIXTURES / "tier-denies-lower-tiers.yaml"],
    "shadowed-rule": [*REFERENCE, FIXTURES / "shadowed-rule.yaml"],
    "one-sided": [p for p in REFERENCE if p.name != "40-application-logging.yaml"]
    + [FIXTURES / "one-sided-exception.yaml"],
}
# How the oracle words each reason of the table (explain.py), for the comparison.
ORACLE_REASONS = {RULE: "rule", PASSED_OUT: "passed out of the last tier", NO_POLICY: "no policy applies"}


def _oracle_reason(outcome: Outcome) -> str:
    if outcome.reason == END_OF_TIER:
        assert outcome.tier is not None
        return f"end of tier {outcome.tier.name}"
    if outcome.reason == TIER_PASSES:
        assert outcome.tier is not None
        return f"tier {outcome.tier.name} passes to profile"
    return ORACLE_REASONS[outcome.reason]


def _same(outcome: Outcome, decision: Decision) -> bool:
    if (outcome.allowed, _oracle_reason(outcome)) != (decision.allowed, decision.reason):
        return False
    if outcome.reason in (RULE, PASSED_OUT):
        assert outcome.policy is not None
        assert outcome.rule is not None
        return (outcome.policy.policy.display_name, outcome.rule.index) == (
            decision.policy,
            decision.rule_index,
        )
    return True


@pytest.mark.parametrize("name", sorted(POLICY_SETS))
def test_every_outcome_agrees_with_the_oracle(name: str) -> None:
    layout = load_layout(ROOT / "policies" / "tenancy.yaml")
    inventory, oracle = Inventory.build(layout, load_manifests(POLICY_SETS[name]), "3.31")
    table = FlowTable(inventory)
    compared = 0
    owners = [index for index, peer in enumerate(inventory.peers) if peer.pod is not None]
    for direction, owner, transport in product(Direction, owners, inventory.transports):
        owner_pod = inventory.peers[owner].pod
        assert owner_pod is not None
        walk = table.walk(direction, owner, transport)  # transports no rule tells apart share a walk
        for peer_index, peer in enumerate(inventory.peers):
            if peer_index == owner:
                continue
            other = peer.pod if peer.pod is not None else peer.view.ip
            protocol = (
                "ICMP" if transport.port is None else {6: "TCP", 17: "UDP", 132: "SCTP"}[transport.protocol]
            )
            if direction is Direction.EGRESS:
                decision = oracle.verdict(owner_pod, other, transport.port, protocol).egress
            else:
                decision = oracle.verdict(other, owner_pod, transport.port, protocol).ingress
            outcome = walk.outcome(peer_index)
            assert _same(outcome, decision), (
                f"{direction} {owner_pod.key} {peer.name} {transport}: {outcome} vs {decision}"
            )
            compared += 1
    assert compared == 2 * len(inventory.pods) * (len(inventory.peers) - 1) * len(inventory.transports)


def test_outcomes_partition_the_peers() -> None:
    layout = load_layout(ROOT / "policies" / "tenancy.yaml")
    inventory, _ = Inventory.build(layout, load_manifests(REFERENCE), "3.31")
    table = FlowTable(inventory)
    for (_, owner, _), walk in table.walks.items():
        union = 0
        for outcome in walk.outcomes:
            assert outcome.mask & union == 0
            union |= outcome.mask
        assert union == table.every_peer & ~(1 << owner)


def test_transports_that_no_rule_names_share_one_walk() -> None:
    """The sample's ports that no applicable rule names and no pod listens on are walked once per protocol
    (the equivalence the comparison above checks flow by flow)."""
    layout = load_layout(ROOT / "policies" / "tenancy.yaml")
    inventory, _ = Inventory.build(layout, load_manifests(REFERENCE), "3.31")
    table = FlowTable(inventory)
    walked = {transport for (_, _, transport) in table.walks}
    assert len(walked) <= len(inventory.transports)
    for (direction, owner), classes in table.classes.items():
        assert sum(classes.weights.values()) == len(inventory.transports)
        for transport in inventory.transports:
            representative = classes.representative(transport)
            assert representative in classes.weights
            assert table.walk(direction, owner, transport) is table.walks[(direction, owner, representative)]
