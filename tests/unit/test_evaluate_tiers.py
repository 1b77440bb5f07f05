"""Tier and policy order, built-in tiers and version gates (calico-semantics.md §0, §1.3, §1.4, §4.1)."""

from __future__ import annotations

import math
import re

import pytest

from calico_conformance.oracle.errors import LocatedError, Location
from calico_conformance.oracle.model import Direction, Policy, Tier
from calico_conformance.oracle.selector import parse_selector
from calico_conformance.oracle.tiers import parse_version, plan_tiers, policy_sort_key, tier_sort_key

HERE = Location("policies.yaml", 7)


def gnp(name: str, tier: str = "default", order: float | None = None) -> Policy:
    return Policy(
        kind="GlobalNetworkPolicy",
        name=name,
        namespace=None,
        tier=tier,
        order=order,
        selector=parse_selector("all()"),
        types=frozenset({Direction.INGRESS}),
        location=HERE,
    )


def np(namespace: str, name: str, order: float | None = None) -> Policy:
    return Policy(
        kind="NetworkPolicy",
        name=name,
        namespace=namespace,
        tier="default",
        order=order,
        selector=parse_selector("all()"),
        types=frozenset({Direction.INGRESS}),
    )


def tier_names(version: str, *tiers: Tier, policies: tuple[Policy, ...] = ()) -> list[str]:
    return [plan.name for plan in plan_tiers(policies, tiers, version, strict=True, problems=[])]


def test_built_in_tiers_of_3_30_in_felix_order() -> None:
    """§1.3 table: adminnetworkpolicy 1,000, default 1,000,000, baselineadminnetworkpolicy 10,000,000."""
    assert tier_names("3.30") == ["adminnetworkpolicy", "default", "baselineadminnetworkpolicy"]


def test_3_29_has_no_baseline_tier() -> None:
    """§0: baselineadminnetworkpolicy tier from 3.30 only."""
    assert tier_names("3.29") == ["adminnetworkpolicy", "default"]


def test_before_3_29_there_is_one_implicit_tier() -> None:
    """§0: "on 3.27/3.28 every Calico policy and every KNP live in one implicit tier"."""
    assert tier_names("3.28") == ["default"]


def test_a_user_tier_without_order_goes_after_baseline() -> None:
    """§1.3: "A user tier with no `order` therefore sorts **after** `baselineadminnetworkpolicy`"."""
    names = tier_names("3.30", Tier("zzz-last", None), Tier("aaa-unordered", None), Tier("early", 5.0))
    assert names == [
        "early",
        "adminnetworkpolicy",
        "default",
        "baselineadminnetworkpolicy",
        "aaa-unordered",
        "zzz-last",
    ]


def test_equal_tier_orders_are_broken_by_name_byte_wise() -> None:
    """§1.3 TierLess step 3: equal order -> tier name ascending (Go byte-wise string <)."""
    assert tier_names("3.30", Tier("b", 100.0), Tier("a-b", 100.0), Tier("a", 100.0))[:3] == ["a", "a-b", "b"]


def test_tier_sort_key_puts_invalid_tiers_last() -> None:
    """§1.3 TierLess step 1: valid tiers before invalid ones, whatever their order."""
    assert tier_sort_key(Tier("x", 1.0), valid=True) < tier_sort_key(Tier("a", 0.0), valid=False)


def test_policies_order_numerically_then_by_felix_key() -> None:
    """§1.4: nil order is +Inf; equal orders by felix key, byte-wise (`-` < `.` < `/` < digits)."""
    ordered = sorted(
        [
            gnp("zeta", order=5.0),
            np("ns1", "alpha", order=5.0),
            gnp("late"),
            gnp("a.b", order=5.0),
            gnp("a-b", order=5.0),
        ],
        key=policy_sort_key,
    )
    assert [p.felix_key for p in ordered] == ["a-b", "a.b", "ns1/alpha", "zeta", "late"]


def test_nil_order_is_infinite() -> None:
    assert policy_sort_key(gnp("x"))[0] == math.inf


def test_the_policies_of_each_tier_come_in_policy_order() -> None:
    plans = plan_tiers(
        [gnp("second", order=2.0), gnp("sec.first", "sec", 1.0), gnp("first", order=1.0)],
        [Tier("sec", 10.0)],
        "3.30",
        strict=True,
        problems=[],
    )
    assert [(plan.name, [p.name for p in plan.policies]) for plan in plans if plan.policies] == [
        ("sec", ["sec.first"]),
        ("default", ["first", "second"]),
    ]


def test_a_policy_in_an_undeclared_tier_is_an_error_at_the_policy() -> None:
    with pytest.raises(LocatedError, match="is in tier ghost, but no Tier ghost is declared") as raised:
        plan_tiers([gnp("ghost.p", "ghost", 1.0)], [], "3.30", strict=True, problems=[])
    assert raised.value.location == HERE


def test_non_strict_puts_an_undeclared_tier_last_and_records_why() -> None:
    problems: list[LocatedError] = []
    plans = plan_tiers(
        [gnp("ghost.p", "ghost", 1.0)], [Tier("zzz", None)], "3.30", strict=False, problems=problems
    )
    assert [plan.name for plan in plans][-1] == "ghost"
    assert [plan.valid for plan in plans][-1] is False
    assert len(problems) == 1


def test_tier_objects_need_3_29() -> None:
    """§0: "tier-ordering tests need >= v3.29"; there is no Tier kind before."""
    with pytest.raises(LocatedError, match=re.escape("Tier objects need Calico 3.29 or later")):
        plan_tiers([], [Tier("security", 10.0)], "3.28", strict=True, problems=[])


def test_a_tiered_policy_needs_3_29() -> None:
    with pytest.raises(LocatedError, match=re.escape("Calico 3.27 has no tiers")):
        plan_tiers([gnp("security.p", "security")], [], "3.27", strict=True, problems=[])


@pytest.mark.parametrize(
    "tier",
    [
        Tier("default", 500.0, "Deny"),
        Tier("default", 1_000_000.0, "Pass"),
        Tier("adminnetworkpolicy", 1_000.0, "Deny"),
    ],
)
def test_a_built_in_tier_cannot_be_changed(tier: Tier) -> None:
    """§1.3: "The validator forces these orders"; the built-in default actions are fixed too."""
    with pytest.raises(LocatedError, match=f"Tier {tier.name} is built into Calico 3.30"):
        plan_tiers([], [tier], "3.30", strict=True, problems=[])


def test_restating_a_built_in_tier_exactly_is_fine() -> None:
    assert "default" in tier_names("3.30", Tier("default", 1_000_000.0, "Deny"))


def test_a_tier_declared_twice_is_an_error() -> None:
    with pytest.raises(LocatedError, match="Tier security is declared twice"):
        plan_tiers([], [Tier("security", 1.0), Tier("security", 2.0)], "3.30", strict=True, problems=[])


@pytest.mark.parametrize(("text", "version"), [("3.30", (3, 30)), ("v3.29.2", (3, 29)), ("3.27", (3, 27))])
def test_versions_parse(text: str, version: tuple[int, int]) -> None:
    assert parse_version(text) == version


def test_a_bad_version_is_refused() -> None:
    with pytest.raises(LocatedError, match=re.escape("invalid Calico version 'latest'")):
        parse_version("latest")
    with pytest.raises(LocatedError, match=re.escape("3.26")):  # outside the versions the semantics notes describe
        parse_version("3.26")
