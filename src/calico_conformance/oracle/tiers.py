"""The tiers felix walks, in its order, each holding its policies in its order (calico-semantics.md §1.3, §1.4).

Tiers are version-gated (§0): before 3.29 there is one implicit `default` tier and no `Tier` kind; from
3.29 the built-in `adminnetworkpolicy` (1000, Pass) and `default` (1,000,000, Deny) tiers exist, from 3.30
also `baselineadminnetworkpolicy` (10,000,000, Pass). Felix sorts tiers with `TierLess` (valid before
invalid, ordered before unordered, equal order by name byte-wise) and policies with `PolKVLess` (nil
order last, equal order by felix key byte-wise).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from calico_conformance.oracle.errors import LocatedError
from calico_conformance.oracle.loader_document import TIERS_SINCE, parse_calico_version
from calico_conformance.oracle.model import DEFAULT_TIER, Policy, Tier, TierDefaultAction

# (tier, version it appears in): the orders and default actions the validator forces on them (§1.3).
BUILT_IN_TIERS: tuple[tuple[Tier, tuple[int, int]], ...] = (
    (Tier("adminnetworkpolicy", 1_000.0, "Pass"), (3, 29)),
    (Tier(DEFAULT_TIER, 1_000_000.0, "Deny"), (3, 29)),
    (Tier("baselineadminnetworkpolicy", 10_000_000.0, "Pass"), (3, 30)),
)
# Before 3.29 every policy lives in one implicit tier; its order is irrelevant, it is the only one.
IMPLICIT_DEFAULT_TIER = Tier(DEFAULT_TIER, None, "Deny")
# A policy naming a tier with no Tier object is still rendered by felix, in an invalid tier that sorts
# after every valid one and ends, like any tier, in a deny.
INVALID_TIER_DEFAULT_ACTION: TierDefaultAction = "Deny"



def parse_version(text: str) -> tuple[int, int]:
    """`3.30`, `v3.30.2` -> (3, 30): the loader's parser, so one version is understood one way everywhere."""
    return parse_calico_version(text)


@dataclass(frozen=True)
class TierPlan:
    """One tier as felix walks it: its settings and its policies, already in evaluation order."""

    tier: Tier
    valid: bool
    policies: tuple[Policy, ...]

    @property
    def name(self) -> str:
        return self.tier.name


def tier_sort_key(tier: Tier, valid: bool) -> tuple[bool, bool, float, bytes]:
    """`TierLess`: valid first, then non-nil order first, then by order, equal orders by name byte-wise."""
    return (not valid, tier.order is None, tier.order or 0.0, tier.name.encode())


def policy_sort_key(policy: Policy) -> tuple[float, bytes]:
    """`PolKVLess`: nil order is +Inf; equal orders by felix key byte-wise (§1.4)."""
    return (math.inf if policy.order is None else policy.order, policy.felix_key.encode())


def _complain(error: LocatedError, strict: bool, problems: list[LocatedError]) -> None:
    if strict:
        raise error
    problems.append(error)


def plan_tiers(
    policies: Iterable[Policy],
    tiers: Iterable[Tier],
    calico_version: str,
    *,
    strict: bool,
    problems: list[LocatedError],
) -> tuple[TierPlan, ...]:
    """The tiers in felix's order with their policies in felix's order.

    Strict: a Tier object or tiered policy below 3.29, a changed built-in tier, a duplicate Tier or a
    policy whose tier has no Tier object raise LocatedError. Non-strict: the error is recorded and
    evaluation carries on as felix would (pre-3.29 everything in the one tier; missing tiers invalid).
    """
    version = parse_version(calico_version)
    policies = tuple(policies)
    if version < TIERS_SINCE:
        return _single_tier(policies, tuple(tiers), calico_version, strict, problems)

    known: dict[str, Tier] = {tier.name: tier for tier, since in BUILT_IN_TIERS if version >= since}
    declared: dict[str, Tier] = {}
    for tier in tiers:
        first = declared.get(tier.name)
        if first is not None:
            where = first.location or "an earlier document"
            _complain(
                LocatedError(tier.location, f"Tier {tier.name} is declared twice (first at {where})"),
                strict,
                problems,
            )
            continue
        declared[tier.name] = tier
        built_in = known.get(tier.name)
        if built_in is None:
            known[tier.name] = tier
        elif (tier.order, tier.default_action) != (built_in.order, built_in.default_action):
            why = (
                f"Tier {tier.name} is built into Calico {calico_version}: its order must be"
                f" {built_in.order:.0f} and its defaultAction {built_in.default_action}"
            )
            _complain(LocatedError(tier.location, why), strict, problems)

    members: dict[str, list[Policy]] = {name: [] for name in known}
    invalid: set[str] = set()
    for policy in policies:
        if policy.tier not in known and policy.tier not in invalid:
            why = (
                f"{policy.display_name} is in tier {policy.tier}, but no Tier {policy.tier} is declared"
                " (Calico refuses the policy; felix would evaluate it in an invalid tier, last)"
            )
            _complain(LocatedError(policy.location, why), strict, problems)
            invalid.add(policy.tier)
            members[policy.tier] = []
        members[policy.tier].append(policy)

    plans = [
        TierPlan(
            known.get(name, Tier(name, None, INVALID_TIER_DEFAULT_ACTION)),
            name not in invalid,
            tuple(sorted(found, key=policy_sort_key)),
        )
        for name, found in members.items()
    ]
    return tuple(sorted(plans, key=lambda plan: tier_sort_key(plan.tier, plan.valid)))


def _single_tier(
    policies: tuple[Policy, ...],
    tiers: tuple[Tier, ...],
    calico_version: str,
    strict: bool,
    problems: list[LocatedError],
) -> tuple[TierPlan, ...]:
    for tier in tiers:
        why = f"Tier objects need Calico 3.29 or later (calicoVersion is {calico_version})"
        _complain(LocatedError(tier.location, why), strict, problems)
    for policy in policies:
        if policy.tier != DEFAULT_TIER:
            why = (
                f"{policy.display_name} is in tier {policy.tier}, but Calico {calico_version} has no tiers"
                " (3.29 or later); it would be evaluated in the one implicit tier"
            )
            _complain(LocatedError(policy.location, why), strict, problems)
    return (TierPlan(IMPLICIT_DEFAULT_TIER, True, tuple(sorted(policies, key=policy_sort_key))),)
