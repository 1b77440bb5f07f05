"""royal-bank is isolated from every other customer namespace, and its one exception is exact.

The Royal Bank's tenancy agreement requires network-level isolation between royal-bank and every other
customer namespace (runbook, "Calico deployment"). Each case is one other customer and one service:
every workload of both namespaces, both directions, on every port either declares, the canary ports,
UDP, and ICMP (a ping opens no port but is traffic all the same). The denial is absolute: no exception
in the layout can soften it. The logging exception is proven exact: royal-bank reaches
platform/log-collector on 5044/TCP and nothing else in platform.

The isolation is also the security tier's to keep (`test_isolation_is_decided_by_the_security_tier`):
a later tier that happens to deny as well hides a lost guardrail from every probe, so every flow between
two customers must be denied by the layout's first tier (or one before it), as the oracle of the
applied policy set explains it (`suite/guardrails.py`).
"""

from __future__ import annotations

import pytest
from fixtures.reachability import MustMatchRequirement

from calico_conformance.config import RunConfig
from calico_conformance.oracle.evaluate import Oracle
from calico_conformance.oracle.loader_document import TIERS_SINCE
from calico_conformance.report.outcomes import not_supported
from calico_conformance.suite.cases import ReachabilityCase, denied_matrix, requirement_matrix
from calico_conformance.suite.guardrails import guarding_tiers, guardrail_breaches
from calico_conformance.tenancy.layout import TenancyLayout

pytestmark = [pytest.mark.conformance, pytest.mark.isolation, pytest.mark.royal_bank]

ISOLATION_PROMISE = "royal-bank and any other customer namespace never reach each other (tenancy agreement)"


@pytest.mark.cases("royal-bank-isolation")
def test_royal_bank_isolation(case: ReachabilityCase, must_match_requirement: MustMatchRequirement) -> None:
    """No flow either way between royal-bank and the other customer on this service."""
    must_match_requirement(case, denied_matrix(case.flows, ISOLATION_PROMISE))


@pytest.mark.cases("royal-bank-exceptions")
def test_exception_is_exact(
    case: ReachabilityCase, tenancy_layout: TenancyLayout, must_match_requirement: MustMatchRequirement
) -> None:
    """The exception opens its destination on its ports only; the rest of that namespace stays closed."""
    expected = requirement_matrix(tenancy_layout, case.flows)
    assert any(expected[flow].allowed for flow in expected), f"{case.id}: the exception itself is never probed"
    must_match_requirement(case, expected)


@pytest.mark.cases("customer-guardrails")
def test_isolation_is_decided_by_the_security_tier(
    case: ReachabilityCase, tenancy_layout: TenancyLayout, oracle: Oracle, run_config: RunConfig
) -> None:
    """Every flow between these two customers is denied by the first intended tier (or an earlier one),
    whatever a later tier says: re-checked as if every later tier allowed everything."""
    if run_config.calico_version_tuple < TIERS_SINCE:
        not_supported(
            f"the security tier's guardrail needs tiers, Calico >= {'.'.join(map(str, TIERS_SINCE))} "
            f"(running {run_config.calico_version}): every policy is in the one default tier"
        )
    if not tenancy_layout.tier_order:
        not_supported("the layout names no tier (tiers:), so no tier promises the isolation")
    guard = tenancy_layout.tier_order[0]
    assert guarding_tiers(oracle, guard) is not None, f"{case.id}: the policy set has no tier {guard!r}"
    breaches = guardrail_breaches(oracle, case.flows, guard)
    shown = "\n  ".join(map(str, breaches[:10]))
    assert not breaches, (
        f"{case.summary}: {len(breaches)} of {len(case.flows)} flow(s) are not denied by tier {guard!r} or an "
        f"earlier one; with every later tier allowing all they would pass, e.g.:\n  {shown}"
    )
