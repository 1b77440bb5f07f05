"""Tier findings: policies in tiers that do not exist, and tiers whose implicit deny overrides lower tiers.

A tier's policies that select a pod but match none of its traffic end in the tier's implicit deny
(calico-semantics.md §1.2): traffic a *lower* tier explicitly allows never gets there. The runbook's
pattern of tiers is only safe when every tier ends in `Pass` (or has `defaultAction: Pass`). The check
uses the flow table: a flow denied at the end of tier T that the tiers after T would have allowed by an
Allow rule, had T passed it on. A tier that denies what only the namespace profile would allow is doing
its job as a default-deny and is not reported.

Policies naming a missing tier are found by `plan_tiers`, the oracle's own tier planner (felix would
evaluate them last, in an invalid tier; Calico's API server refuses them outright).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from calico_conformance.lint.context import LintContext
from calico_conformance.lint.findings import Finding
from calico_conformance.lint.flows import LowerTierAllow, rule_name
from calico_conformance.lint.inventory import Inventory, describe, listens
from calico_conformance.oracle.model import Direction
from calico_conformance.oracle.rules import Transport
from calico_conformance.oracle.tiers import BUILT_IN_TIERS, parse_version


def unknown_tier_findings(context: LintContext) -> Iterator[Finding]:
    version = parse_version(context.calico_version)
    existing = sorted(
        {tier.name for tier in context.resources.tiers}
        | {tier.name for tier, since in BUILT_IN_TIERS if version >= since}
    )
    for plan in context.tier_plans:
        if plan.valid:
            continue
        for policy in plan.policies:
            yield Finding(
                "unknown-tier",
                policy.location,
                f"{policy.display_name} is in tier {plan.name}, which does not exist (tiers: {', '.join(existing)});"
                " Calico refuses the policy",
                f"create a Tier named {plan.name}, or move the policy to one of: {', '.join(existing)}",
            )


@dataclass
class _Example:
    first: LowerTierAllow
    owner: str
    peer: str
    direction: Direction
    transport: Transport
    flows: int = 0
    reaches: bool = False


def _reaches(inventory: Inventory, direction: Direction, owner: int, peer: int, transport: Transport) -> bool:
    destination = inventory.peers[peer if direction is Direction.EGRESS else owner].pod
    return destination is None or listens(destination, transport)


def tier_denies_lower_tiers_findings(context: LintContext) -> Iterator[Finding]:
    _, inventory, table = context.require_inventory()
    examples: dict[str, _Example] = {}
    for (direction, owner, transport), walk in table.walks.items():
        for allow in walk.lower_allows:
            count = bin(allow.allowed_by.mask).count("1") * table.weight(direction, owner, transport)
            example = examples.get(allow.tier.name)
            # Show a flow that reaches someone: to an outside address or a port the destination listens on.
            peer = next(
                (
                    p
                    for p in table.bits(allow.allowed_by.mask)
                    if _reaches(inventory, direction, owner, p, transport)
                ),
                None,
            )
            if example is None or (not example.reaches and peer is not None):
                shown = peer if peer is not None else next(table.bits(allow.allowed_by.mask))
                flows = example.flows if example is not None else 0
                example = examples[allow.tier.name] = _Example(
                    allow,
                    inventory.peers[owner].name,
                    inventory.peers[shown].name,
                    direction,
                    transport,
                    flows,
                    peer is not None,
                )
            example.flows += count
    declared = {tier.name: tier for tier in context.resources.tiers}
    for name, example in sorted(examples.items()):
        denied, allowed = example.first.denied_by, example.first.allowed_by
        assert allowed.policy is not None
        assert allowed.rule is not None
        assert allowed.tier is not None
        tier = declared.get(name)
        location = (
            tier.location if tier is not None else (denied.policy.policy.location if denied.policy else None)
        )
        flow = (
            f"{example.owner} -> {example.peer}"
            if example.direction is Direction.EGRESS
            else f"{example.peer} -> {example.owner}"
        )
        selecting = f" ({denied.policy.policy.display_name} selects it)" if denied.policy else ""
        yield Finding(
            "tier-denies-lower-tiers",
            location,
            f"tier {name} ends in its implicit deny: {flow} {describe(example.transport)}"
            f" ({example.direction.value.lower()}) matches no rule of the tier{selecting} and is denied,"
            f" although {rule_name(allowed.policy, allowed.rule)} in tier {allowed.tier.name} allows it"
            f" ({example.flows} flow{'s' if example.flows != 1 else ''} of the sample)",
            f"end tier {name}'s policies with `- action: Pass`, or set the Tier's defaultAction: Pass",
        )
