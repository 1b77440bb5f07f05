"""Tier ordering: the policy set's tiers keep their intended order, and the target applies tiers as
Calico documents.

The reference design puts guardrails in `security`, shared services in `platform` and application
exceptions in `application`, before the Kubernetes policies of tier `default`. That only works if the
tiers' `order` fields agree with the layout's intended order and if the target evaluates tiers the way
the design assumes: a Deny in an earlier tier is final, Pass hands over to the next tier, a tier that
selects an endpoint and matches no rule denies, and Kubernetes policies come last. The semantic cases run
small synthetic scenarios with hand-written answers (`tier_scenarios.py`). Tiers exist from Calico 3.29:
below that every case is recorded as NOT_SUPPORTED, with the reason.
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from fixtures.reachability import MustMatchScenario

from calico_conformance.config import RunConfig
from calico_conformance.oracle.model import DEFAULT_TIER, ResourceSet
from calico_conformance.report.outcomes import not_supported
from calico_conformance.suite.tier_scenarios import TierCase
from calico_conformance.tenancy.layout import TenancyLayout

pytestmark = [pytest.mark.conformance, pytest.mark.tiers]

FIRST_TIERED_RELEASE = (3, 29)  # calico-semantics.md §1.1: the Tier kind and `spec.tier` arrive in v3.29.0
DEFAULT_TIER_ORDER = 1_000_000  # Calico's validator forces the default tier to this order (§1.3)


@pytest.fixture(autouse=True)
def _tiers_supported(run_config: RunConfig, request: pytest.FixtureRequest) -> None:
    """Record NOT_SUPPORTED (with the reason) on Calico releases that have no tiers."""
    if run_config.calico_version_tuple < FIRST_TIERED_RELEASE:
        reason = (
            f"tiers need Calico >= {'.'.join(map(str, FIRST_TIERED_RELEASE))} "
            f"(running {run_config.calico_version})"
        )
        request.node.user_properties.append(("not_supported", reason))
        not_supported(reason)


def test_tiers_keep_intended_order(tenancy_layout: TenancyLayout, policy_set: ResourceSet) -> None:
    """Each intended tier exists, with an order below the next one's and below the default tier's."""
    intended = tenancy_layout.tier_order
    tiers = {tier.name: tier for tier in policy_set.tiers}
    problems = [f"intended tier {name!r} has no Tier object in the policy set" for name in intended if name not in tiers]
    problems += [
        f"Tier {name!r} ({tiers[name].location}) is not in the layout's intended order {list(intended)}"
        for name in tiers
        if name not in intended and name != DEFAULT_TIER
    ]
    placed = [tiers[name] for name in intended if name in tiers]
    for tier in placed:
        if tier.order is None or tier.order >= DEFAULT_TIER_ORDER:
            problems.append(
                f"Tier {tier.name!r} ({tier.location}) has order {tier.order}: it would run after the "
                f"Kubernetes policies of tier default (order {DEFAULT_TIER_ORDER})"
            )
    for earlier, later in pairwise(placed):
        if earlier.order is not None and later.order is not None and not earlier.order < later.order:
            problems.append(
                f"Tier {earlier.name!r} (order {earlier.order:g}, {earlier.location}) must come before "
                f"{later.name!r} (order {later.order:g}, {later.location})"
            )
    problems += [
        f"{policy.display_name} ({policy.location}) is in tier {policy.tier!r}, not one of the intended tiers"
        for policy in policy_set.policies
        if policy.tier != DEFAULT_TIER and policy.tier not in intended
    ]
    actual = ", ".join(f"{tier.name}={tier.order:g}" if tier.order is not None else tier.name for tier in placed)
    assert not problems, f"intended order {list(intended)}, policy set has [{actual}]:\n" + "\n".join(problems)


@pytest.mark.cases("tier-scenarios")
def test_tier_semantics(case: TierCase, must_match_scenario: MustMatchScenario) -> None:
    """The target applies this tier rule as Calico documents it (hand-written expectation)."""
    must_match_scenario(case.scenario)
